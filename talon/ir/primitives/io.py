"""Graph boundary primitives: Input and Output carry a shape without the batch dimension."""

from __future__ import annotations

from typing import Sequence

from .base import Node, Shape, check_positive, param, register_primitive


@register_primitive
class Input(Node):
    """A graph input; `shape` excludes the batch dimension (``Input(np.array([128]))``)."""

    shape: tuple = param("ints")

    def validate(self) -> None:
        check_positive(self, "shape", self.shape)

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        return [tuple(self.shape)]


@register_primitive
class Output(Node):
    """A graph output; passes its (summed) input through. `shape` excludes the batch dimension."""

    shape: tuple = param("ints")

    def validate(self) -> None:
        check_positive(self, "shape", self.shape)
