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
    """One ONNX node the importer cannot map: where it is and why."""

    op_type: str
    name: str
    domain: str
    opset: int
    reason: str

    def describe(self) -> str:
        """One line naming the op, the node, its opset and the reason."""
        op = f"{self.domain}::{self.op_type}" if self.domain not in ("", "ai.onnx") else self.op_type
        return f"{op} (node {self.name!r}, opset {self.opset}): {self.reason}"


HINT = (
    "Hint: TALON IR maps standard layers (Gemm/MatMul+Add with constant weights, Conv, BatchNormalization, "
    "pooling, activations, Flatten/Reshape to flat, Concat, Split, Add/Sum of activations, Resize) and the "
    "talon domain ops. Replace the listed operations by supported layers, fold computed constants before "
    "export, or for a custom torch module pass custom_map to bridge.to_ir."
)


EXPORT_HINT = (
    "Hint: register an ONNX exporter for the primitive (converters.export.register), or for a primitive that is "
    "one talon op, its op spec (onnx_ops.register_op) and converters.register_talon_op; see docs/extending.md."
)


class UnsupportedOperatorError(ConversionError):
    """Every node that has no equivalent on the other side (ONNX nodes without TALON IR primitive, or IR nodes
    without ONNX exporter), listed together with a hint."""

    def __init__(self, nodes: Sequence[UnsupportedNode], hint: str = HINT,
                 title: str = "ONNX node(s) cannot be converted to TALON IR"):
        self.nodes = list(nodes)
        self.hint = hint
        lines = [f"{len(self.nodes)} {title}:"]
        lines += [f"  - {n.describe()}" for n in self.nodes]
        super().__init__("\n".join([*lines, hint]))
