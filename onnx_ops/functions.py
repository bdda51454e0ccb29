"""Function bodies of the `talon` ops in standard ONNX ops, and `attach_functions` to add them to models.

onnxruntime inlines model-local functions (FunctionProto in domain `talon`) and runs them at native
speed; so does any runtime that supports functions. A FunctionProto has a fixed number of outputs, so
ChannelSplit gets one overload per output count (``"n<k>"``), chosen per node by `attach_functions`.
Every body imports the model's own default-domain opset so that it inlines without conversion.
"""

from __future__ import annotations

import onnx
from onnx import AttributeProto, FunctionProto, ModelProto
from onnx import helper as h

from talon.errors import require

from .errors import OrtModelError
from .schemas import DOMAIN, SCHEMAS, VERSION

DEFAULT_OPSET = 21  # default ONNX opset of the models we write (Gelu needs 20, LayerNormalization 17)


def _one(like: str) -> list[onnx.NodeProto]:
    """Nodes making `one` = 1 in `like`'s element type."""
    return [h.make_node("Constant", [], ["one_f"], value_float=1.0), h.make_node("CastLike", ["one_f", like], ["one"])]


def _spike_and_reset(v: str, threshold: str = "v_threshold", subtract: bool = False) -> list[onnx.NodeProto]:
    """S = (v >= threshold) in X's type; V_next = v * (1 - S), or v - S*threshold with `subtract`, as in
    onnx_ops.neuron_kernels."""
    fire = [h.make_node("GreaterOrEqual", [v, threshold], ["fired"]), h.make_node("CastLike", ["fired", "X"], ["S"])]
    if subtract:
        return [*fire, h.make_node("Mul", ["S", threshold], ["drop"]), h.make_node("Sub", [v, "drop"], ["V_next"])]
    return [*fire, h.make_node("Sub", ["one", "S"], ["keep"]), h.make_node("Mul", [v, "keep"], ["V_next"])]


def _leaky(p: str, x: str, v: str, tau: str, r: str, v_leak: str | None) -> list[onnx.NodeProto]:
    """`<p>v` = beta*v + (1-beta)*(v_leak + r*x), beta = 1 - 1/tau, in the kernel's order (bit-exact in float32)."""
    drive = [h.make_node("Add", [v_leak, f"{p}rx"], [f"{p}drive"])] if v_leak else []
    return [
        h.make_node("Div", ["one", tau], [f"{p}inv_tau"]),
        h.make_node("Sub", ["one", f"{p}inv_tau"], [f"{p}beta"]),
        h.make_node("Sub", ["one", f"{p}beta"], [f"{p}one_minus_beta"]),
        h.make_node("Mul", [r, x], [f"{p}rx"]),
        *drive,
        h.make_node("Mul", [f"{p}beta", v], [f"{p}decayed"]),
        h.make_node("Mul", [f"{p}one_minus_beta", f"{p}drive" if v_leak else f"{p}rx"], [f"{p}charge"]),
        h.make_node("Add", [f"{p}decayed", f"{p}charge"], [f"{p}v"]),
    ]


def _lif_nodes(subtract: bool = False) -> list[onnx.NodeProto]:
    return [*_one("X"), *_leaky("", "X", "V", "tau", "r", "v_leak"), *_spike_and_reset("v", subtract=subtract)]


def _if_nodes(subtract: bool = False) -> list[onnx.NodeProto]:
    return [
        *_one("X"),
        h.make_node("Mul", ["r", "X"], ["rx"]),
        h.make_node("Add", ["V", "rx"], ["v"]),
        *_spike_and_reset("v", subtract=subtract),
    ]


RESET_OVERLOAD = "subtract"  # the LIF/IF function overload of nodes with reset_mode = 'subtract'


def _reset_mode(node: onnx.NodeProto) -> str:
    """A LIF/IF node's reset_mode attribute (its schema default filled in)."""
    return next((a.s.decode() for a in node.attribute if a.name == "reset_mode"), "zero")


def _li_nodes() -> list[onnx.NodeProto]:
    return [
        *_one("X"),
        *_leaky("", "X", "V", "tau", "r", "v_leak"),
        h.make_node("Identity", ["v"], ["Y"]),
        h.make_node("Identity", ["v"], ["V_next"]),
    ]


def _integrator_nodes() -> list[onnx.NodeProto]:
    return [
        h.make_node("Mul", ["r", "X"], ["rx"]),
        h.make_node("Add", ["V", "rx"], ["Y"]),
        h.make_node("Identity", ["Y"], ["V_next"]),
    ]


