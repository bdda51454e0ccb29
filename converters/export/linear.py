"""Affine -> Gemm(transB=1) on (batch, in) inputs, else MatMul + Add; SpikingAffine -> talon.SpikingAffine."""

from __future__ import annotations

from onnx_ops import DOMAIN
from talon.ir.primitives import Affine, SpikingAffine

from .context import EmitContext
from .registry import register


@register(Affine)
def emit_affine(ctx: EmitContext, name: str, node: Affine) -> None:
    x, w, b = ctx.input(name), ctx.param(name, "weight"), ctx.param(name, "bias")
    if len(ctx.input_shape(name)) == 1:
        ctx.emit(name, "Gemm", [x, w, b], transB=1)
        return
    wt = ctx.aux(name, "transpose", "Transpose", [w], perm=[1, 0])
    ctx.emit(name, "Add", [ctx.aux(name, "matmul", "MatMul", [x, wt]), b])


@register(SpikingAffine)
def emit_spiking_affine(ctx: EmitContext, name: str, node: SpikingAffine) -> None:
    x, w, b = ctx.input(name), ctx.param(name, "weight"), ctx.param(name, "bias")
    ctx.emit(
        name,
        "SpikingAffine",
        [x, w, b],
        domain=DOMAIN,
        weight_bits=node.weight_bits,
        accumulator_bits=node.accumulator_bits,
        spike_mode=node.spike_mode,
    )
