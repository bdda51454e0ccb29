"""Resize and Upsample over H and W to Upsample, when the ONNX coordinate rule is torch's
(nearest: checked index by index for the model's sizes; bilinear: half-pixel or align-corners)."""

from __future__ import annotations

import math

import numpy as np

from talon.ir import Upsample

from .context import FLOATS, NodeContext, Unsupported
from .registry import importer

_SOURCE = {  # ONNX coordinate_transformation_mode: output index -> input coordinate
    "half_pixel": lambda o, n_in, n_out, s: (o + 0.5) / s - 0.5,
    "pytorch_half_pixel": lambda o, n_in, n_out, s: (o + 0.5) / s - 0.5 if n_out > 1 else 0.0,
    "align_corners": lambda o, n_in, n_out, s: o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0,
    "asymmetric": lambda o, n_in, n_out, s: o / s,
    "tf_half_pixel_for_nn": lambda o, n_in, n_out, s: (o + 0.5) / s,
}
_ROUND = {
    "round_prefer_floor": lambda x: math.ceil(x - 0.5),
    "round_prefer_ceil": lambda x: math.floor(x + 0.5),
    "floor": math.floor,
    "ceil": math.ceil,
}


def nearest_matches_torch(n_in: int, n_out: int, scale: float, coord: str, rounding: str) -> bool:
    """True when ONNX nearest resizing picks the same input index as torch's nearest for every output index."""
    if coord not in _SOURCE or rounding not in _ROUND:
        return False
    step = np.float32(n_in) / np.float32(n_out)
    for o in range(n_out):
        onnx_index = min(max(_ROUND[rounding](_SOURCE[coord](o, n_in, n_out, scale)), 0), n_in - 1)
        torch_index = min(int(np.floor(np.float32(o) * step)), n_in - 1)
        if onnx_index != torch_index:
            return False
    return True


def _upsample(ctx: NodeContext, mode: str, coord: str, rounding: str, scales: np.ndarray | None) -> Upsample:
    shape, out = ctx.features(0), ctx.features(0, out=True)
    if len(shape) != 3 or out[0] != shape[0]:
        raise Unsupported(f"only resizing H and W of (N, C, H, W) maps to Upsample, got {ctx.shape(0)} -> {ctx.out_shape(0)}")
    spatial_scales = [o / i for o, i in zip(out[1:], shape[1:])] if scales is None else [float(s) for s in scales[-2:]]
    if mode == "nearest":
        for n_in, n_out, s in zip(shape[1:], out[1:], spatial_scales):
            if not nearest_matches_torch(n_in, n_out, s, coord, rounding):
                raise Unsupported(f"nearest with {coord!r}/{rounding!r} picks other pixels than torch for {n_in} -> {n_out}")
        align = False
    elif mode in ("linear", "bilinear"):
        if coord not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            raise Unsupported(f"linear resizing with coordinate mode {coord!r} differs from torch's bilinear")
        if any(not math.isclose(s, o / i, rel_tol=1e-7) for s, o, i in zip(spatial_scales, out[1:], shape[1:])):
            raise Unsupported(f"scales {spatial_scales} differ from the output/input size ratio")
        mode, align = "bilinear", coord == "align_corners"
    else:
        raise Unsupported(f"mode {mode!r} has no TALON IR equivalent (nearest and bilinear only)")
    factor = out[1] // shape[1]
    if out[1] == shape[1] * factor and out[2] == shape[2] * factor:
        return Upsample(mode=mode, align_corners=align, scale_factor=factor)
    return Upsample(mode=mode, align_corners=align, size=out[1:])


@importer("Upsample", since=7, until=9)
def upsample(ctx: NodeContext) -> Upsample:
    """Upsample (opset 7 to 9): asymmetric coordinates; nearest maps, linear differs from torch's bilinear."""
    scales = ctx.required("scales", FLOATS) if ctx.opset < 9 else ctx.const(1, "scales")
    return _upsample(ctx, ctx.attr("mode", "nearest"), "asymmetric", "floor", np.asarray(scales))


@importer("Resize", since=10, until=10)
def resize_v10(ctx: NodeContext) -> Upsample:
    """Resize (opset 10): asymmetric coordinates, scales input."""
    return _upsample(ctx, ctx.attr("mode", "nearest"), "asymmetric", "floor", ctx.const(1, "scales"))


@importer("Resize", since=11)
def resize(ctx: NodeContext) -> Upsample:
    """Resize (opset 11 on): coordinate_transformation_mode and nearest_mode decide the mapping."""
    if ctx.attr("antialias", 0):
        raise Unsupported("antialias=1 filters the input; torch's Upsample does not")
    scales = ctx.optional_const(2, "scales")
    return _upsample(ctx, ctx.attr("mode", "nearest"), ctx.attr("coordinate_transformation_mode", "half_pixel"),
                     ctx.attr("nearest_mode", "round_prefer_floor"), scales if scales is not None and scales.size else None)
