"""Element-wise primitives beyond the established set: HardSigmoid, HardSwish and SiLU (the activations of
mobilenet_v3 and efficientnet), Bias (x + constant), and the merges Multiply (gating, as in
squeeze-and-excitation) and Subtract (the difference of two activations).

Multiply and Subtract take their inputs in edge order and broadcast them like numpy over the feature dims
(never over the batch): SE gating multiplies (C, H, W) by (C, 1, 1).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import Node, Shape, param, register_primitive


@register_primitive
class HardSigmoid(Node):
    """max(0, min(1, alpha * x + beta)); torch's Hardsigmoid is alpha = 1/6, beta = 0.5 (ONNX's defaults are
    0.2 and 0.5, so both are always stored)."""

    alpha: float = param("float", 1.0 / 6.0)
    beta: float = param("float", 0.5)
    features: int = param("dims", None)


@register_primitive
class HardSwish(Node):
    """x * max(0, min(1, x / 6 + 0.5)) (ONNX HardSwish, torch Hardswish)."""

    features: int = param("dims", None)


@register_primitive
class SiLU(Node):
    """x * sigmoid(x) (swish)."""

    features: int = param("dims", None)


def broadcast_feature_shapes(node: Node, field: str, shapes: Sequence[Shape]) -> Shape:
    """numpy broadcast of batch-less shapes (right-aligned); PrimitiveError when they do not broadcast."""
    if not shapes:
        raise node.fail("inputs", "needs at least one input")
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*(tuple(s) for s in shapes)))
    except ValueError:
        raise node.fail(field, f"inputs of shapes {list(shapes)} do not broadcast") from None


@register_primitive
class Bias(Node):
    """y = x + bias, the constant broadcast over the feature dims (right-aligned, like Scale): one value,
    one per channel as (C, 1, 1), or one per element; it never enlarges the input."""

    bias: np.ndarray = param("array")

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        if broadcast_feature_shapes(self, "bias", [shape, self.bias.shape]) != tuple(shape):
            raise self.fail("bias", f"shape {self.bias.shape} would enlarge the input of shape {shape}")
        return [shape]


@register_primitive
class Multiply(Node):
    """The element-wise product of its inputs (edge order), broadcast over the feature dims."""

    merge = True
    features: int = param("dims", None)

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        return [broadcast_feature_shapes(self, "inputs", input_shapes)]


@register_primitive
class Subtract(Node):
    """Its first input minus its second (edge order), broadcast over the feature dims."""

    merge = True
    features: int = param("dims", None)

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        if len(input_shapes) != 2:
            raise self.fail("inputs", f"takes exactly two inputs (minuend, subtrahend), got {len(input_shapes)}")
        return [broadcast_feature_shapes(self, "inputs", input_shapes)]
