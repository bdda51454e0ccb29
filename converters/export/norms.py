"""BatchNorm1d/2d -> BatchNormalization, LayerNorm -> LayerNormalization, Dropout -> Dropout (inference),
HybridRegion -> talon.HybridRegion."""

from __future__ import annotations

import numpy as np

from onnx_ops import DOMAIN
from talon.ir.primitives import BatchNorm1d, BatchNorm2d, Dropout, HybridRegion, LayerNorm

from .context import EmitContext
from .registry import register


@register(BatchNorm1d, BatchNorm2d)
def emit_batchnorm(ctx: EmitContext, name: str, node: BatchNorm1d | BatchNorm2d) -> None:
    values = [ctx.param(name, f) for f in ("weight", "bias", "running_mean", "running_var")]
    ctx.emit(name, "BatchNormalization", [ctx.input(name), *values], epsilon=node.eps)


@register(LayerNorm)
def emit_layernorm(ctx: EmitContext, name: str, node: LayerNorm) -> None:
    values = [ctx.param(name, f) for f in ("weight", "bias")]
    ctx.emit(name, "LayerNormalization", [ctx.input(name), *values], axis=-len(node.normalized_shape), epsilon=node.eps)


@register(Dropout)
def emit_dropout(ctx: EmitContext, name: str, node: Dropout) -> None:
    ctx.emit(name, "Dropout", [ctx.input(name), ctx.const(name, "ratio", np.array(node.p, np.float32))])


@register(HybridRegion)
def emit_hybrid(ctx: EmitContext, name: str, node: HybridRegion) -> None:
    attrs = {"region_name": node.name} if node.name is not None else {}
    ctx.emit(name, "HybridRegion", [ctx.input(name)], domain=DOMAIN, mode=node.mode, **attrs)
