"""Dense layers: Affine (y = x W^T + b) and its hardware-quantised twin SpikingAffine."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import Node, Shape, check_choice, check_shape, param, register_primitive

SPIKE_MODES = ("binary", "graded", "rate")


@register_primitive
class Affine(Node):
    """y = x @ weight.T + bias over the last dimension; weight is (out, in). A missing bias is zeros."""

    weight: np.ndarray = param("array")
    bias: np.ndarray = param("array", None)

    def validate(self) -> None:
        if self.weight.ndim != 2:
            raise self.fail("weight", f"expected a 2-D (out, in) array, got shape {self.weight.shape}")
        if self.bias is None:
            self.bias = np.zeros(self.weight.shape[0], dtype=self.weight.dtype)
        check_shape(self, "bias", self.bias, (self.weight.shape[0],))

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        if not shape or shape[-1] != self.weight.shape[1]:
            raise self.fail("weight", f"expects inputs with last dim {self.weight.shape[1]}, got shape {shape}")
        return [(*shape[:-1], int(self.weight.shape[0]))]


@register_primitive
class SpikingAffine(Affine):
    """Affine with the quantisation the hardware uses: spike_mode, weight_bits, accumulator_bits."""

    spike_mode: str = param("str", "binary")
    weight_bits: int = param("int", 8)
    accumulator_bits: int = param("int", 16)

    def validate(self) -> None:
        super().validate()
        check_choice(self, "spike_mode", self.spike_mode, SPIKE_MODES)
        if not 1 <= self.weight_bits <= 32:
            raise self.fail("weight_bits", f"must be in [1, 32], got {self.weight_bits}")
        if not 1 <= self.accumulator_bits <= 64:
            raise self.fail("accumulator_bits", f"must be in [1, 64], got {self.accumulator_bits}")
        if self.accumulator_bits < self.weight_bits:
            raise self.fail(
                "accumulator_bits",
                f"must be >= weight_bits ({self.weight_bits}), got {self.accumulator_bits}",
            )
