"""OpSchemas of the `talon` ONNX domain (version 1), registered with onnx on import.

Registering gives `onnx.checker.check_model(full_check=True)` and `onnx.shape_inference` the ops'
arity, attributes and output types/shapes, and lets onnxscript (and so the dynamo exporter) emit them.
"""

from __future__ import annotations

from typing import Callable

import onnx
from onnx import TypeProto
from onnx.defs import OpSchema

DOMAIN = "talon"
VERSION = 1

_T = [("T", ["tensor(float)", "tensor(double)"], "float32 (float64 accepted)")]
_P = OpSchema.FormalParameter
_A = OpSchema.Attribute
_INTS, _INT, _STR = OpSchema.AttrType.INTS, OpSchema.AttrType.INT, OpSchema.AttrType.STRING
_VARIADIC = OpSchema.FormalParameterOption.Variadic


def _D(name: str, default, doc: str) -> OpSchema.Attribute:
    """An optional attribute with a default value."""
    return _A(name, onnx.helper.make_attribute(name, default), doc)


def _dims(t: TypeProto) -> list | None:
    """Dims of a tensor type as ints / dim_param strings / None, or None when the rank is unknown."""
    if t is None or not t.tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.tensor_type.shape.dim]


def _tensor(elem_type: int, dims: list | None) -> TypeProto:
    """A tensor TypeProto with the given element type and dims (None: unknown rank)."""
    return onnx.helper.make_tensor_type_proto(elem_type, dims)


def _ints(ctx, name: str) -> list[int] | None:
    attr = ctx.get_attribute(name)
    return list(attr.ints) if attr is not None else None


def _int(ctx, name: str, default: int) -> int:
    attr = ctx.get_attribute(name)
    return attr.i if attr is not None else default


def _fail(op: str, message: str) -> onnx.shape_inference.InferenceError:
    return onnx.shape_inference.InferenceError(f"[talon.{op}] {message}")


def _neuron_infer(ctx) -> None:
    """S and V_next have X's type and shape."""
    x = ctx.get_input_type(0)
    if x is None:
        return
    for i in range(ctx.get_num_outputs()):
        ctx.set_output_type(i, x)


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


def _window_dims(xd: list, kernel, strides, pads, dilations) -> list:
    """Output spatial dims of a window op over dims xd[2:] (None where unknown)."""
    out = []
    for i, (size, k) in enumerate(zip(xd[2:], kernel)):
        known = isinstance(size, int) and isinstance(k, int)
        out.append(
            (size + pads[i] + pads[i + len(kernel)] - dilations[i] * (k - 1) - 1) // strides[i] + 1 if known else None
        )
    return out


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


def _identity_infer(ctx) -> None:
    if ctx.get_input_type(0) is not None:
        ctx.set_output_type(0, ctx.get_input_type(0))


def _param(name: str, type_str: str, option=OpSchema.FormalParameterOption.Single) -> OpSchema.FormalParameter:
    return _P(name, type_str, param_option=option)


def _schema(name: str, doc: str, inputs, outputs, attributes, infer: Callable) -> OpSchema:
    schema = OpSchema(
        name,
        DOMAIN,
        VERSION,
        doc=doc,
        inputs=[_param(*i) for i in inputs],
        outputs=[_param(*o) for o in outputs],
        type_constraints=_T,
        attributes=attributes,
    )
    schema.set_type_and_shape_inference_function(infer)
    return schema


