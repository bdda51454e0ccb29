"""Constant padding of the trailing spatial dims, for exporters' asymmetric or 'SAME' padding."""

from __future__ import annotations

from typing import Sequence

from .base import Node, Shape, check_positive, param, register_primitive


@register_primitive
class Pad(Node):
    """Pads the trailing dims with `value`; `padding` is in torch.nn.functional.pad order, last dim first:
    (left, right) for 1-D, (left, right, top, bottom) for 2-D. Negative padding (cropping) is refused."""

    padding: tuple = param("ints")
    value: float = param("float", 0.0, infinite=True)  # -inf pads in front of a max pool

    def validate(self) -> None:
        if not self.padding or len(self.padding) % 2:
            raise self.fail("padding", f"expected (begin, end) pairs, got {self.padding}")
        check_positive(self, "padding", self.padding, allow_zero=True)

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = list(self._single_input(input_shapes))
        pairs = len(self.padding) // 2
        if pairs > len(shape) - 1:
            raise self.fail("padding", f"pads {pairs} trailing dims of an input of shape {tuple(shape)} (channels first)")
        for i in range(pairs):
            shape[-1 - i] += self.padding[2 * i] + self.padding[2 * i + 1]
        return [tuple(shape)]
