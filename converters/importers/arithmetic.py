"""Mul, Div, Add and Sub with constants and of two activations.

An activation times a constant is a Scale (one factor, or factors broadcast along feature dims, e.g. one
per channel), or the identity for a factor of one (exporters' decompositions write x * 1). x / c becomes
x * (1 / c): exact for powers of two, else within about one float32 rounding of the quotient. x + c and
x - c are a Bias (x - c as x + (-c), exact), c - x a Scale(-1) then a Bias. The product of two activations
is a Multiply (gating, broadcast over feature dims), their difference a Subtract. Constants that vary over
the batch or enlarge the activation are refused."""

from __future__ import annotations

import warnings

import numpy as np

from talon.ir import Bias, Multiply, Scale, Skip, Subtract

from ..errors import ApproximationWarning
from .context import Alias, Dims, Emit, NodeContext, Unsupported, constant, dims, same_dim
from .registry import importer


def _feature_factor(factor: np.ndarray, x: Dims | None) -> np.ndarray:
    """The constant, broadcast against the activation's dims x (batch first) as ONNX does (right-aligned),
    as a batch-less array of the fewest dims that broadcasts the same way onto the features."""
    if x is None:
        raise Unsupported("the rank of the activation is unknown (shape inference could not determine it)")
    if factor.ndim > len(x):
        raise Unsupported(f"the constant of shape {factor.shape} has more dims than the activation {x}")
    aligned = (1,) * (len(x) - factor.ndim) + factor.shape
    if aligned[0] != 1:
        raise Unsupported(f"the constant of shape {factor.shape} varies over the batch dim of the activation {x}")
    for axis, (size, dim) in enumerate(zip(aligned, x)):
        if size != 1 and size != dim:
            raise Unsupported(f"the constant of shape {factor.shape} does not fit the activation {x} on axis {axis}: "
                              "it would enlarge it (or that dim's size is unknown)")
    features = list(aligned[1:])
    while features and features[0] == 1:
        features.pop(0)
    return factor.reshape(features or (1,))


def scale_by_constant(ctx: NodeContext, constant_slots: tuple[int, ...], reciprocal: bool) -> Scale | Alias:
    """Scale (or the identity when every factor is one) for the activation times the constant in one of
    constant_slots (divided by it when `reciprocal`)."""
    inputs = ctx.node.inputs
    for slot in constant_slots:
        value = constant(inputs[slot]) if slot < len(inputs) else None
        data = 1 - slot
        if value is not None and constant(inputs[data]) is None:
            factor = _feature_factor(value, dims(inputs[data]))
            if np.all(factor == 1):
                return Alias(data)
            if reciprocal and not np.all(np.abs(np.frexp(factor)[0]) == 0.5):  # 1/c is exact only for powers of two
                warnings.warn(f"{ctx.node.op_type} node {ctx.node.name!r}: x / c imported as Scale(1 / c), which can "
                              "differ from the quotient by about one float32 rounding", ApproximationWarning,
                              stacklevel=2)
            return Scale(scale=np.reciprocal(factor) if reciprocal else factor)
    raise Unsupported(f"{ctx.node.op_type} by an activation has no TALON IR equivalent; only an activation times "
                      "or divided by a constant (Scale) and the product of two activations (Multiply) map")


def two_activations(ctx: NodeContext) -> bool:
    """True when both inputs are activations that broadcast over the feature dims only (same batch dim, static
    feature dims); refuses the node when they are activations that do not."""
    inputs = ctx.node.inputs
    if len(inputs) != 2 or any(v is None or constant(v) is not None for v in inputs):
        return False
    a, b = ctx.shape(0), ctx.shape(1)
    if len(a) != len(b) or not same_dim(inputs[0], inputs[1], 0):
        raise Unsupported(f"{ctx.node.op_type} of activations of shapes {a} and {b} broadcasts over the batch dim")
    ctx.features(0), ctx.features(1)
    try:
        np.broadcast_shapes(a[1:], b[1:])
    except ValueError:
        raise Unsupported(f"{ctx.node.op_type} of activations of shapes {a} and {b}: they do not broadcast") from None
    return True


def _constant_operand(ctx: NodeContext) -> tuple[int, np.ndarray] | None:
    """(slot, value) of the one constant input of a binary node whose other input is an activation."""
    inputs = ctx.node.inputs
    if len(inputs) != 2:
        return None
    values = [constant(v) for v in inputs]
    found = [(i, v) for i, v in enumerate(values) if v is not None]
    return found[0] if len(found) == 1 else None


def bias(ctx: NodeContext, value: np.ndarray, data: int) -> Bias | Alias:
    """Bias (x + value, broadcast over the features), or the identity for a zero constant."""
    offset = _feature_factor(value, dims(ctx.node.inputs[data]))
    return Alias(data) if np.all(offset == 0) else Bias(bias=offset)


@importer("Mul", data_inputs=None)
def mul(ctx: NodeContext) -> Scale | Multiply | Alias:
    """x * c or c * x (Scale), x * y of two activations (Multiply)."""
    if two_activations(ctx):
        return Multiply()
    return scale_by_constant(ctx, (0, 1), reciprocal=False)


@importer("Sub", data_inputs=None)
def sub(ctx: NodeContext) -> Subtract | Bias | Emit | Alias:
    """x - y (Subtract), x - c (Bias of -c), c - x (Scale(-1) then Bias of c)."""
    if two_activations(ctx):
        return Subtract()
    found = _constant_operand(ctx)
    if found is None:
        raise Unsupported("Sub needs two activations or an activation and a constant")
    slot, value = found
    if slot == 1:
        return bias(ctx, -value, 0)
    negated = Scale(scale=np.array([-1], dtype=value.dtype if value.dtype.kind == "f" else np.float32))
    offset = bias(ctx, value, 1)
    return Emit([("neg", negated)] + ([] if isinstance(offset, Alias) else [("", offset)]))


@importer("Add", "Sum", data_inputs=None)
def add(ctx: NodeContext) -> Skip | Bias | Alias:
    """The sum of activations of one shape: a residual Skip (inputs in order); x + c: a Bias."""
    inputs = ctx.node.inputs
    if len(inputs) == 1:
        return Alias(0)
    found = _constant_operand(ctx)
    if found is not None:
        return bias(ctx, found[1], 1 - found[0])
    consts = [i for i, v in enumerate(inputs) if constant(v) is not None]
    if consts:
        raise Unsupported(f"addition of several constants (input(s) {consts}) has no TALON IR equivalent")
    shapes = {dims(v) for v in inputs}
    if len(shapes) != 1 or None in shapes:
        raise Unsupported(f"adds activations of different or unknown shapes {sorted(map(str, shapes))} (broadcasting)")
    return Skip(skip_type="residual")


@importer("Div", data_inputs=(0,))
def div(ctx: NodeContext) -> Scale | Alias:
    """x / c, as x * (1 / c)."""
    return scale_by_constant(ctx, (1,), reciprocal=True)
