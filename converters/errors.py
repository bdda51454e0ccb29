"""Errors raised by the converters: a model that cannot be read, and every unsupported node at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from talon.ir.errors import TalonError


class ApproximationWarning(UserWarning):
    """A node was converted with a small, stated numeric change (e.g. x / c imported as x * (1/c))."""


class ConversionError(TalonError, ValueError):
    """A model cannot be converted (unreadable file, dynamic feature shapes, unknown extension)."""


@dataclass(frozen=True)
class UnsupportedNode:
    """One ONNX node the importer cannot map: where it is (with the torch module that wrote it, when the
    exporter recorded it) and why."""

    op_type: str
    name: str
    domain: str
    opset: int
    reason: str
    module: str | None = None

    @property
    def op(self) -> str:
        """The op type, prefixed by its domain outside the default ONNX domain (`ai.onnx.ml::Scaler`)."""
        return f"{self.domain}::{self.op_type}" if self.domain not in ("", "ai.onnx") else self.op_type

    def describe(self) -> str:
        """One line naming the op, the node, its module, its opset and the reason."""
        module = f", module {self.module!r}" if self.module else ""
        return f"{self.op} (node {self.name!r}{module}, opset {self.opset}): {self.reason}"


HINT = (
    "Hint: TALON IR maps standard layers (Gemm/MatMul+Add with constant weights, Conv, ConvTranspose, "
    "BatchNormalization, LayerNormalization, pooling, activations and gates, products, sums and differences of "
    "activations, constant scales and biases, Flatten/Reshape to flat, channel shuffles, Transpose keeping the "
    "batch first, Slice, Concat, Split, Resize) and the talon domain ops. Replace the listed operations by "
    "supported layers, fold computed constants before export, or for a custom torch module pass custom_map to "
    "bridge.to_ir."
)


class UnsupportedOperatorError(ConversionError):
    """Every ONNX node that has no TALON IR equivalent, grouped by op type with counts, with a hint."""

    def __init__(self, nodes: Sequence[UnsupportedNode] | str, hint: str = HINT):
        if isinstance(nodes, str):  # a message of its own (ir_to_onnx: primitives without an emitter)
            self.nodes, self.hint = [], ""
            super().__init__(nodes)
            return
        self.nodes = list(nodes)
        self.hint = hint
        groups: dict[str, list[UnsupportedNode]] = {}
        for n in self.nodes:
            groups.setdefault(n.op, []).append(n)
        lines = [f"{len(self.nodes)} ONNX node(s) cannot be converted to TALON IR "
                 f"({', '.join(f'{op} x{len(g)}' for op, g in groups.items())}):"]
        for op, group in groups.items():
            lines.append(f"  {op} ({len(group)}):")
            lines += [f"    - {n.describe()}" for n in group]
        super().__init__("\n".join([*lines, hint]))

    def counts(self) -> dict[str, int]:
        """How many nodes of each op type were refused, in order of first appearance."""
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return counts
