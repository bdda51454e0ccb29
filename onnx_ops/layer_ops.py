"""The talon layer ops (SumPool2d, SpikingAffine, ChannelSplit, SepConv2d, HybridRegion), one OpSpec each."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import AttributeProto, TypeProto
from onnx import helper as h

from .body import ref
from .spec import Attr, OpSpec, Variant, register_op

# -- shape rules ----------------------------------------------------------------------------------------


def _dims(t: TypeProto) -> list | None:
    """Dims of a tensor type as ints / dim_param strings / None, or None when the rank is unknown."""
    if t is None or not t.tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.tensor_type.shape.dim]


def _tensor(elem_type: int, dims: list | None) -> TypeProto:
    """A tensor TypeProto with the given element type and dims (None: unknown rank)."""
    return h.make_tensor_type_proto(elem_type, dims)


def _ints(ctx, name: str) -> list[int] | None:
    attr = ctx.get_attribute(name)
    return list(attr.ints) if attr is not None else None


def _int(ctx, name: str, default: int) -> int:
    attr = ctx.get_attribute(name)
    return attr.i if attr is not None else default


def _fail(op: str, message: str) -> onnx.shape_inference.InferenceError:
    return onnx.shape_inference.InferenceError(f"[talon.{op}] {message}")


def _affine_infer(ctx) -> None:
    """Y = X W^T + B over the last axis: [..., in] x [out, in] -> [..., out]."""
    if ctx.get_input_type(0) is None:
        return
    x, w = ctx.get_input_type(0), ctx.get_input_type(1)
    xd, wd = _dims(x), _dims(w)
    if xd is not None and wd is not None:
        if len(wd) != 2:
            raise _fail("SpikingAffine", f"W must be 2-D (out, in), got rank {len(wd)}")
        if isinstance(xd[-1], int) and isinstance(wd[1], int) and xd[-1] != wd[1]:
            raise _fail("SpikingAffine", f"X's last dim {xd[-1]} differs from W's in dim {wd[1]}")
        xd = [*xd[:-1], wd[0]]
    ctx.set_output_type(0, _tensor(x.tensor_type.elem_type, xd))


def _split_infer(ctx) -> None:
    """Y_i is X with `axis` resized to split_sections[i]."""
    if ctx.get_input_type(0) is None:
        return
    x = ctx.get_input_type(0)
    sections = _ints(ctx, "split_sections") or []
    if len(sections) != ctx.get_num_outputs():
        raise _fail("ChannelSplit", f"{len(sections)} split_sections for {ctx.get_num_outputs()} outputs")
    xd = _dims(x)
    axis = _int(ctx, "axis", 1)
    if xd is not None:
        if not -len(xd) <= axis < len(xd):
            raise _fail("ChannelSplit", f"axis {axis} out of range for rank {len(xd)}")
        axis %= len(xd)
        if isinstance(xd[axis], int) and xd[axis] != sum(sections):
            raise _fail("ChannelSplit", f"split_sections sum to {sum(sections)}, X has {xd[axis]} on axis {axis}")
    for i, n in enumerate(sections):
        ctx.set_output_type(
            i, _tensor(x.tensor_type.elem_type, None if xd is None else [*xd[:axis], n, *xd[axis + 1 :]])
        )


def _window_dims(xd: list, kernel, strides, pads, dilations) -> list:
    """Output spatial dims of a window op over dims xd[2:] (None where unknown)."""
    out = []
    for i, (size, k) in enumerate(zip(xd[2:], kernel)):
        known = isinstance(size, int) and isinstance(k, int)
        out.append(
            (size + pads[i] + pads[i + len(kernel)] - dilations[i] * (k - 1) - 1) // strides[i] + 1 if known else None
        )
    return out


def _sepconv_infer(ctx) -> None:
    """Depthwise conv (strides, pads, dilations) then pointwise: [N, C, H, W] -> [N, C', H', W']."""
    if ctx.get_input_type(0) is None:
        return
    x, dw, pw = (ctx.get_input_type(i) for i in range(3))
    xd, dwd, pwd = _dims(x), _dims(dw), _dims(pw)
    out = None
    if xd is not None and dwd is not None and pwd is not None:
        if len(xd) != 4 or len(dwd) != 4 or len(pwd) != 4:
            raise _fail("SepConv2d", "X, DW and PW must be 4-D")
        window = (_ints(ctx, "strides") or [1, 1], _ints(ctx, "pads") or [0] * 4, _ints(ctx, "dilations") or [1, 1])
        out = [xd[0], pwd[0], *_window_dims(xd, dwd[2:], *window)]
    ctx.set_output_type(0, _tensor(x.tensor_type.elem_type, out))


def _sumpool_infer(ctx) -> None:
    """[N, C, H, W] -> [N, C, H', W'] by the pooling window."""
    if ctx.get_input_type(0) is None:
        return
    x = ctx.get_input_type(0)
    xd = _dims(x)
    kernel = _ints(ctx, "kernel_shape")
    if not kernel or len(kernel) != 2:
        raise _fail("SumPool2d", f"kernel_shape must hold 2 ints, got {kernel}")
    out = None
    if xd is not None:
        if len(xd) != 4:
            raise _fail("SumPool2d", f"X must be 4-D, got rank {len(xd)}")
        out = xd[:2] + _window_dims(xd, kernel, _ints(ctx, "strides") or [1, 1], _ints(ctx, "pads") or [0] * 4, [1, 1])
    ctx.set_output_type(0, _tensor(x.tensor_type.elem_type, out))


# -- ONNX bodies ----------------------------------------------------------------------------------------
def _sumpool_body(variant: Variant) -> list[onnx.NodeProto]:
    # channels folded into the batch, then a Conv with an all-ones (1, 1, kH, kW) kernel: exact sums
    kernel = ref(h.make_node("Constant", [], ["kernel"]), "value_ints", "kernel_shape", AttributeProto.INTS)
    conv = h.make_node("Conv", ["planes", "ones"], ["pooled"])
    for attr in ("strides", "pads"):
        ref(conv, attr, attr, AttributeProto.INTS)
    return [
        kernel,
        h.make_node("Constant", [], ["lead"], value_ints=[1, 1]),
        h.make_node("Concat", ["lead", "kernel"], ["w_shape"], axis=0),
        h.make_node(
            "ConstantOfShape", ["w_shape"], ["ones_f"], value=h.make_tensor("one", onnx.TensorProto.FLOAT, [1], [1.0])
        ),
        h.make_node("CastLike", ["ones_f", "X"], ["ones"]),
        h.make_node("Constant", [], ["plane_shape"], value_ints=[-1, 1, 0, 0]),
        h.make_node("Reshape", ["X", "plane_shape"], ["planes"]),
        conv,
        h.make_node("Shape", ["X"], ["nc"], end=2),
        h.make_node("Shape", ["pooled"], ["hw"], start=2),
        h.make_node("Concat", ["nc", "hw"], ["y_shape"], axis=0),
        h.make_node("Reshape", ["pooled", "y_shape"], ["Y"]),
    ]


def _affine_body(variant: Variant) -> list[onnx.NodeProto]:
    return [
        h.make_node("Transpose", ["W"], ["Wt"], perm=[1, 0]),
        h.make_node("MatMul", ["X", "Wt"], ["XWt"]),
        h.make_node("Add", ["XWt", "B"], ["Y"]),
    ]


def _sepconv_body(variant: Variant) -> list[onnx.NodeProto]:
    depthwise = h.make_node("Conv", ["X", "DW", "DB"], ["D"])
    for attr, kind in [("group", AttributeProto.INT), ("strides", AttributeProto.INTS),
                       ("pads", AttributeProto.INTS), ("dilations", AttributeProto.INTS)]:
        ref(depthwise, attr, attr, kind)
    return [depthwise, h.make_node("Conv", ["D", "PW", "PB"], ["Y"])]


def _split_body(variant: Variant) -> list[onnx.NodeProto]:
    sections = ref(h.make_node("Constant", [], ["sections"]), "value_ints", "split_sections", AttributeProto.INTS)
    outputs = [f"Y_{i}" for i in range(variant.num_outputs)]
    split = ref(h.make_node("Split", ["X", "sections"], outputs), "axis", "axis", AttributeProto.INT)
    return [sections, split]


def _split_overload(variant: Variant) -> str:
    """A FunctionProto has a fixed output count: one ChannelSplit body per count."""
    return f"n{variant.num_outputs}"


def _identity_body(variant: Variant) -> list[onnx.NodeProto]:
    return [h.make_node("Identity", ["X"], ["Y"])]


# -- numpy references -----------------------------------------------------------------------------------
def _sumpool_reference(X, kernel_shape=None, strides=None, pads=None):
    (kh, kw), (sh, sw) = kernel_shape, strides or (1, 1)
    pt, pl, pb, pr = pads or (0, 0, 0, 0)
    xp = np.pad(X, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    y = np.zeros((*X.shape[:2], oh, ow), dtype=X.dtype)
    for i in range(kh):
        for j in range(kw):
            y += xp[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
    return (y,)


def _affine_reference(X, W, B, weight_bits=None, accumulator_bits=None, spike_mode=None):
    return ((X @ W.T + B).astype(X.dtype),)


def _split_reference(X, split_sections=None, axis=1):
    return tuple(np.split(X, np.cumsum(split_sections)[:-1], axis=axis))


def _sepconv_reference(X, DW, PW, DB, PB, group=None, strides=None, pads=None, dilations=None):
    """Depthwise then pointwise 2-D convolution (direct numpy loops over the kernel)."""
    sh, sw = strides or (1, 1)
    pt, pl, pb, pr = pads or (0, 0, 0, 0)
    dh, dw = dilations or (1, 1)
    xp = np.pad(X, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    kh, kw = DW.shape[2:]
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    d = np.zeros((X.shape[0], X.shape[1], oh, ow), dtype=X.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw]
            d += patch * DW[None, :, 0, i, j, None, None]
    d += DB[None, :, None, None]
    y = np.einsum("nchw,oc->nohw", d, PW[:, :, 0, 0]) + PB[None, :, None, None]
    return (y.astype(X.dtype),)


def _identity_reference(X, mode=None, region_name=None):
    return (X.copy(),)


# -- torch kernels (torch imported on first call) ---------------------------------------------------------
def _sumpool_kernel(X, kernel_shape, strides=(1, 1), pads=(0, 0, 0, 0)):
    from .nir_kernels import sum_pool2d

    if list(pads[:2]) != list(pads[2:]):
        raise ValueError(f"talon::sum_pool2d: pads {list(pads)} are asymmetric; torch pads both sides alike")
    return sum_pool2d(X, kernel_shape, strides, pads[:2])


def _affine_kernel(X, W, B, weight_bits=8, accumulator_bits=16, spike_mode="binary"):
    """X @ W.T + B (the quantisation settings are recorded for the hardware, not applied)."""
    import torch

    return torch.nn.functional.linear(X, W, B)


def _split_kernel(X, split_sections, axis=1):
    import torch

    return list(torch.split(X, list(split_sections), dim=axis))


SUM_POOL2D = register_op(OpSpec(
    "SumPool2d",
    "2-D sum pooling over [N, C, H, W] with zero padding (pads: begin..., end...).",
    ("X",), ("Y",), _sumpool_body, _sumpool_reference, _sumpool_kernel,
    attributes=(Attr("kernel_shape", "ints", doc="window (kH, kW)", required=True),
                Attr("strides", "ints", [1, 1], "strides"),
                Attr("pads", "ints", [0, 0, 0, 0], "pads (begin..., end...)")),
    infer=_sumpool_infer,
))
SPIKING_AFFINE = register_op(OpSpec(
    "SpikingAffine",
    "Y = X W^T + B over the last axis (Gemm with transB=1); quantisation attributes are recorded.",
    ("X", "W", "B"), ("Y",), _affine_body, _affine_reference, _affine_kernel,
    attributes=(Attr("weight_bits", "int", 8, "weight precision in bits"),
                Attr("accumulator_bits", "int", 16, "accumulator precision in bits"),
                Attr("spike_mode", "str", "binary", "'binary', 'graded' or 'rate'")),
    infer=_affine_infer,
))
CHANNEL_SPLIT = register_op(OpSpec(
    "ChannelSplit",
    "Splits X along `axis` into len(split_sections) outputs.",
    ("X",), ("Y",), _split_body, _split_reference, _split_kernel,
    attributes=(Attr("split_sections", "ints", doc="size of each output along axis", required=True),
                Attr("axis", "int", 1, "split axis")),
    infer=_split_infer, variadic=True, count_outputs=lambda attrs: len(attrs["split_sections"]),
    overload=_split_overload,
))
SEP_CONV2D = register_op(OpSpec(
    "SepConv2d",
    "Depthwise Conv (group = channels, strides/pads/dilations) of X with DW + DB, then pointwise Conv with PW + PB.",
    ("X", "DW", "PW", "DB", "PB"), ("Y",), _sepconv_body, _sepconv_reference,
    attributes=(Attr("group", "int", doc="input channels (depthwise groups)", required=True),
                Attr("strides", "ints", [1, 1], "depthwise strides"),
                Attr("pads", "ints", [0, 0, 0, 0], "depthwise pads (begin..., end...)"),
                Attr("dilations", "ints", [1, 1], "depthwise dilations")),
    infer=_sepconv_infer,
))
HYBRID_REGION = register_op(OpSpec(
    "HybridRegion",
    "Marks the start of an ANN or SNN region; the identity.",
    ("X",), ("Y",), _identity_body, _identity_reference,
    attributes=(Attr("mode", "str", "snn", "'ann' or 'snn'"), Attr("region_name", "str", doc="optional region name")),
))
