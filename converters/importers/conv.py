"""Conv (1-D and 2-D, groups, depthwise, dilations, explicit and automatic pads) to Conv1d/Conv2d,
with a Pad node in front when the padding is asymmetric; ConvTranspose (2-D) to ConvTranspose2d."""

from __future__ import annotations

from typing import Sequence

from talon.ir import Conv1d, Conv2d, ConvTranspose2d, Pad

from .context import INTS, Emit, NodeContext, Unsupported
from .registry import importer


def resolve_pads(ctx: NodeContext, kernel: Sequence[int], strides: Sequence[int],
                 dilations: Sequence[int]) -> tuple[list[int], list[int]]:
    """(begin, end) pads per spatial dim from `pads` or `auto_pad` (SAME_UPPER/SAME_LOWER/VALID)."""
    n = len(kernel)
    auto = ctx.attr("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = list(ctx.attr("pads", [0] * 2 * n))
        return pads[:n], pads[n:]
    if auto == "VALID":
        return [0] * n, [0] * n
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise Unsupported(f"auto_pad {auto!r} is not a known padding mode")
    spatial = ctx.features(0)[1:]
    begins, ends = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small = total // 2
        begins.append(small if auto == "SAME_UPPER" else total - small)
        ends.append(total - begins[-1])
    return begins, ends


def torch_pad_order(begins: Sequence[int], ends: Sequence[int]) -> tuple[int, ...]:
    """(begin, end) per spatial dim to torch.nn.functional.pad's order (last dim first)."""
    return tuple(v for b, e in zip(reversed(begins), reversed(ends)) for v in (b, e))


@importer("Conv", data_inputs=(0,))
def conv(ctx: NodeContext) -> Emit:
    """Conv with constant weights to Conv1d/Conv2d; asymmetric pads become a Pad node in front."""
    weight = ctx.const(1, "weight W")
    nd = weight.ndim - 2
    if nd not in (1, 2):
        raise Unsupported(f"only 1-D and 2-D convolutions map to TALON IR, got a {nd}-D kernel")
    kernel = weight.shape[2:]
    declared = ctx.attr("kernel_shape", kind=INTS)
    if declared not in (None, list(kernel)):
        raise Unsupported(f"kernel_shape {declared} differs from the weight's {kernel}")
    strides = list(ctx.attr("strides", [1] * nd))
    dilations = list(ctx.attr("dilations", [1] * nd))
    begins, ends = resolve_pads(ctx, kernel, strides, dilations)
    cls = Conv1d if nd == 1 else Conv2d
    symmetric = begins == ends
    node = cls(weight=weight, bias=ctx.optional_const(2, "bias B"), stride=strides,
               padding=begins if symmetric else [0] * nd, dilation=dilations, groups=int(ctx.attr("group", 1)))
    if symmetric:
        return Emit([("", node)])
    return Emit([("pad", Pad(padding=torch_pad_order(begins, ends))), ("", node)])


@importer("Pad")
def pad(ctx: NodeContext) -> Pad:
    """Constant padding of the spatial dims (never the batch or channels) to a Pad node."""
    mode = ctx.attr("mode", "constant")
    if mode != "constant":
        raise Unsupported(f"mode {mode!r}: only constant padding maps to TALON IR")
    if ctx.opset < 11:
        pads, value = ctx.required("pads" if ctx.opset >= 2 else "paddings", INTS), float(ctx.attr("value", 0.0))
    else:
        given = ctx.const(1, "pads")
        if given.ndim != 1:
            raise Unsupported(f"pads (input 1) must be 1-D, got shape {given.shape}")
        pads = [int(p) for p in given]
        fill = ctx.optional_const(2, "constant_value")
        value = 0.0 if fill is None or fill.size == 0 else float(fill.reshape(-1)[0])
        if ctx.has_input(3):
            raise Unsupported("the axes input is not supported")
    rank = len(pads) // 2
    begins, ends = pads[:rank], pads[rank:]
    if any(begins[:2]) or any(ends[:2]) or min(pads, default=0) < 0:
        raise Unsupported(f"pads {pads} touch the batch or channel dims or crop")
    return Pad(padding=torch_pad_order(begins[2:], ends[2:]), value=value)


@importer("ConvTranspose", data_inputs=(0,))
def conv_transpose(ctx: NodeContext) -> ConvTranspose2d:
    """2-D ConvTranspose with constant weights, symmetric pads and no output_shape to ConvTranspose2d."""
    weight = ctx.const(1, "weight W")
    if weight.ndim != 4:
        raise Unsupported(f"only 2-D transposed convolutions map to TALON IR, got a {weight.ndim - 2}-D kernel")
    declared = ctx.attr("kernel_shape", kind=INTS)
    if declared not in (None, list(weight.shape[2:])):
        raise Unsupported(f"kernel_shape {declared} differs from the weight's {weight.shape[2:]}")
    if ctx.attr("auto_pad", "NOTSET") not in ("NOTSET", "", "VALID"):
        raise Unsupported(f"auto_pad {ctx.attr('auto_pad', '')!r} is not supported (give explicit pads)")
    if ctx.attr("output_shape", kind=INTS) is not None:
        raise Unsupported("the output_shape attribute is not supported (give pads and output_padding)")
    pads = list(ctx.attr("pads", [0, 0, 0, 0])) if ctx.attr("auto_pad", "NOTSET") != "VALID" else [0, 0, 0, 0]
    if pads[:2] != pads[2:]:
        raise Unsupported(f"asymmetric pads {pads} have no ConvTranspose2d equivalent")
    return ConvTranspose2d(weight=weight, bias=ctx.optional_const(2, "bias B"), stride=ctx.attr("strides", [1, 1]),
                           padding=pads[:2], output_padding=ctx.attr("output_padding", [0, 0]),
                           dilation=ctx.attr("dilations", [1, 1]), groups=int(ctx.attr("group", 1)))