SCHEMAS: dict[str, OpSchema] = {
    s.name: s
    for s in [
        _schema(
            "LIF",
            "One LIF timestep (dt = 1): beta = 1 - 1/tau; V = beta*V + (1-beta)*(v_leak + r*X); "
            "S = V >= v_threshold; V_next = V reset where S (reset_mode).",
            [("X", "T"), ("V", "T"), ("tau", "T"), ("r", "T"), ("v_leak", "T"), ("v_threshold", "T")],
            [("S", "T"), ("V_next", "T")],
            [_D("reset_mode", "zero", "'zero' (V_next = 0 where S) or 'subtract' (V_next = V - v_threshold where S)")],
            _neuron_infer,
        ),
        _schema(
            "IF",
            "One IF timestep: V = V + r*X; S = V >= v_threshold; V_next = V reset where S (reset_mode).",
            [("X", "T"), ("V", "T"), ("r", "T"), ("v_threshold", "T")],
            [("S", "T"), ("V_next", "T")],
            [_D("reset_mode", "zero", "'zero' (V_next = 0 where S) or 'subtract' (V_next = V - v_threshold where S)")],
            _neuron_infer,
        ),
        _schema(
            "LI",
            "One leaky-integrator timestep: V_next = beta*V + (1-beta)*(v_leak + r*X) as in LIF, never firing; "
            "Y = V_next.",
            [("X", "T"), ("V", "T"), ("tau", "T"), ("r", "T"), ("v_leak", "T")],
            [("Y", "T"), ("V_next", "T")],
            [],
            _neuron_infer,
        ),
        _schema(
            "Integrator",
            "One integrator timestep: V_next = V + r*X; Y = V_next.",
            [("X", "T"), ("V", "T"), ("r", "T")],
            [("Y", "T"), ("V_next", "T")],
            [],
            _neuron_infer,
        ),
        _schema(
            "CubaLIF",
            "One current-based LIF timestep: I_next = alpha*I + (1-alpha)*(w_in*X), alpha = 1 - 1/tau_syn; "
            "then the LIF step of I_next with tau_mem, r, v_leak, v_threshold.",
            [
                ("X", "T"),
                ("V", "T"),
                ("I", "T"),
                ("tau_syn", "T"),
                ("tau_mem", "T"),
                ("r", "T"),
                ("v_leak", "T"),
                ("v_threshold", "T"),
                ("w_in", "T"),
            ],
            [("S", "T"), ("V_next", "T"), ("I_next", "T")],
            [],
            _neuron_infer,
        ),
        _schema(
            "Threshold",
            "Y = 1 where X >= threshold else 0 (X's type).",
            [("X", "T"), ("threshold", "T")],
            [("Y", "T")],
            [],
            _neuron_infer,
        ),
        _schema(
            "SumPool2d",
            "2-D sum pooling over [N, C, H, W] with zero padding (pads: begin..., end...).",
            [("X", "T")],
            [("Y", "T")],
            [
                _A("kernel_shape", _INTS, "window (kH, kW)"),
                _D("strides", [1, 1], "strides"),
                _D("pads", [0, 0, 0, 0], "pads (begin..., end...)"),
            ],
            _sumpool_infer,
        ),
        _schema(
            "SpikingAffine",
            "Y = X W^T + B over the last axis (Gemm with transB=1); quantisation attributes are recorded.",
            [("X", "T"), ("W", "T"), ("B", "T")],
            [("Y", "T")],
            [
                _D("weight_bits", 8, "weight precision in bits"),
                _D("accumulator_bits", 16, "accumulator precision in bits"),
                _D("spike_mode", "binary", "'binary', 'graded' or 'rate'"),
            ],
            _affine_infer,
        ),
        _schema(
            "ChannelSplit",
            "Splits X along `axis` into len(split_sections) outputs.",
            [("X", "T")],
            [("Y", "T", _VARIADIC)],
            [_A("split_sections", _INTS, "size of each output along axis"), _D("axis", 1, "split axis")],
            _split_infer,
        ),
        _schema(
            "SepConv2d",
            "Depthwise Conv (group = channels, strides/pads/dilations) of X with DW + DB, "
            "then pointwise Conv with PW + PB.",
            [("X", "T"), ("DW", "T"), ("PW", "T"), ("DB", "T"), ("PB", "T")],
            [("Y", "T")],
            [
                _A("group", _INT, "input channels (depthwise groups)"),
                _D("strides", [1, 1], "depthwise strides"),
                _D("pads", [0, 0, 0, 0], "depthwise pads (begin..., end...)"),
                _D("dilations", [1, 1], "depthwise dilations"),
            ],
            _sepconv_infer,
        ),
        _schema(
            "HybridRegion",
            "Marks the start of an ANN or SNN region; the identity.",
            [("X", "T")],
            [("Y", "T")],
            [_D("mode", "snn", "'ann' or 'snn'"), _A("region_name", _STR, "optional region name", required=False)],
            _identity_infer,
        ),
    ]
}


def register_schemas() -> None:
    """Register every talon schema with onnx once (idempotent)."""
    for name, schema in SCHEMAS.items():
        if not onnx.defs.has(name, VERSION, DOMAIN):
            onnx.defs.register_schema(schema)


register_schemas()
