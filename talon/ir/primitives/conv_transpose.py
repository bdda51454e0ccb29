"""ConvTranspose2d (a transposed, "fractionally strided" convolution, as in decoders and upsampling heads)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import Node, Shape, check_positive, check_shape, param, register_primitive


@register_primitive
class ConvTranspose2d(Node):
    """torch.nn.ConvTranspose2d: weight (in, out / groups, kH, kW), out = (in - 1) * stride - 2 * padding +
    dilation * (k - 1) + output_padding + 1 per spatial dim."""

    weight: np.ndarray = param("array")
    bias: np.ndarray = param("array", None)
    stride: tuple = param("ints", (1, 1), length=2)
    padding: tuple = param("ints", (0, 0), length=2)
    output_padding: tuple = param("ints", (0, 0), length=2)
    dilation: tuple = param("ints", (1, 1), length=2)
    groups: int = param("int", 1)

    def validate(self) -> None:
        if self.weight.ndim != 4:
            raise self.fail("weight", f"expected a 4-D array (in, out/groups, kH, kW), got {self.weight.shape}")
        check_positive(self, "groups", self.groups)
        if self.weight.shape[0] % self.groups:
            raise self.fail("groups", f"{self.groups} does not divide in_channels {self.weight.shape[0]}")
        if self.bias is None:
            self.bias = np.zeros(self.out_channels, dtype=self.weight.dtype)
        check_shape(self, "bias", self.bias, (self.out_channels,))
        check_positive(self, "stride", self.stride)
        check_positive(self, "padding", self.padding, allow_zero=True)
        check_positive(self, "dilation", self.dilation)
        check_positive(self, "output_padding", self.output_padding, allow_zero=True)
        if any(op >= max(s, d) for op, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise self.fail("output_padding", f"{self.output_padding} must be smaller than stride or dilation")

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[1] * self.groups)

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        if len(shape) != 3 or shape[0] != self.weight.shape[0]:
            raise self.fail("weight", f"expects a ({self.weight.shape[0]}, H, W) input, got shape {shape}")
        spatial = tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, p, d, op in zip(
            shape[1:], self.weight.shape[2:], self.stride, self.padding, self.dilation, self.output_padding))
        if any(o <= 0 for o in spatial):
            raise self.fail("padding", f"{self.padding} leaves no output for an input of shape {shape}")
        return [(self.out_channels, *spatial)]