def _cuba_lif_nodes() -> list[onnx.NodeProto]:
    # the current first (an LI step with v_leak = 0, which adds nothing), then the LIF step driven by it
    return [
        *_one("X"),
        *_leaky("syn_", "X", "I", "tau_syn", "w_in", None),
        h.make_node("Identity", ["syn_v"], ["I_next"]),
        *_leaky("", "syn_v", "V", "tau_mem", "r", "v_leak"),
        *_spike_and_reset("v"),
    ]


def _threshold_nodes() -> list[onnx.NodeProto]:
    return [
        h.make_node("GreaterOrEqual", ["X", "threshold"], ["fired"]),
        h.make_node("CastLike", ["fired", "X"], ["Y"]),
    ]


def _sumpool_nodes() -> list[onnx.NodeProto]:
    # channels folded into the batch, then a Conv with an all-ones (1, 1, kH, kW) kernel: exact sums
    kernel = _ref(h.make_node("Constant", [], ["kernel"]), "value_ints", "kernel_shape", AttributeProto.INTS)
    conv = h.make_node("Conv", ["planes", "ones"], ["pooled"])
    for attr in ("strides", "pads"):
        _ref(conv, attr, attr, AttributeProto.INTS)
    return [
        kernel,
        h.make_node("Constant", [], ["lead"], value_ints=[1, 1]),
        h.make_node("Concat", ["lead", "kernel"], ["w_shape"], axis=0),
        h.make_node(
            "ConstantOfShape", ["w_shape"], ["ones_f"], value=h.make_tensor("one", onnx.TensorProto.FLOAT, [1], [1.0])
        ),
        h.make_node("CastLike", ["ones_f", "X"], ["ones"]),
        h.make_node("Constant", [], ["plane_shape"], value_ints=[-1, 1, 0, 0]),
        h.make_node("Reshape", ["X", "plane_shape"], ["planes"]),
        conv,
        h.make_node("Shape", ["X"], ["nc"], end=2),
        h.make_node("Shape", ["pooled"], ["hw"], start=2),
        h.make_node("Concat", ["nc", "hw"], ["y_shape"], axis=0),
        h.make_node("Reshape", ["pooled", "y_shape"], ["Y"]),
    ]


def _affine_nodes() -> list[onnx.NodeProto]:
    return [
        h.make_node("Transpose", ["W"], ["Wt"], perm=[1, 0]),
        h.make_node("MatMul", ["X", "Wt"], ["XWt"]),
        h.make_node("Add", ["XWt", "B"], ["Y"]),
    ]


def _ref(node: onnx.NodeProto, attr: str, name: str, kind: int) -> onnx.NodeProto:
    """Make `node` take attribute `attr` from the function's attribute `name`."""
    node.attribute.append(h.make_attribute_ref(attr, kind))
    node.attribute[-1].ref_attr_name = name
    return node


def _sepconv_nodes() -> list[onnx.NodeProto]:
    depthwise = h.make_node("Conv", ["X", "DW", "DB"], ["D"])
    for attr, name, kind in [
        ("group", "group", AttributeProto.INT),
        ("strides", "strides", AttributeProto.INTS),
        ("pads", "pads", AttributeProto.INTS),
        ("dilations", "dilations", AttributeProto.INTS),
    ]:
        _ref(depthwise, attr, name, kind)
    return [depthwise, h.make_node("Conv", ["D", "PW", "PB"], ["Y"])]


def _split_nodes(n: int) -> list[onnx.NodeProto]:
    sections = _ref(h.make_node("Constant", [], ["sections"]), "value_ints", "split_sections", AttributeProto.INTS)
    split = _ref(
        h.make_node("Split", ["X", "sections"], [f"Y_{i}" for i in range(n)]), "axis", "axis", AttributeProto.INT
    )
    return [sections, split]


def _function(name: str, nodes, opset: int, outputs=None, overload: str | None = None) -> FunctionProto:
    """A FunctionProto for talon op `name` with the schema's inputs, attributes and defaults."""
    schema = SCHEMAS[name]
    attrs = schema.attributes
    defaults = [
        h.make_attribute(k, onnx.helper.get_attribute_value(a.default_value))
        for k, a in attrs.items()
        if a.default_value.name
    ]
    return h.make_function(
        DOMAIN,
        name,
        [p.name for p in schema.inputs],
        outputs or [p.name for p in schema.outputs],
        nodes,
        [h.make_opsetid("", opset)],
        attributes=[k for k, a in attrs.items() if not a.default_value.name],
        attribute_protos=defaults,
        doc_string=schema.doc,
        overload=overload,
    )


