"""Spatial reshaping: MaxPool2d, AvgPool2d, Upsample and Flatten."""

from __future__ import annotations

from typing import Sequence

from .base import Node, Shape, check_choice, check_positive, numel, param, register_primitive
from .conv import spatial_out

UPSAMPLE_MODES = ("nearest", "bilinear")


class _Pool2d(Node):
    """Shared validation and shape rule of the 2-D pooling primitives."""

    def validate(self) -> None:
        if self.stride is None:
            self.stride = tuple(self.kernel_size)
        check_positive(self, "kernel_size", self.kernel_size)
        check_positive(self, "stride", self.stride)
        check_positive(self, "padding", self.padding, allow_zero=True)
        for pad, k in zip(self.padding, self.kernel_size):
            if pad > k // 2:
                raise self.fail("padding", f"must be at most half the kernel size {tuple(self.kernel_size)}, got {self.padding}")

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        if len(shape) != 3:
            raise self.fail("kernel_size", f"expects a (C, H, W) input, got shape {shape}")
        dilation = getattr(self, "dilation", (1, 1))
        spatial = spatial_out(self, shape[1:], self.kernel_size, self.stride, self.padding, dilation, self.ceil_mode)
        return [(shape[0], *spatial)]


@register_primitive
class MaxPool2d(_Pool2d):
    """2-D max pooling; `stride` defaults to `kernel_size`."""

    kernel_size: tuple = param("ints", length=2)
    stride: tuple = param("ints", None, length=2)
    padding: tuple = param("ints", (0, 0), length=2)
    dilation: tuple = param("ints", (1, 1), length=2)
    ceil_mode: bool = param("bool", False)

    def validate(self) -> None:
        super().validate()
        check_positive(self, "dilation", self.dilation)


@register_primitive
class AvgPool2d(_Pool2d):
    """2-D average pooling; `count_include_pad` counts zero padding in the divisor (torch's default)."""

    kernel_size: tuple = param("ints", length=2)
    stride: tuple = param("ints", None, length=2)
    padding: tuple = param("ints", (0, 0), length=2)
    ceil_mode: bool = param("bool", False)
    count_include_pad: bool = param("bool", True)


@register_primitive
class Upsample(Node):
    """Spatial upsampling of (C, H, W) by an integer `scale_factor` or to a fixed `size` (H, W)."""

    mode: str = param("str", "nearest")
    align_corners: bool = param("bool", False)
    scale_factor: int = param("int", None)
    size: tuple = param("ints", None, length=2)

    def validate(self) -> None:
        check_choice(self, "mode", self.mode, UPSAMPLE_MODES)
        if (self.scale_factor is None) == (self.size is None):
            raise self.fail("scale_factor", "give exactly one of scale_factor and size")
        if self.scale_factor is not None:
            check_positive(self, "scale_factor", self.scale_factor)
        if self.size is not None:
            check_positive(self, "size", self.size)
        if self.align_corners and self.mode == "nearest":
            raise self.fail("align_corners", "applies to mode 'bilinear' only")

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        if len(shape) != 3:
            raise self.fail("mode", f"expects a (C, H, W) input, got shape {shape}")
        if self.size is not None:
            return [(shape[0], *self.size)]
        return [(shape[0], shape[1] * self.scale_factor, shape[2] * self.scale_factor)]


@register_primitive
class Flatten(Node):
    """Flattens dims start_dim..end_dim, numbered without the batch dimension (0 = first feature dim)."""

    start_dim: int = param("int", 0)
    end_dim: int = param("int", -1)

    def dims(self, rank: int) -> tuple[int, int]:
        """start and end as non-negative feature-dim indices for an input of the given rank."""
        start = self.start_dim + rank if self.start_dim < 0 else self.start_dim
        end = self.end_dim + rank if self.end_dim < 0 else self.end_dim
        if not (0 <= start < rank and 0 <= end < rank and start <= end):
            raise self.fail("start_dim", f"dims ({self.start_dim}, {self.end_dim}) do not fit an input of rank {rank}")
        return start, end

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        if not shape:
            return [(1,)]
        start, end = self.dims(len(shape))
        return [(*shape[:start], numel(shape[start : end + 1]), *shape[end + 1 :])]
