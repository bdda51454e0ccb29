"""MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, and ReduceMean and ReduceMax over the spatial dims (2-D)."""

from __future__ import annotations

from talon.ir import AvgPool2d, Flatten, MaxPool2d, Pad

from .context import INTS, Emit, NodeContext, Unsupported
from .conv import resolve_pads, torch_pad_order
from .registry import importer


def _window(ctx: NodeContext) -> tuple[list[int], list[int], list[int], list[int], list[int], bool]:
    kernel = list(ctx.required("kernel_shape", INTS))
    if len(kernel) != 2 or len(ctx.shape(0)) != 4:
        raise Unsupported(f"only 2-D pooling of (N, C, H, W) maps to TALON IR, got kernel {kernel}")
    strides = list(ctx.attr("strides", [1, 1]))
    dilations = list(ctx.attr("dilations", [1, 1]))
    ceil_mode = bool(ctx.attr("ceil_mode", 0))
    begins, ends = resolve_pads(ctx, kernel, strides, dilations)
    return kernel, strides, dilations, begins, ends, ceil_mode


def _fits(kernel: list[int], begins: list[int], ends: list[int]) -> bool:
    """True when torch's symmetric pooling padding (at most half the kernel) expresses the pads."""
    return begins == ends and all(p <= k // 2 for p, k in zip(begins, kernel))


def _padded(pool, begins: list[int], ends: list[int], value: float) -> Emit:
    return Emit([("pad", Pad(padding=torch_pad_order(begins, ends), value=value)), ("", pool)])


@importer("MaxPool")
def max_pool(ctx: NodeContext) -> MaxPool2d | Emit:
    """2-D max pooling; pads torch cannot express become a Pad node of -inf in front."""
    ctx.refuse_extra_outputs(1)
    kernel, strides, dilations, begins, ends, ceil_mode = _window(ctx)
    if _fits(kernel, begins, ends):
        return MaxPool2d(kernel_size=kernel, stride=strides, padding=begins, dilation=dilations, ceil_mode=ceil_mode)
    if ceil_mode:
        raise Unsupported(f"pads {begins + ends} with ceil_mode=1 have no exact torch equivalent")
    pool = MaxPool2d(kernel_size=kernel, stride=strides, padding=(0, 0), dilation=dilations)
    return _padded(pool, begins, ends, float("-inf"))


@importer("AveragePool")
def average_pool(ctx: NodeContext) -> AvgPool2d | Emit:
    """2-D average pooling with count_include_pad; asymmetric pads only when they count in the divisor."""
    kernel, strides, dilations, begins, ends, ceil_mode = _window(ctx)
    if dilations != [1, 1]:
        raise Unsupported(f"dilations {dilations} are not supported by average pooling in TALON IR")
    include = bool(ctx.attr("count_include_pad", 0))
    if _fits(kernel, begins, ends):
        return AvgPool2d(kernel_size=kernel, stride=strides, padding=begins, ceil_mode=ceil_mode,
                         count_include_pad=include)
    if ceil_mode or not include:
        raise Unsupported(f"pads {begins + ends} need count_include_pad=1 and ceil_mode=0 to map exactly")
    return _padded(AvgPool2d(kernel_size=kernel, stride=strides), begins, ends, 0.0)


def _spatial(ctx: NodeContext) -> tuple[int, int]:
    shape = ctx.features(0)
    if len(shape) != 3:
        raise Unsupported(f"global pooling maps to TALON IR for (N, C, H, W) inputs only, got {ctx.shape(0)}")
    return shape[1], shape[2]


@importer("GlobalAveragePool")
def global_average_pool(ctx: NodeContext) -> AvgPool2d:
    """Mean over H and W: an AvgPool2d whose window is the whole plane."""
    return AvgPool2d(kernel_size=_spatial(ctx))


@importer("GlobalMaxPool")
def global_max_pool(ctx: NodeContext) -> MaxPool2d:
    """Max over H and W: a MaxPool2d whose window is the whole plane."""
    return MaxPool2d(kernel_size=_spatial(ctx))


def _global(ctx: NodeContext, pool: type, what: str) -> AvgPool2d | MaxPool2d | Emit:
    """A reduction over exactly the spatial dims (2, 3) of (N, C, H, W) as a whole-plane pool (then Flatten
    without keepdims); the axes are an attribute before opset 18 (ReduceMax: 18 as well), an input after."""
    axes = ctx.attr("axes", kind=INTS) if ctx.opset < 18 else ctx.optional_const(1, "axes")
    rank = len(ctx.shape(0))
    normalised = sorted(int(a) % rank for a in axes) if axes is not None else None
    if rank != 4 or normalised != [2, 3]:
        raise Unsupported(f"only a {what} over the spatial dims (2, 3) of a 4-D input maps to pooling, got axes {axes}")
    node = pool(kernel_size=_spatial(ctx))
    if ctx.attr("keepdims", 1):
        return node
    return Emit([("", node), ("flatten", Flatten(start_dim=0, end_dim=-1))])


@importer("ReduceMean")
def reduce_mean(ctx: NodeContext) -> AvgPool2d | Emit:
    """Mean over the spatial dims: AvgPool2d over the whole plane."""
    return _global(ctx, AvgPool2d, "mean")


@importer("ReduceMax")
def reduce_max(ctx: NodeContext) -> MaxPool2d | Emit:
    """Max over the spatial dims (adaptive max pooling to 1): MaxPool2d over the whole plane."""
    return _global(ctx, MaxPool2d, "max")
