"""Gemm, MatMul and MatMul + Add with constant weights to Affine (SpikingAffine with spiking=True), also when
wrapped in the reshapes onnxslim writes around a Linear on a channels-last activation."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from talon.ir import Affine, SpikingAffine

from .activations import _only_use
from .context import Fusion, NodeContext, Options, Unsupported, constant, dims, same_dim
from .registry import fusion, importer


def affine(weight: np.ndarray, bias: np.ndarray | None, options: Options) -> Affine:
    """Affine, or SpikingAffine carrying the quantisation options when converting for spiking hardware."""
    if options.spiking:
        return SpikingAffine(weight=weight, bias=bias, weight_bits=options.weight_bits,
                             accumulator_bits=options.accumulator_bits, spike_mode=options.spike_mode)
    return Affine(weight=weight, bias=bias)


def bias_vector(value: np.ndarray, out: int, what: str) -> np.ndarray:
    """A bias broadcastable to (1, out) as an (out,) vector; refuses per-row biases."""
    if not (value.size == 1 or (value.ndim >= 1 and value.shape[-1] == out and value.size == out)):
        raise Unsupported(f"{what} of shape {value.shape} is not a per-feature bias of {out} features")
    return np.ascontiguousarray(np.broadcast_to(value.reshape(-1), (out,)))


def _scaled(value: np.ndarray, factor: float) -> np.ndarray:
    return value if factor == 1.0 else (value * factor).astype(value.dtype)


@importer("Gemm")
def gemm(ctx: NodeContext) -> Affine:
    """Y = alpha * A' B' + beta * C with constant B, C and transA = 0."""
    if ctx.attr("transA", 0):
        raise Unsupported("transA=1 transposes the activations (batch into features); only transA=0 maps to Affine")
    w = ctx.const(1, "weight B")
    if w.ndim != 2:
        raise Unsupported(f"weight B must be 2-D, got shape {w.shape}")
    weight = w if ctx.attr("transB", 0) else w.T
    weight = np.ascontiguousarray(_scaled(weight, float(ctx.attr("alpha", 1.0))))
    c = ctx.optional_const(2, "bias C")
    bias = None if c is None else _scaled(bias_vector(c, weight.shape[0], "bias C"), float(ctx.attr("beta", 1.0)))
    return affine(weight, bias, ctx.options)


def _matmul_weight(ctx: NodeContext) -> np.ndarray:
    w = ctx.const(1, "weight (the second MatMul input)")
    if w.ndim != 2:
        raise Unsupported(f"MatMul weight must be 2-D (in, out), got shape {w.shape}")
    if constant(ctx.node.inputs[0]) is not None:
        raise Unsupported("both MatMul inputs are constant")
    return np.ascontiguousarray(w.T)


@importer("MatMul")
def matmul(ctx: NodeContext) -> Affine:
    """x @ W with a constant 2-D W: Affine with a zero bias."""
    return affine(_matmul_weight(ctx), None, ctx.options)


@fusion("MatMul")
def matmul_add(node: ir.Node, ctx: NodeContext) -> Fusion | None:
    """MatMul followed by its only consumer Add(·, constant bias): one Affine."""
    out = node.outputs[0]
    uses = out.uses()
    if len(uses) != 1 or out.is_graph_output():
        return None
    add = uses[0].node
    if add.op_type != "Add" or add.domain not in ("", "ai.onnx") or len(add.inputs) != 2:
        return None
    bias = constant(add.inputs[1 - uses[0].idx])
    if bias is None or constant(node.inputs[1]) is None:
        return None

    def build() -> Affine:
        weight = _matmul_weight(ctx)
        return affine(weight, bias_vector(bias, weight.shape[0], "Add bias"), ctx.options)

    return Fusion([node, add], node.inputs[0], add.outputs[0], build)


@fusion("Reshape")
def flattened_gemm(first: ir.Node, ctx: NodeContext) -> Fusion | None:
    """Reshape (N, *S, C) -> (N * prod(S), C), Gemm or MatMul with constant weights, Reshape back to
    (N, *S, C') (onnxslim's form of a Linear on a channels-last activation): one Affine over the last dim."""
    x, flat = first.inputs[0], first.outputs[0]
    src, flat_dims = dims(x), dims(flat)
    dense = _only_use(flat)
    if src is None or flat_dims is None or len(src) < 3 or len(flat_dims) != 2 or flat_dims[1] != src[-1] \
            or src[-1] is None or dense is None or dense.op_type not in ("Gemm", "MatMul") \
            or dense.domain not in ("", "ai.onnx") or dense.inputs[0] is not flat:
        return None
    back = _only_use(dense.outputs[0])
    out = None if back is None or back.op_type != "Reshape" else dims(back.outputs[0])
    if out is None or len(out) != len(src) or not same_dim(x, back.outputs[0], 0) and src[0] != out[0] \
            or tuple(out[1:-1]) != tuple(src[1:-1]) or None in out[1:]:
        return None
    dense_ctx = NodeContext(dense, ctx.opset, ctx.options)
    build = (lambda: gemm(dense_ctx)) if dense.op_type == "Gemm" else (lambda: matmul(dense_ctx))
    return Fusion([first, dense, back], x, back.outputs[0], build)
