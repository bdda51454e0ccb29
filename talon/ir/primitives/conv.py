"""Convolutions: Conv1d, Conv2d (groups, dilation) and SepConv2d (depthwise then pointwise)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import Node, Shape, check_positive, check_shape, param, register_primitive


def conv_out_len(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool = False) -> int:
    """Output length of a convolution or pooling window along one axis (torch's rule)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
        return out
    return span // stride + 1


def spatial_out(node: Node, shape: Shape, kernel, stride, padding, dilation, ceil_mode: bool = False) -> tuple:
    """Output spatial dims of a window op, raising a PrimitiveError when the window does not fit."""
    out = tuple(
        conv_out_len(s, k, st, p, d, ceil_mode) for s, k, st, p, d in zip(shape, kernel, stride, padding, dilation)
    )
    if any(o <= 0 for o in out):
        raise node.fail("kernel_size", f"window {tuple(kernel)} does not fit input spatial shape {tuple(shape)}")
    return out


class _ConvNd(Node):
    """Shared validation and shape rule of Conv1d and Conv2d."""

    ndim = 0

    def validate(self) -> None:
        nd = self.ndim
        if self.weight.ndim != nd + 2:
            raise self.fail("weight", f"expected a {nd + 2}-D array (out, in/groups, *kernel), got {self.weight.shape}")
        if self.bias is None:
            self.bias = np.zeros(self.weight.shape[0], dtype=self.weight.dtype)
        check_shape(self, "bias", self.bias, (self.weight.shape[0],))
        check_positive(self, "stride", self.stride)
        check_positive(self, "padding", self.padding, allow_zero=True)
        check_positive(self, "dilation", self.dilation)
        check_positive(self, "groups", self.groups)
        check_positive(self, "weight", self.weight.shape[2:])
        if self.weight.shape[0] % self.groups:
            raise self.fail("groups", f"{self.groups} does not divide out_channels {self.weight.shape[0]}")

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1] * self.groups)

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        if len(shape) != self.ndim + 1 or shape[0] != self.in_channels:
            raise self.fail(
                "weight", f"expects input (C={self.in_channels}, {self.ndim} spatial dims), got shape {shape}"
            )
        spatial = spatial_out(self, shape[1:], self.weight.shape[2:], self.stride, self.padding, self.dilation)
        return [(int(self.weight.shape[0]), *spatial)]


@register_primitive
class Conv1d(_ConvNd):
    """1-D convolution over (C, L); weight is (out, in/groups, k)."""

    ndim = 1
    weight: np.ndarray = param("array")
    bias: np.ndarray = param("array", None)
    stride: tuple = param("ints", (1,), length=1)
    padding: tuple = param("ints", (0,), length=1)
    dilation: tuple = param("ints", (1,), length=1)
    groups: int = param("int", 1)


@register_primitive
class Conv2d(_ConvNd):
    """2-D convolution over (C, H, W); weight is (out, in/groups, kH, kW)."""

    ndim = 2
    weight: np.ndarray = param("array")
    bias: np.ndarray = param("array", None)
    stride: tuple = param("ints", (1, 1), length=2)
    padding: tuple = param("ints", (0, 0), length=2)
    dilation: tuple = param("ints", (1, 1), length=2)
    groups: int = param("int", 1)


@register_primitive
class SepConv2d(Node):
    """Depthwise (C,1,kH,kW) convolution, then pointwise (C',C,1,1); stride/padding/dilation are the depthwise's."""

    depthwise_weight: np.ndarray = param("array")
    pointwise_weight: np.ndarray = param("array")
    depthwise_bias: np.ndarray = param("array", None)
    pointwise_bias: np.ndarray = param("array", None)
    stride: tuple = param("ints", (1, 1), length=2)
    padding: tuple = param("ints", (0, 0), length=2)
    dilation: tuple = param("ints", (1, 1), length=2)

    def validate(self) -> None:
        dw, pw = self.depthwise_weight, self.pointwise_weight
        if dw.ndim != 4 or dw.shape[1] != 1:
            raise self.fail("depthwise_weight", f"expected shape (C, 1, kH, kW), got {dw.shape}")
        if pw.ndim != 4 or pw.shape[1] != dw.shape[0] or pw.shape[2:] != (1, 1):
            raise self.fail("pointwise_weight", f"expected shape (C', {dw.shape[0]}, 1, 1), got {pw.shape}")
        if self.depthwise_bias is None:
            self.depthwise_bias = np.zeros(dw.shape[0], dtype=dw.dtype)
        if self.pointwise_bias is None:
            self.pointwise_bias = np.zeros(pw.shape[0], dtype=pw.dtype)
        check_shape(self, "depthwise_bias", self.depthwise_bias, (dw.shape[0],))
        check_shape(self, "pointwise_bias", self.pointwise_bias, (pw.shape[0],))
        check_positive(self, "stride", self.stride)
        check_positive(self, "padding", self.padding, allow_zero=True)
        check_positive(self, "dilation", self.dilation)

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        channels = self.depthwise_weight.shape[0]
        if len(shape) != 3 or shape[0] != channels:
            raise self.fail("depthwise_weight", f"expects input (C={channels}, H, W), got shape {shape}")
        kernel = self.depthwise_weight.shape[2:]
        spatial = spatial_out(self, shape[1:], kernel, self.stride, self.padding, self.dilation)
        return [(int(self.pointwise_weight.shape[0]), *spatial)]
