"""Elementwise activations and Softmax; `features` records the feature count or shape (informative)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .base import Node, Shape, param, register_primitive
from .routing import feature_axis


@register_primitive
class ReLU(Node):
    """max(x, 0), or leaky (x if x > 0 else negative_slope * x) when negative_slope is non-zero."""

    features: int = param("dims", None)
    negative_slope: float = param("float", 0.0)


@register_primitive
class Clamp(Node):
    """min(max(x, min_value), max_value), a bound of None being no bound (ReLU6 is Clamp(0, 6), Hardtanh
    Clamp(-1, 1)); at least one bound, each finite, so that every clamp has one form."""

    min_value: float = param("float", None)
    max_value: float = param("float", None)
    features: int = param("dims", None)

    def validate(self) -> None:
        if self.min_value is None and self.max_value is None:
            raise self.fail("max_value", "a clamp needs at least one bound (without any it is the identity)")
        for name in ("min_value", "max_value"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise self.fail(name, f"must be finite (None means unbounded), got {value}")
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise self.fail("max_value", f"{self.max_value} is below min_value {self.min_value}")


@register_primitive
class Sigmoid(Node):
    """1 / (1 + exp(-x))."""

    features: int = param("dims", None)


@register_primitive
class Tanh(Node):
    """tanh(x)."""

    features: int = param("dims", None)


@register_primitive
class Softmax(Node):
    """Softmax along `dim`: torch numbering counting the batch when >= 1, from the end when negative.
    The IR never normalises across the batch: dim 0 means the first feature dim."""

    features: int = param("dims", None)
    dim: int = param("int", -1)

    def feature_axis(self, rank: int) -> int:
        """The batch-less axis this softmax normalises over, for an input of the given rank."""
        return feature_axis(self, "dim", self.dim if self.dim != 0 else 1, rank)

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        self.feature_axis(len(shape))
        return [shape]


@register_primitive
class GELU(Node):
    """Gaussian error linear unit; approximate=True is the tanh approximation."""

    features: int = param("dims", None)
    approximate: bool = param("bool", True)


@register_primitive
class ELU(Node):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    features: int = param("dims", None)
    alpha: float = param("float", 1.0)


@register_primitive
class PReLU(Node):
    """x if x > 0 else weight * x, with weight of size 1 or one per channel (dim 1 with the batch)."""

    weight: np.ndarray = param("array")
    features: int = param("dims", None)

    def validate(self) -> None:
        if self.weight.ndim != 1 or self.weight.size == 0:
            raise self.fail("weight", f"expected a 1-D array of 1 or C values, got shape {self.weight.shape}")

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        if self.weight.size != 1 and (not shape or shape[0] != self.weight.size):
            raise self.fail("weight", f"{self.weight.size} slopes do not fit input channels of shape {shape}")
        return [shape]
