"""What an importer sees (NodeContext) and what it returns (a Node, an Emit chain, an Alias or a Fusion)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import onnx_ir as ir

from talon.ir import Node

from ..errors import ConversionError


class Unsupported(Exception):
    """Raised by an importer when a node's pattern has no exact TALON IR equivalent; carries the reason."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class UnknownShape(Unsupported):
    """The node cannot be mapped because a shape is unknown or dynamic: a knock-on failure when an upstream
    node was refused (ONNX shape inference stops there), which the refusal list then leaves out."""


@dataclass(frozen=True)
class Options:
    """Conversion options shared by every importer."""

    spiking: bool = False
    weight_bits: int = 8
    accumulator_bits: int = 16
    spike_mode: str = "binary"
    custom_nodes: Mapping[str, Node] = field(default_factory=dict)
    declared_outputs: frozenset[str] | None = None  # ONNX outputs whose shape the source model declares (None: all)


@dataclass
class Emit:
    """IR nodes for one ONNX node (or fusion), applied in sequence: the first takes the data inputs, the last
    produces the outputs. Each is (suffix, node): the node is named base + '.' + suffix ('' for the main one)."""

    nodes: list[tuple[str, Node]]
    name: str | None = None  # an explicit base name, overriding the one from the exporter's scopes


@dataclass(frozen=True)
class Alias:
    """The node's output is its data input `index` unchanged (Identity, a reshape to the same shape)."""

    index: int = 0


@dataclass
class Fusion:
    """Several ONNX nodes converted as one: `members` (root first), one activation `input`, one `output`, or
    for a multi-output node (ChannelSplit) its `outputs` in order."""

    members: list[ir.Node]
    input: ir.Value
    output: ir.Value
    build: Callable[[], "Node | Emit"]
    outputs: list[ir.Value] | None = None


Dims = tuple  # a shape with the batch dim; unknown dims are None


def dims(value: ir.Value | None) -> Dims | None:
    """A value's shape as a tuple (None for unknown dims), or None when even the rank is unknown."""
    if value is None or value.shape is None:
        return None
    return tuple(d if isinstance(d, int) else None for d in value.shape)


def constant(value: ir.Value | None) -> np.ndarray | None:
    """The numpy value of a constant (initializer or folded) input, or None when it is not constant."""
    if value is None or value.const_value is None:
        return None
    try:
        return value.const_value.numpy()
    except (ValueError, TypeError, AssertionError) as exc:  # truncated raw_data, data in the wrong *_data field
        raise ConversionError(f"constant {value.name!r} ({value.const_value.dtype}, shape {value.const_value.shape}): "
                              f"its data cannot be read: {type(exc).__name__}: {exc}") from None


def same_dim(a: ir.Value, b: ir.Value, axis: int) -> bool:
    """True when two values have the same (static or symbolic) size on an axis."""
    sa, sb = a.shape, b.shape
    if sa is None or sb is None or len(sa) <= axis or len(sb) <= axis:
        return False
    return sa[axis] == sb[axis]


_T = ir.AttributeType
INTS, FLOATS, STRING = _T.INTS, _T.FLOATS, _T.STRING  # kinds for attributes without a default
_ACCEPTED = {_T.FLOAT: (_T.FLOAT, _T.INT), _T.FLOATS: (_T.FLOATS, _T.INTS)}  # ints widen to floats


def _kind_of(default: Any) -> ir.AttributeType | None:
    """The ONNX attribute type an attribute with this default must have (None: the caller checks)."""
    if isinstance(default, (bool, int)):
        return _T.INT
    if isinstance(default, float):
        return _T.FLOAT
    if isinstance(default, str):
        return _T.STRING
    if isinstance(default, (list, tuple)):
        return _T.FLOATS if any(isinstance(v, float) for v in default) else _T.INTS
    return None


class NodeContext:
    """Accessors for one ONNX node: attributes, constant inputs, shapes, opset and options."""

    def __init__(self, node: ir.Node, opset: int, options: Options):
        self.node = node
        self.opset = opset
        self.options = options

    def attr(self, name: str, default: Any = None, kind: ir.AttributeType | None = None) -> Any:
        """An attribute's Python value (ints/floats/strings/lists), or default when absent. Its ONNX type must be
        `kind` (by default the type of `default`), else the node is refused naming the attribute."""
        a = self.node.attributes.get(name)
        if a is None:
            return default
        expected = _kind_of(default) if kind is None else kind
        if expected is not None and a.type not in _ACCEPTED.get(expected, (expected,)):
            raise Unsupported(f"attribute {name!r} must be of type {expected.name}, got {a.type.name}")
        value = a.value
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        if isinstance(value, (ir.Tensor, ir.TensorProtocol)):
            return value.numpy()
        return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value

    def required(self, name: str, kind: ir.AttributeType) -> Any:
        """A required attribute's value (see attr); refuses the node when it is missing."""
        if name not in self.node.attributes:
            raise Unsupported(f"the required attribute {name!r} is missing")
        return self.attr(name, kind=kind)

    def has_input(self, i: int) -> bool:
        """True when input slot i is present and not the empty name."""
        return i < len(self.node.inputs) and self.node.inputs[i] is not None

    def const(self, i: int, what: str) -> np.ndarray:
        """The constant value of input i, refusing the node when it is computed at run time."""
        value = constant(self.node.inputs[i]) if self.has_input(i) else None
        if value is None:
            raise Unsupported(f"{what} (input {i}) must be a constant")
        return value

    def optional_const(self, i: int, what: str) -> np.ndarray | None:
        """The constant value of an optional input i, None when it is absent."""
        return self.const(i, what) if self.has_input(i) else None

    def shape(self, i: int = 0) -> Dims:
        """Shape (with batch) of input i; refuses the node when its rank is unknown."""
        shape = dims(self.node.inputs[i]) if self.has_input(i) else None
        if shape is None:
            raise UnknownShape(f"the shape of input {i} is unknown (shape inference could not determine it)")
        return shape

    def out_shape(self, i: int = 0) -> Dims:
        """Shape (with batch) of output i; refuses the node when it is unknown."""
        shape = dims(self.node.outputs[i])
        if shape is None:
            raise UnknownShape(f"the shape of output {i} is unknown (shape inference could not determine it)")
        return shape

    def features(self, i: int = 0, out: bool = False) -> tuple[int, ...]:
        """Static shape without the batch dim of input (or output) i; refuses dynamic feature dims."""
        shape = self.out_shape(i) if out else self.shape(i)
        if not shape or any(d is None for d in shape[1:]):
            raise UnknownShape(f"{'output' if out else 'input'} {i} needs static feature dims, got {shape}")
        return tuple(int(d) for d in shape[1:])

    def axis(self, axis: int, rank: int) -> int:
        """A non-negative axis; refuses the batch axis."""
        a = axis + rank if axis < 0 else axis
        if not 0 < a < rank:
            raise Unsupported(f"axis {axis} is the batch axis or out of range for rank {rank}")
        return a

    def outputs_used(self) -> list[bool]:
        """For each output: whether anything (node or graph output) reads it."""
        return [bool(v is not None and (v.uses() or v.is_graph_output())) for v in self.node.outputs]

    def refuse_extra_outputs(self, keep: int = 1) -> None:
        """Refuse the node when an output beyond the first `keep` is used (training statistics, indices)."""
        used = self.outputs_used()
        if any(used[keep:]):
            raise Unsupported(f"only the first {keep} output(s) can be converted; output(s) {[i for i, u in enumerate(used) if i >= keep and u]} are used")
