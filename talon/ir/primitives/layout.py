"""Layout primitives beyond the established set: Permute (the transposes around a channels-last LayerNorm,
as in ConvNeXt), ChannelShuffle (shufflenet's reshape-transpose-reshape) and Slice (a range of one dim, as
in ghostnet's `x[:, :oup]`). Dims count the batch dimension (1 = channels), as Concat's and ChannelSplit's do.
"""

from __future__ import annotations

from typing import Sequence

from .base import Node, Shape, check_positive, param, register_primitive
from .routing import feature_axis


@register_primitive
class Permute(Node):
    """torch.permute with `dims` a permutation of all dims, the batch included and kept first (dims[0] == 0)."""

    dims: tuple = param("ints")

    def validate(self) -> None:
        if sorted(self.dims) != list(range(len(self.dims))) or len(self.dims) < 2:
            raise self.fail("dims", f"must be a permutation of 0..n-1 (n >= 2), got {self.dims}")
        if self.dims[0] != 0:
            raise self.fail("dims", f"must keep the batch dim first (dims[0] == 0), got {self.dims}")

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        if len(shape) + 1 != len(self.dims):
            raise self.fail("dims", f"{self.dims} permutes {len(self.dims)} dims, the input has {len(shape) + 1} "
                                    f"(batch and {tuple(shape)})")
        return [tuple(shape[d - 1] for d in self.dims[1:])]


@register_primitive
class ChannelShuffle(Node):
    """torch.nn.ChannelShuffle: channels (dim 1) viewed as (groups, C / groups), transposed and flattened back,
    so output channel j * groups + g is input channel g * (C / groups) + j."""

    groups: int = param("int")

    def validate(self) -> None:
        check_positive(self, "groups", self.groups)

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        if not shape or shape[0] % self.groups:
            raise self.fail("groups", f"{self.groups} does not divide the channels of an input of shape {shape}")
        return [shape]


@register_primitive
class Slice(Node):
    """x[..., start:end:step, ...] along `dim` (torch dim with the batch; never the batch); start and end are
    non-negative indices clipped to the dim, like Python slicing of non-negative bounds."""

    dim: int = param("int")
    start: int = param("int")
    end: int = param("int")
    step: int = param("int", 1)

    def validate(self) -> None:
        if self.dim == 0:
            raise self.fail("dim", "0 is the batch dimension; slice a feature dim (>= 1 or negative)")
        check_positive(self, "start", self.start, allow_zero=True)
        check_positive(self, "end", self.end, allow_zero=True)
        check_positive(self, "step", self.step)

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        axis = feature_axis(self, "dim", self.dim, len(shape))
        size = len(range(*slice(self.start, self.end, self.step).indices(shape[axis])))
        if size == 0:
            raise self.fail("end", f"slice {self.start}:{self.end}:{self.step} of a dim of size {shape[axis]} is empty")
        return [(*shape[:axis], size, *shape[axis + 1 :])]
