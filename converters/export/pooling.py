"""MaxPool2d -> MaxPool, AvgPool2d -> AveragePool, SumPool2d -> talon.SumPool2d, Upsample -> Resize (axes 2, 3),
Flatten -> Flatten or Reshape, Pad -> Pad (constant, trailing axes)."""

from __future__ import annotations

import numpy as np

from onnx_ops import DOMAIN
from talon.ir.primitives import AvgPool2d, Flatten, MaxPool2d, Pad, SumPool2d, Upsample
from talon.ir.primitives.conv import conv_out_len

from .context import EmitContext
from .registry import register


def _floor_pads(node, shape: tuple[int, ...], dilation) -> list[int] | None:
    """End pads giving torch's ceil-mode output size with ceil_mode=0, or None when ONNX's ceil rule agrees.

    torch drops a last window that would start in the end padding; onnxruntime does too, but onnx shape
    inference does not, so such models would fail the checker. Extra end padding is exact for max pooling
    and for averages that do not count padding."""
    spans = list(zip(shape[1:], node.kernel_size, node.stride, node.padding, dilation))
    torch_out = [conv_out_len(n, k, s, p, d, True) for n, k, s, p, d in spans]
    onnx_out = [-(-(n + 2 * p - d * (k - 1) - 1) // s) + 1 for n, k, s, p, d in spans]
    if torch_out == onnx_out:
        return None
    ends = [max((o - 1) * s + d * (k - 1) + 1 - n - p, 0) for o, (n, k, s, p, d) in zip(torch_out, spans)]
    return [*node.padding, *ends]


@register(MaxPool2d)
def emit_maxpool(ctx: EmitContext, name: str, node: MaxPool2d) -> None:
    x = ctx.input(name)
    pads = _floor_pads(node, ctx.input_shape(name), node.dilation) if node.ceil_mode else None
    if pads and any(p >= k for p, k in zip(pads, [*node.kernel_size] * 2)):
        # onnxruntime wants pads < kernel (dilated windows can need more): pad with -inf explicitly
        explicit = np.array([0, 0, *pads[:2], 0, 0, *pads[2:]], np.int64)
        value = ctx.const(name, "pad_value", np.array(-np.inf, np.float32))
        x = ctx.aux(name, "pad", "Pad", [x, ctx.const(name, "pads", explicit), value], mode="constant")
        pads = [0, 0, 0, 0]
    ctx.emit(
        name,
        "MaxPool",
        [x],
        kernel_shape=list(node.kernel_size),
        strides=list(node.stride),
        pads=pads or list(node.padding) * 2,
        dilations=list(node.dilation),
        ceil_mode=int(node.ceil_mode and not pads),
    )


@register(AvgPool2d)
def emit_avgpool(ctx: EmitContext, name: str, node: AvgPool2d) -> None:
    shape = ctx.input_shape(name)
    x = ctx.input(name)
    pads = _floor_pads(node, shape, (1, 1)) if node.ceil_mode else None
    if pads and node.count_include_pad and any(node.padding):
        # the divisor counts the declared padding but not the extra end padding: make the former real zeros
        begin = np.array([0, 0, *node.padding, 0, 0, *node.padding], np.int64)
        x = ctx.aux(name, "pad", "Pad", [x, ctx.const(name, "pads", begin)], mode="constant")
        pads = [0, 0, max(pads[2] - node.padding[0], 0), max(pads[3] - node.padding[1], 0)]
    ctx.emit(
        name,
        "AveragePool",
        [x],
        kernel_shape=list(node.kernel_size),
        strides=list(node.stride),
        pads=pads or list(node.padding) * 2,
        ceil_mode=int(node.ceil_mode and not pads),
        count_include_pad=int(node.count_include_pad and not pads),
    )


@register(Upsample)
def emit_upsample(ctx: EmitContext, name: str, node: Upsample) -> None:
    if node.size is not None:
        inputs = ["", "", ctx.const(name, "sizes", np.array(node.size, np.int64))]
    else:
        inputs = ["", ctx.const(name, "scales", np.full(2, node.scale_factor, np.float32))]
    if node.mode == "nearest":
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    else:
        attrs = dict(
            mode="linear", coordinate_transformation_mode="align_corners" if node.align_corners else "half_pixel"
        )
    ctx.emit(name, "Resize", [ctx.input(name), *inputs], axes=[2, 3], **attrs)


@register(Flatten)
def emit_flatten(ctx: EmitContext, name: str, node: Flatten) -> None:
    shape = ctx.input_shape(name)
    if shape and node.dims(len(shape)) == (0, len(shape) - 1):
        ctx.emit(name, "Flatten", [ctx.input(name)], axis=1)
        return
    target = np.array([0, *ctx.shapes[name]], np.int64)  # 0 keeps the batch dim
    ctx.emit(name, "Reshape", [ctx.input(name), ctx.const(name, "shape", target)])


@register(SumPool2d)
def emit_sumpool(ctx: EmitContext, name: str, node: SumPool2d) -> None:
    ctx.emit(
        name,
        "SumPool2d",
        [ctx.input(name)],
        domain=DOMAIN,
        kernel_shape=list(node.kernel_size),
        strides=list(node.stride),
        pads=list(node.padding) * 2,
    )


@register(Pad)
def emit_pad(ctx: EmitContext, name: str, node: Pad) -> None:
    pairs = len(node.padding) // 2  # torch order: last dim first
    pads = np.array(
        [node.padding[2 * i] for i in range(pairs)] + [node.padding[2 * i + 1] for i in range(pairs)], np.int64
    )
    inputs = [
        ctx.const(name, "pads", pads),
        ctx.const(name, "value", np.array(node.value, np.float32)),
        ctx.const(name, "axes", np.array([-1 - i for i in range(pairs)], np.int64)),
    ]
    ctx.emit(name, "Pad", [ctx.input(name), *inputs], mode="constant")
