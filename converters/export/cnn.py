"""The CNN-family primitives as standard ONNX ops: HardSigmoid, HardSwish, SiLU -> Sigmoid + Mul, Bias -> Add,
Multiply -> Mul, Subtract -> Sub, Permute -> Transpose, ChannelShuffle -> Reshape + Transpose + Reshape,
Slice -> Slice, ConvTranspose2d -> ConvTranspose."""

from __future__ import annotations

import numpy as np

from talon.ir.primitives import (
    Bias, ChannelShuffle, ConvTranspose2d, HardSigmoid, HardSwish, Multiply, Permute, SiLU, Slice, Subtract,
)

from .context import EmitContext
from .registry import register


@register(HardSigmoid)
def emit_hard_sigmoid(ctx: EmitContext, name: str, node: HardSigmoid) -> None:
    ctx.emit(name, "HardSigmoid", [ctx.input(name)], alpha=node.alpha, beta=node.beta)


@register(HardSwish)
def emit_hard_swish(ctx: EmitContext, name: str, node: HardSwish) -> None:
    ctx.emit(name, "HardSwish", [ctx.input(name)])


@register(SiLU)
def emit_silu(ctx: EmitContext, name: str, node: SiLU) -> None:
    x = ctx.input(name)
    ctx.emit(name, "Mul", [x, ctx.aux(name, "sigmoid", "Sigmoid", [x])])


@register(Bias)
def emit_bias(ctx: EmitContext, name: str, node: Bias) -> None:
    ctx.emit(name, "Add", [ctx.input(name), ctx.param(name, "bias")])


@register(Multiply)
def emit_multiply(ctx: EmitContext, name: str, node: Multiply) -> None:
    values = ctx.inputs_of(name)
    product = values[0]
    for i, value in enumerate(values[1:-1], start=1):
        product = ctx.aux(name, f"mul{i}", "Mul", [product, value])
    ctx.emit(name, "Mul", [product, values[-1]] if len(values) > 1 else [product, ctx.const(name, "one", np.float32(1))])


@register(Subtract)
def emit_subtract(ctx: EmitContext, name: str, node: Subtract) -> None:
    ctx.emit(name, "Sub", ctx.inputs_of(name))


@register(Permute)
def emit_permute(ctx: EmitContext, name: str, node: Permute) -> None:
    ctx.emit(name, "Transpose", [ctx.input(name)], perm=list(node.dims))


@register(ChannelShuffle)
def emit_channel_shuffle(ctx: EmitContext, name: str, node: ChannelShuffle) -> None:
    shape = ctx.input_shape(name)
    grouped = np.array([0, node.groups, shape[0] // node.groups, *shape[1:]], np.int64)  # 0 copies the batch
    x = ctx.aux(name, "group", "Reshape", [ctx.input(name), ctx.const(name, "grouped", grouped)])
    perm = [0, 2, 1, *range(3, len(shape) + 2)]
    x = ctx.aux(name, "transpose", "Transpose", [x], perm=perm)
    ctx.emit(name, "Reshape", [x, ctx.const(name, "shape", np.array([0, *shape], np.int64))])


@register(Slice)
def emit_slice(ctx: EmitContext, name: str, node: Slice) -> None:
    consts = [ctx.const(name, key, np.array([value], np.int64))
              for key, value in (("starts", node.start), ("ends", node.end), ("axes", node.dim), ("steps", node.step))]
    ctx.emit(name, "Slice", [ctx.input(name), *consts])


@register(ConvTranspose2d)
def emit_conv_transpose(ctx: EmitContext, name: str, node: ConvTranspose2d) -> None:
    x, w, b = ctx.input(name), ctx.param(name, "weight"), ctx.param(name, "bias")
    ctx.emit(name, "ConvTranspose", [x, w, b], kernel_shape=list(node.weight.shape[2:]), strides=list(node.stride),
             pads=list(node.padding) * 2, output_padding=list(node.output_padding), dilations=list(node.dilation),
             group=node.groups)
