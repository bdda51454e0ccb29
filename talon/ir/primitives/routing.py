"""Routing primitives: Skip (residual / concatenate / passthrough), ChannelSplit and Concat.

Merge nodes combine their inputs in edge order; ChannelSplit hands its i-th output to its i-th
outgoing edge. Concat's and ChannelSplit's `dim` are torch dims counting the batch (1 = channels).
"""

from __future__ import annotations

from typing import Sequence

from .base import Node, Shape, check_choice, check_positive, param, register_primitive

SKIP_TYPES = {"residual": "residual", "add": "residual", "concatenate": "concatenate",
              "concat": "concatenate", "passthrough": "passthrough", "identity": "passthrough"}


def feature_axis(node: Node, field: str, dim: int, rank: int) -> int:
    """Index into a batch-less shape of rank `rank` for a torch dim that counts the batch."""
    axis = dim + rank if dim < 0 else dim - 1
    if not 0 <= axis < rank:
        raise node.fail(field, f"dim {dim} is out of range for an input of {rank} feature dims (plus batch)")
    return axis


def concat_shapes(node: Node, field: str, dim: int, shapes: Sequence[Shape]) -> Shape:
    """Shape of inputs concatenated along a torch dim; raises when the other dims differ."""
    if not shapes:
        raise node.fail("inputs", "needs at least one input")
    rank = len(shapes[0])
    axis = feature_axis(node, field, dim, rank)
    for s in shapes:
        if len(s) != rank or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != axis):
            raise node.fail(field, f"inputs {list(shapes)} differ outside the concatenation dim {dim}")
    return (*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1 :])


@register_primitive
class Skip(Node):
    """A skip junction: 'residual' sums its inputs, 'concatenate' joins them on dim 1 in edge order,
    'passthrough' forwards its single input. Aliases 'add', 'concat', 'identity' are accepted as written."""

    merge = True
    skip_type: str = param("str", "residual")

    def validate(self) -> None:
        check_choice(self, "skip_type", self.skip_type, tuple(SKIP_TYPES))

    @property
    def kind(self) -> str:
        """The canonical skip type ('residual', 'concatenate' or 'passthrough')."""
        return SKIP_TYPES[self.skip_type]

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        if self.kind == "concatenate":
            return [concat_shapes(self, "skip_type", 1, input_shapes)]
        return [self._single_input(input_shapes)]


@register_primitive
class ChannelSplit(Node):
    """Splits its input along `dim` into `split_sections`; output i goes to outgoing edge i."""

    multi_output = True
    split_sections: tuple = param("ints")
    dim: int = param("int", 1)

    def validate(self) -> None:
        if not self.split_sections:
            raise self.fail("split_sections", "must not be empty")
        check_positive(self, "split_sections", self.split_sections)

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        axis = feature_axis(self, "dim", self.dim, len(shape))
        if sum(self.split_sections) != shape[axis]:
            raise self.fail(
                "split_sections", f"sum {sum(self.split_sections)} differs from input size {shape[axis]} on dim {self.dim}"
            )
        return [(*shape[:axis], n, *shape[axis + 1 :]) for n in self.split_sections]


@register_primitive
class Concat(Node):
    """Concatenates its inputs along `dim` (torch dim counting the batch) in edge order."""

    merge = True
    dim: int = param("int", 1)

    def validate(self) -> None:
        if self.dim == 0:
            raise self.fail("dim", "0 is the batch dimension; concatenate along a feature dim (>= 1 or negative)")

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        return [concat_shapes(self, "dim", self.dim, input_shapes)]
