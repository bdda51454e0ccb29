"""Elementwise activations: Relu, LeakyRelu, PRelu, Sigmoid, Tanh, Softmax (each opset's axis rule), Gelu
(and the Erf pattern exporters write for it), Elu, and Clip (to [0, inf) as ReLU, other bounds as Clamp)."""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from talon.ir import ELU, GELU, Clamp, PReLU, ReLU, Sigmoid, Softmax, Tanh

from .context import Alias, Fusion, NodeContext, Unsupported, constant
from .registry import fusion, importer


@importer("Relu")
def relu(ctx: NodeContext) -> ReLU:
    """max(x, 0)."""
    return ReLU()


@importer("LeakyRelu")
def leaky_relu(ctx: NodeContext) -> ReLU:
    """x if x > 0 else alpha * x (alpha defaults to 0.01)."""
    return ReLU(negative_slope=float(ctx.attr("alpha", 0.01)))


@importer("PRelu")
def prelu(ctx: NodeContext) -> PReLU:
    """PRelu with one slope or one slope per channel (dim 1)."""
    slope = ctx.const(1, "slope")
    shape = ctx.shape(0)
    aligned = (1,) * (len(shape) - slope.ndim) + slope.shape  # ONNX broadcasts the slope right-aligned
    per_channel = len(aligned) == len(shape) >= 2 and all(d == 1 for i, d in enumerate(aligned) if i != 1)
    if slope.size != 1 and not per_channel:
        raise Unsupported(f"slope of shape {slope.shape} is neither one value nor one per channel of input {shape}")
    return PReLU(weight=slope.reshape(-1))


@importer("Sigmoid")
def sigmoid(ctx: NodeContext) -> Sigmoid:
    """1 / (1 + exp(-x))."""
    return Sigmoid()


@importer("Tanh")
def tanh(ctx: NodeContext) -> Tanh:
    """tanh(x)."""
    return Tanh()


@importer("Elu")
def elu(ctx: NodeContext) -> ELU:
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return ELU(alpha=float(ctx.attr("alpha", 1.0)))


@importer("Softmax", until=12)
def softmax_v1(ctx: NodeContext) -> Softmax:
    """Before opset 13 Softmax flattens the dims from `axis` (default 1) on: exact only when those are one dim."""
    shape = ctx.shape(0)
    axis = ctx.axis(int(ctx.attr("axis", 1)), len(shape))
    trailing = shape[axis + 1 :]
    if any(d != 1 for d in trailing):
        raise Unsupported(f"axis {axis} normalises over the flattened dims {shape[axis:]} (opset < 13), not one dim")
    return Softmax(dim=-1 if axis == len(shape) - 1 else axis)


@importer("Softmax", since=13)
def softmax(ctx: NodeContext) -> Softmax:
    """Softmax along one axis (never the batch)."""
    axis = int(ctx.attr("axis", -1))
    ctx.axis(axis, len(ctx.shape(0)))
    return Softmax(dim=axis)


def _bound(ctx: NodeContext, slot: int, attr: str, default: float) -> float:
    """Clip's min or max: an attribute before opset 11, an optional constant input from 11 on."""
    if ctx.opset < 11:
        return float(ctx.attr(attr, default))
    value = ctx.optional_const(slot, attr)
    return default if value is None else float(value.reshape(-1)[0])


@importer("Clip", since=6)
def clip(ctx: NodeContext) -> Clamp | ReLU | Alias:
    """Clip(x, 0, +inf) is ReLU, an unbounded Clip the identity, any other Clamp (ReLU6, Hardtanh; Clamp
    refuses NaN and min > max); a bound at or beyond float32's largest value clips no finite value: no bound."""
    float_max = float(np.finfo(np.float32).max)
    low = _bound(ctx, 1, "min", -math.inf)
    high = _bound(ctx, 2, "max", math.inf)
    low, high = (None if low <= -float_max else low), (None if high >= float_max else high)
    if low is None and high is None:
        return Alias(0)
    if low == 0.0 and high is None:
        return ReLU()
    return Clamp(min_value=low, max_value=high)


@importer("Gelu", since=20)
def gelu(ctx: NodeContext) -> GELU:
    """Gelu with approximate 'none' (erf) or 'tanh'."""
    return GELU(approximate=ctx.attr("approximate", "none") == "tanh")


def _only_use(value: ir.Value) -> ir.Node | None:
    uses = value.uses()
    return uses[0].node if len(uses) == 1 and not value.is_graph_output() else None


def _other_input(node: ir.Node, value: ir.Value) -> ir.Value | None:
    if len(node.inputs) != 2:
        return None
    return node.inputs[1] if node.inputs[0] is value else node.inputs[0] if node.inputs[1] is value else None


def _scalar(value: ir.Value | None) -> float | None:
    arr = constant(value)
    return float(arr.reshape(-1)[0]) if arr is not None and arr.size == 1 else None


def _close(value: float | None, target: float) -> bool:
    return value is not None and math.isclose(value, target, rel_tol=1e-6)


def _unscaled(node: ir.Node) -> ir.Value | None:
    """x for the node x / sqrt(2) or x * (1 / sqrt(2)), else None."""
    if node.op_type == "Div" and len(node.inputs) == 2 and _close(_scalar(node.inputs[1]), math.sqrt(2)):
        return node.inputs[0]
    if node.op_type == "Mul" and len(node.inputs) == 2:
        for a, b in ((0, 1), (1, 0)):
            if _close(_scalar(node.inputs[b]), 1 / math.sqrt(2)):
                return node.inputs[a]
    return None


def _times(node: ir.Node | None, value: ir.Value, factor: float) -> bool:
    """True when node is Mul(value, factor) in either order."""
    return node is not None and node.op_type == "Mul" and _close(_scalar(_other_input(node, value)), factor)


@fusion("Erf")
def erf_gelu(erf: ir.Node, ctx: NodeContext) -> Fusion | None:
    """x * 0.5 * (1 + erf(x / sqrt(2))) in the orders exporters write it: one exact GELU."""
    scale = erf.inputs[0].producer()
    x = None if scale is None or _only_use(erf.inputs[0]) is not erf else _unscaled(scale)
    add = _only_use(erf.outputs[0])
    if x is None or add is None or add.op_type != "Add" or not _close(_scalar(_other_input(add, erf.outputs[0])), 1.0):
        return None
    members = [scale, erf, add]
    node = _only_use(add.outputs[0])
    if _times(node, add.outputs[0], 0.5):  # (0.5 * (1 + erf)) * x
        members.append(node)
        node = _only_use(node.outputs[0])
        if node is None or node.op_type != "Mul" or _other_input(node, members[-1].outputs[0]) is not x:
            return None
        members.append(node)
    elif node is not None and node.op_type == "Mul" and _other_input(node, add.outputs[0]) is x:
        members.append(node)  # (x * (1 + erf)) * 0.5
        node = _only_use(node.outputs[0])
        if not _times(node, members[-1].outputs[0], 0.5):
            return None
        members.append(node)
    elif node is not None and node.op_type == "Mul":  # (0.5 * x) * (1 + erf)
        half_x = _other_input(node, add.outputs[0])
        half = half_x.producer() if half_x is not None else None
        if half is None or _only_use(half_x) is not node or not _times(half, x, 0.5):
            return None
        members = [half, *members, node]
    else:
        return None
    if any(m.domain not in ("", "ai.onnx") for m in members):
        return None
    return Fusion(members, x, members[-1].outputs[0], lambda: GELU(approximate=False))
