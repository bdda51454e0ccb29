"""Conv1d/Conv2d -> Conv; SepConv2d -> talon.SepConv2d (depthwise then pointwise)."""

from __future__ import annotations

from onnx_ops import DOMAIN
from talon.ir.primitives import Conv1d, Conv2d, SepConv2d

from .context import EmitContext
from .registry import register


@register(Conv1d, Conv2d)
def emit_conv(ctx: EmitContext, name: str, node: Conv1d | Conv2d) -> None:
    x, w, b = ctx.input(name), ctx.param(name, "weight"), ctx.param(name, "bias")
    ctx.emit(
        name,
        "Conv",
        [x, w, b],
        kernel_shape=list(node.weight.shape[2:]),
        strides=list(node.stride),
        pads=list(node.padding) * 2,
        dilations=list(node.dilation),
        group=node.groups,
    )


@register(SepConv2d)
def emit_sepconv(ctx: EmitContext, name: str, node: SepConv2d) -> None:
    values = [ctx.param(name, f) for f in ("depthwise_weight", "pointwise_weight", "depthwise_bias", "pointwise_bias")]
    ctx.emit(
        name,
        "SepConv2d",
        [ctx.input(name), *values],
        domain=DOMAIN,
        group=int(node.depthwise_weight.shape[0]),
        strides=list(node.stride),
        pads=list(node.padding) * 2,
        dilations=list(node.dilation),
    )
