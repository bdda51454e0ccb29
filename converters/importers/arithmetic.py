"""Mul and Div of an activation by a constant: a Scale (one factor, or factors broadcast along feature dims,
e.g. one per channel), or the identity for a factor of one (exporters' decompositions write x * 1).
x / c becomes x * (1 / c): exact for powers of two, else within about one float32 rounding of the quotient.
Products of two activations and factors that vary over the batch or enlarge the activation are refused."""

from __future__ import annotations

import warnings

import numpy as np

from talon.ir import Scale

from ..errors import ApproximationWarning
from .context import Alias, Dims, NodeContext, Unsupported, constant, dims
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
    raise Unsupported(f"{ctx.node.op_type} of two activations (or of a constant by an activation) has no TALON IR "
                      "equivalent; only an activation times or divided by a constant maps (to Scale)")


@importer("Mul", data_inputs=None)
def mul(ctx: NodeContext) -> Scale | Alias:
    """x * c or c * x."""
    return scale_by_constant(ctx, (0, 1), reciprocal=False)


@importer("Div", data_inputs=(0,))
def div(ctx: NodeContext) -> Scale | Alias:
    """x / c, as x * (1 / c)."""
    return scale_by_constant(ctx, (1,), reciprocal=True)
