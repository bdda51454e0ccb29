"""One declaration per talon op: :class:`OpSpec`, and the registry every other layer reads.

A spec names an op of the ``talon`` ONNX domain with its inputs, attributes, state items, shape rule, ONNX
function body, numpy reference and torch kernel. The OpSchema (:mod:`onnx_ops.schemas`), the FunctionProto
(:mod:`onnx_ops.functions`), the ReferenceEvaluator op (:mod:`onnx_ops.reference`), the ``torch.ops.talon``
custom op with its export translation (:mod:`onnx_ops.torch_ops`) and the state names (:mod:`onnx_ops.state`)
are derived from it. :func:`register_op` adds a spec (a user's too, from their own code); the derived layers
subscribe with :func:`on_register` and are updated at once.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from typing import Any, Callable, Iterator, Mapping, Sequence

import onnx

from .errors import OpSpecError

DOMAIN = "talon"
VERSION = 1

ATTR_KINDS = ("int", "ints", "float", "str")  # attribute kinds a spec may declare


@dataclasses.dataclass(frozen=True)
class Attr:
    """One attribute: `kind` in ATTR_KINDS; `default` None with required=False means optional without default."""

    name: str
    kind: str
    default: Any = None
    doc: str = ""
    required: bool = False
    choices: tuple[str, ...] = ()  # allowed values of a "str" attribute (empty: any)


@dataclasses.dataclass(frozen=True)
class Variant:
    """What one node of an op needs from its function body: its attributes (defaults filled) and output count."""

    attrs: Mapping[str, Any]
    num_outputs: int


def same_shape(ctx) -> None:
    """Shape rule of element-wise ops and neurons: every output has the first input's type and shape."""
    x = ctx.get_input_type(0)
    if x is None:
        return
    for i in range(ctx.get_num_outputs()):
        ctx.set_output_type(i, x)


def default_overload(variant: Variant) -> str:
    """The one function body of ops without variants."""
    return ""


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """Everything about one talon op.

    Layout: input 0 is the data, inputs 1..k are the state items (`state`, k of them), the rest parameters;
    output 0 is the result, outputs 1..k the next state items. `body(variant)` returns the function's nodes over
    the formal names; `reference(*inputs, **attrs)` the outputs as numpy arrays; `kernel(*inputs, **attrs)` the
    outputs as torch tensors (None: no torch custom op). `variadic`: output 0 repeats, `count_outputs(attrs)`
    times. `overload(variant)` names the body a node needs ('' for the default body).
    """

    name: str
    doc: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    body: Callable[[Variant], list[onnx.NodeProto]]
    reference: Callable[..., tuple]
    kernel: Callable[..., Any] | None = None
    attributes: tuple[Attr, ...] = ()
    state: tuple[str, ...] = ()
    infer: Callable[[Any], None] = same_shape
    variadic: bool = False
    count_outputs: Callable[[Mapping[str, Any]], int] | None = None
    overload: Callable[[Variant], str] = default_overload

    @property
    def state_inputs(self) -> tuple[str, ...]:
        """Formal names of the inputs carrying the state items in."""
        return self.inputs[1 : 1 + len(self.state)]

    @property
    def state_outputs(self) -> tuple[str, ...]:
        """Formal names of the outputs carrying the next state items out."""
        return self.outputs[1 : 1 + len(self.state)]

    @property
    def torch_name(self) -> str:
        """The ``torch.ops.talon`` name: snake case of the op name (``CubaLIF`` -> ``cuba_lif``, ``IF`` -> ``if_``)."""
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", self.name).lower()
        return snake + "_" if keyword.iskeyword(snake) else snake

    def defaults(self) -> dict[str, Any]:
        """{attribute: default} for the attributes that have one."""
        return {a.name: a.default for a in self.attributes if a.default is not None}

    def variant(self, attrs: Mapping[str, Any] | None = None, num_outputs: int | None = None) -> Variant:
        """The Variant of a node with these attributes (defaults filled) and output count."""
        full = {**self.defaults(), **(attrs or {})}
        if num_outputs is None:
            num_outputs = self.count_outputs(full) if self.variadic and self.count_outputs else len(self.outputs)
        return Variant(full, num_outputs)

    def formal_outputs(self, variant: Variant) -> list[str]:
        """The function's output names for a node of this variant (a variadic output numbered per copy)."""
        if self.variadic:
            return [f"{self.outputs[0]}_{i}" for i in range(variant.num_outputs)]
        return list(self.outputs)

    def check(self) -> None:
        """Raise OpSpecError naming the op when the declaration is inconsistent."""
        problems = []
        if not self.name.isidentifier():
            problems.append(f"name {self.name!r} is not an identifier")
        if self.state and (len(self.inputs) <= len(self.state) or len(self.outputs) <= len(self.state)):
            problems.append(f"state items {self.state} need inputs X, one per item, ... and outputs Y, one per item")
        if len(set(self.state)) != len(self.state) or not all(s.isidentifier() for s in self.state):
            problems.append(f"state items {self.state} must be distinct identifiers")
        for a in self.attributes:
            if a.kind not in ATTR_KINDS:
                problems.append(f"attribute {a.name!r} has kind {a.kind!r}, expected one of {ATTR_KINDS}")
        if self.variadic and (len(self.outputs) != 1 or self.count_outputs is None or self.state):
            problems.append("a variadic op has one formal output, a count_outputs rule and no state")
        if problems:
            raise OpSpecError(f"talon op {self.name}: " + "; ".join(problems))


_SPECS: dict[str, OpSpec] = {}
_LISTENERS: list[Callable[[OpSpec], None]] = []


def register_op(spec: OpSpec, *, override: bool = False) -> OpSpec:
    """Add a talon op; its schema, body, reference op, torch op and state naming follow from it.

    A name already registered is refused (OpSpecError) unless override=True.
    """
    if not isinstance(spec, OpSpec):
        raise OpSpecError(f"register_op expects an OpSpec, got {type(spec).__name__}")
    spec.check()
    if spec.name in _SPECS and not override:
        raise OpSpecError(f"talon op {spec.name} is already registered (pass override=True to replace it)")
    _SPECS[spec.name] = spec
    for listener in _LISTENERS:
        listener(spec)
    return spec


def on_register(listener: Callable[[OpSpec], None]) -> None:
    """Call `listener(spec)` for every spec registered so far and every one registered later."""
    _LISTENERS.append(listener)
    for spec in list(_SPECS.values()):
        listener(spec)


def op_spec(name: str) -> OpSpec | None:
    """The spec of talon op `name`, or None."""
    return _SPECS.get(name)


def op_specs() -> Iterator[OpSpec]:
    """Every registered spec, in registration order."""
    return iter(list(_SPECS.values()))


def state_ops() -> dict[str, tuple[str, ...]]:
    """{op name: state items} of every stateful op."""
    return {s.name: s.state for s in _SPECS.values() if s.state}


def attribute_values(node: onnx.NodeProto) -> dict[str, Any]:
    """A node's attributes as Python values (strings decoded)."""
    values = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        values[a.name] = value.decode("utf-8") if isinstance(value, bytes) else value
    return values