def split_overload(num_outputs: int) -> str:
    """The ChannelSplit function overload for a node with `num_outputs` outputs."""
    return f"n{num_outputs}"


def function_protos(opset: int = DEFAULT_OPSET, split_counts: tuple[int, ...] = (),
                    subtract: tuple[str, ...] = ()) -> list[FunctionProto]:
    """Bodies of every talon op for a model of the given ONNX opset (ChannelSplit for each output count, and
    the reset-by-subtraction overload of the ops named in `subtract`, LIF or IF, only where used: onnx's
    ReferenceEvaluator ignores overloads)."""
    bodies = {"LIF": _lif_nodes, "IF": _if_nodes}
    funcs = [
        _function("LIF", _lif_nodes(), opset),
        _function("IF", _if_nodes(), opset),
        _function("LI", _li_nodes(), opset),
        _function("Integrator", _integrator_nodes(), opset),
        _function("CubaLIF", _cuba_lif_nodes(), opset),
        _function("Threshold", _threshold_nodes(), opset),
        _function("SumPool2d", _sumpool_nodes(), opset),
        _function("SpikingAffine", _affine_nodes(), opset),
        _function("SepConv2d", _sepconv_nodes(), opset),
        _function("HybridRegion", [h.make_node("Identity", ["X"], ["Y"])], opset),
    ]
    funcs += [_function(op, bodies[op](True), opset, overload=RESET_OVERLOAD) for op in sorted(set(subtract))]
    for n in sorted(set(split_counts)):
        funcs.append(_function("ChannelSplit", _split_nodes(n), opset, [f"Y_{i}" for i in range(n)], split_overload(n)))
    return funcs


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


def _fill_defaults(node: onnx.NodeProto) -> None:
    """Write the schema's default for every attribute the node omits (not every runtime applies
    FunctionProto attribute defaults, e.g. onnx's ReferenceEvaluator)."""
    present = {a.name for a in node.attribute}
    for name, attr in SCHEMAS[node.op_type].attributes.items():
        if name not in present and attr.default_value.name:
            node.attribute.append(attr.default_value)


def attach_functions(model: ModelProto) -> ModelProto:
    """Add the talon function bodies a model needs (in place, returned too), so onnxruntime can run it.

    Works for any model using talon ops, e.g. one written by another tool: existing talon functions
    are replaced, the talon opset import is added when missing, omitted attributes get their schema
    defaults written out, and ChannelSplit nodes get the overload matching their output count.
    """
    require(model, ModelProto, "attach_functions: model", OrtModelError)
    nodes = list(_talon_nodes(model.graph))
    if not nodes:
        return model
    unknown = sorted({n.op_type for n in nodes} - set(SCHEMAS))
    if unknown:
        raise OrtModelError(f"model uses unknown talon ops {unknown}; known: {sorted(SCHEMAS)}")
    opset = model_opset(model) or DEFAULT_OPSET
    if model_opset(model) is None:
        model.opset_import.append(h.make_opsetid("", opset))
    if model_opset(model, DOMAIN) is None:
        model.opset_import.append(h.make_opsetid(DOMAIN, VERSION))
    counts, subtract = [], []
    for node in nodes:
        _fill_defaults(node)
        if node.op_type == "ChannelSplit":
            node.overload = split_overload(len(node.output))
            counts.append(len(node.output))
        if node.op_type in ("LIF", "IF"):
            mode = _reset_mode(node)
            if mode not in ("zero", RESET_OVERLOAD):
                raise OrtModelError(f"talon {node.op_type} node {node.name!r}: reset_mode must be 'zero' or "
                                    f"'subtract', got {mode!r}")
            node.overload = RESET_OVERLOAD if mode == RESET_OVERLOAD else ""
            subtract += [node.op_type] if mode == RESET_OVERLOAD else []
    kept = [f for f in model.functions if f.domain != DOMAIN]
    del model.functions[:]
    model.functions.extend(kept + function_protos(opset, tuple(counts), tuple(subtract)))
    if model.ir_version < 10:
        model.ir_version = 10  # function overloads and attribute defaults need IR version 10
    return model
