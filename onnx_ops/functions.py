"""Function bodies of the `talon` ops in standard ONNX ops, and `attach_functions` to add them to models.

onnxruntime inlines model-local functions (FunctionProto in domain `talon`) and runs them at native
speed; so does any runtime that supports functions. The bodies are the op specs' (onnx_ops.spec); a FunctionProto has
a fixed body, so an op whose body depends on a node (ChannelSplit's output count, LIF/IF's reset mode) gets one
overload per variant, chosen per node by `attach_functions`.
Every body imports the model's own default-domain opset so that it inlines without conversion.
"""

from __future__ import annotations

import onnx
from onnx import AttributeProto, FunctionProto, ModelProto
from onnx import helper as h

from talon.errors import require

from .errors import OrtModelError
from . import schemas as _schemas  # noqa: F401  (the schemas are registered before bodies are built)
from .spec import DOMAIN, VERSION, OpSpec, Variant, attribute_values, op_spec, op_specs

DEFAULT_OPSET = 21  # default ONNX opset of the models we write (Gelu needs 20, LayerNormalization 17)


def function_of(spec: OpSpec, variant: Variant, opset: int) -> FunctionProto:
    """The FunctionProto of one variant of a talon op: the spec's inputs, attributes, defaults and body."""
    overload = spec.overload(variant)
    return h.make_function(
        DOMAIN,
        spec.name,
        list(spec.inputs),
        spec.formal_outputs(variant),
        spec.body(variant),
        [h.make_opsetid("", opset)],
        attributes=[a.name for a in spec.attributes if a.default is None],
        attribute_protos=[h.make_attribute(k, v) for k, v in spec.defaults().items()],
        doc_string=spec.doc,
        overload=overload or None,
    )


def _default_variants() -> dict[tuple[str, str], tuple[OpSpec, Variant]]:
    """The default body of every op with a fixed output count, keyed by (op, overload)."""
    found = {}
    for spec in op_specs():
        if not spec.variadic:
            variant = spec.variant()
            found[(spec.name, spec.overload(variant))] = (spec, variant)
    return found


def function_protos(opset: int = DEFAULT_OPSET, split_counts: tuple[int, ...] = ()) -> list[FunctionProto]:
    """Bodies of every talon op for a model of the given ONNX opset (ChannelSplit for each output count)."""
    wanted = _default_variants()
    split = op_spec("ChannelSplit")
    for n in sorted(set(split_counts)):
        variant = split.variant(num_outputs=n)
        wanted[(split.name, split.overload(variant))] = (split, variant)
    return [function_of(spec, variant, opset) for spec, variant in wanted.values()]


def model_opset(model: ModelProto, domain: str = "") -> int | None:
    """The opset version a model imports for `domain` (None when it does not import it)."""
    return next((o.version for o in model.opset_import if o.domain == domain), None)


def _talon_nodes(graph: onnx.GraphProto):
    """Every talon node in a graph and its subgraphs (Scan/Loop/If bodies)."""
    for node in graph.node:
        if node.domain == DOMAIN:
            yield node
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from _talon_nodes(attr.g)
            for g in attr.graphs:
                yield from _talon_nodes(g)


def _fill_defaults(node: onnx.NodeProto, spec: OpSpec) -> None:
    """Write the spec's default for every attribute the node omits (not every runtime applies
    FunctionProto attribute defaults, e.g. onnx's ReferenceEvaluator)."""
    present = {a.name for a in node.attribute}
    for name, value in spec.defaults().items():
        if name not in present:
            node.attribute.append(h.make_attribute(name, value))


def _check_choices(node: onnx.NodeProto, spec: OpSpec, attrs: dict) -> None:
    """Refuse a string attribute outside the values the spec allows (a body exists only for those)."""
    for a in spec.attributes:
        if a.choices and attrs.get(a.name) not in a.choices:
            allowed = " or ".join(repr(c) for c in a.choices)
            raise OrtModelError(f"talon.{spec.name} node {node.name!r}: attribute {a.name} must be {allowed}, "
                                f"got {attrs.get(a.name)!r}")


def attach_functions(model: ModelProto) -> ModelProto:
    """Add the talon function bodies a model needs (in place, returned too), so onnxruntime can run it.

    Works for any model using talon ops, e.g. one written by another tool: existing talon functions
    are replaced, the talon opset import is added when missing, omitted attributes get their spec
    defaults written out, and each node gets the body overload it needs (ChannelSplit per output count,
    LIF/IF per reset mode).
    """
    require(model, ModelProto, "attach_functions: model", OrtModelError)
    nodes = list(_talon_nodes(model.graph))
    if not nodes:
        return model
    unknown = sorted({n.op_type for n in nodes if op_spec(n.op_type) is None})
    if unknown:
        raise OrtModelError(f"model uses unknown talon ops {unknown}; known: {sorted(s.name for s in op_specs())}")
    opset = model_opset(model) or DEFAULT_OPSET
    if model_opset(model) is None:
        model.opset_import.append(h.make_opsetid("", opset))
    if model_opset(model, DOMAIN) is None:
        model.opset_import.append(h.make_opsetid(DOMAIN, VERSION))
    wanted = _default_variants()
    for node in nodes:
        spec = op_spec(node.op_type)
        _fill_defaults(node, spec)
        attrs = attribute_values(node)
        _check_choices(node, spec, attrs)
        variant = spec.variant(attrs, len(node.output))
        node.overload = spec.overload(variant)
        wanted[(spec.name, node.overload)] = (spec, variant)
    kept = [f for f in model.functions if f.domain != DOMAIN]
    del model.functions[:]
    model.functions.extend(kept + [function_of(spec, variant, opset) for spec, variant in wanted.values()])
    if model.ir_version < 10:
        model.ir_version = 10  # function overloads and attribute defaults need IR version 10
    return model
