"""HardSigmoid, HardSwish, and the gates exporters write as products: HardSigmoid(x) * x (torch's hardswish
before opset 14) as one HardSwish, Sigmoid(x) * x as one SiLU."""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from talon.ir import HardSigmoid, HardSwish, SiLU

from .activations import _only_use, _other_input
from .context import Fusion, NodeContext
from .registry import fusion, importer

HARD_SWISH_ALPHA = float(np.float32(1.0 / 6.0))  # the float32 attribute value exporters write


@importer("HardSigmoid", since=6)
def hard_sigmoid(ctx: NodeContext) -> HardSigmoid:
    """max(0, min(1, alpha * x + beta)), ONNX's defaults alpha 0.2, beta 0.5."""
    return HardSigmoid(alpha=float(ctx.attr("alpha", 0.2)), beta=float(ctx.attr("beta", 0.5)))


@importer("HardSwish", since=14)
def hard_swish(ctx: NodeContext) -> HardSwish:
    """x * max(0, min(1, x / 6 + 0.5))."""
    return HardSwish()


def _gated(gate: ir.Node) -> ir.Node | None:
    """The Mul that multiplies the gate's output by the gate's own input, when it is the output's only use."""
    x, out = gate.inputs[0], gate.outputs[0]
    mul = _only_use(out)
    if mul is None or mul.op_type != "Mul" or mul.domain not in ("", "ai.onnx") or _other_input(mul, out) is not x:
        return None
    return mul


@fusion("HardSigmoid")
def hard_swish_product(gate: ir.Node, ctx: NodeContext) -> Fusion | None:
    """x * HardSigmoid(x) with alpha 1/6 and beta 0.5: one HardSwish."""
    alpha, beta = float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5))
    mul = _gated(gate) if gate.domain in ("", "ai.onnx") else None
    if mul is None or not math.isclose(alpha, HARD_SWISH_ALPHA, rel_tol=1e-6) or beta != 0.5:
        return None
    return Fusion([gate, mul], gate.inputs[0], mul.outputs[0], HardSwish)


@fusion("Sigmoid")
def silu_product(gate: ir.Node, ctx: NodeContext) -> Fusion | None:
    """x * Sigmoid(x): one SiLU."""
    mul = _gated(gate) if gate.domain in ("", "ai.onnx") else None
    return None if mul is None else Fusion([gate, mul], gate.inputs[0], mul.outputs[0], SiLU)
