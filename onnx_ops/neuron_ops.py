"""The talon neuron ops (LIF, IF, LI, Integrator, CubaLIF) and Threshold, one OpSpec each.

Dynamics (dt = 1, docs/neurons.md): LIF beta = 1 - 1/tau, v = beta*v + (1-beta)*(v_leak + r*x); IF v = v + r*x;
spike s = v >= v_threshold; reset_mode "zero": v_next = v*(1 - s), "subtract": v_next = v - s*v_threshold.
LI and Integrator never fire and output their membrane; CubaLIF updates the current first (an LI step of
w_in*x with tau_syn), then runs the LIF step on it. The bodies compute in the torch kernels' order, so
float32 results are bit for bit those of onnx_ops.neuron_kernels.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper as h

from .body import one
from .spec import Attr, OpSpec, Variant, register_op

RESET_MODES = ("zero", "subtract")
RESET = Attr("reset_mode", "str", "zero", "after a spike: 'zero' sets v to 0, 'subtract' removes v_threshold",
             choices=RESET_MODES)


def _reset_overload(variant: Variant) -> str:
    """LIF and IF bodies: the default resets to zero; 'subtract' has its own overload."""
    mode = variant.attrs.get("reset_mode", "zero")
    return "" if mode == "zero" else mode


# -- ONNX bodies ----------------------------------------------------------------------------------------
def _spike_and_reset(v: str, subtract: bool = False, threshold: str = "v_threshold") -> list[onnx.NodeProto]:
    """S = (v >= threshold) in X's type; V_next = v * (1 - S), or v - S * threshold when subtracting."""
    fire = [h.make_node("GreaterOrEqual", [v, threshold], ["fired"]), h.make_node("CastLike", ["fired", "X"], ["S"])]
    if subtract:
        return [*fire, h.make_node("Mul", ["S", threshold], ["removed"]), h.make_node("Sub", [v, "removed"], ["V_next"])]
    return [*fire, h.make_node("Sub", ["one", "S"], ["keep"]), h.make_node("Mul", [v, "keep"], ["V_next"])]


def _leaky(p: str, x: str, v: str, tau: str, r: str, v_leak: str | None) -> list[onnx.NodeProto]:
    """`<p>v` = beta*v + (1-beta)*(v_leak + r*x), beta = 1 - 1/tau, in the kernel's order (bit-exact in float32)."""
    drive = [h.make_node("Add", [v_leak, f"{p}rx"], [f"{p}drive"])] if v_leak else []
    return [
        h.make_node("Div", ["one", tau], [f"{p}inv_tau"]),
        h.make_node("Sub", ["one", f"{p}inv_tau"], [f"{p}beta"]),
        h.make_node("Sub", ["one", f"{p}beta"], [f"{p}one_minus_beta"]),
        h.make_node("Mul", [r, x], [f"{p}rx"]),
        *drive,
        h.make_node("Mul", [f"{p}beta", v], [f"{p}decayed"]),
        h.make_node("Mul", [f"{p}one_minus_beta", f"{p}drive" if v_leak else f"{p}rx"], [f"{p}charge"]),
        h.make_node("Add", [f"{p}decayed", f"{p}charge"], [f"{p}v"]),
    ]


def _lif_body(variant: Variant) -> list[onnx.NodeProto]:
    subtract = variant.attrs["reset_mode"] == "subtract"
    return [*one("X"), *_leaky("", "X", "V", "tau", "r", "v_leak"), *_spike_and_reset("v", subtract)]


def _if_body(variant: Variant) -> list[onnx.NodeProto]:
    subtract = variant.attrs["reset_mode"] == "subtract"
    return [
        *one("X"),
        h.make_node("Mul", ["r", "X"], ["rx"]),
        h.make_node("Add", ["V", "rx"], ["v"]),
        *_spike_and_reset("v", subtract),
    ]


def _li_body(variant: Variant) -> list[onnx.NodeProto]:
    return [
        *one("X"),
        *_leaky("", "X", "V", "tau", "r", "v_leak"),
        h.make_node("Identity", ["v"], ["Y"]),
        h.make_node("Identity", ["v"], ["V_next"]),
    ]


def _integrator_body(variant: Variant) -> list[onnx.NodeProto]:
    return [
        h.make_node("Mul", ["r", "X"], ["rx"]),
        h.make_node("Add", ["V", "rx"], ["Y"]),
        h.make_node("Identity", ["Y"], ["V_next"]),
    ]


def _cuba_lif_body(variant: Variant) -> list[onnx.NodeProto]:
    # the current first (an LI step with v_leak = 0, which adds nothing), then the LIF step driven by it
    return [
        *one("X"),
        *_leaky("syn_", "X", "I", "tau_syn", "w_in", None),
        h.make_node("Identity", ["syn_v"], ["I_next"]),
        *_leaky("", "syn_v", "V", "tau_mem", "r", "v_leak"),
        *_spike_and_reset("v"),
    ]


def _threshold_body(variant: Variant) -> list[onnx.NodeProto]:
    return [
        h.make_node("GreaterOrEqual", ["X", "threshold"], ["fired"]),
        h.make_node("CastLike", ["fired", "X"], ["Y"]),
    ]


# -- numpy references (independent of the bodies) ---------------------------------------------------------
def _np_spike_and_reset(v: np.ndarray, v_threshold: np.ndarray, reset_mode: str = "zero"):
    s = (v >= v_threshold).astype(v.dtype)
    if reset_mode == "subtract":
        return s, (v - s * v_threshold).astype(v.dtype)
    return s, v * (v.dtype.type(1) - s)


def _np_leaky(X, V, tau, r, v_leak):
    one_ = X.dtype.type(1)
    beta = one_ - one_ / tau
    return (beta * V + (one_ - beta) * (v_leak + r * X)).astype(X.dtype)


def _lif_reference(X, V, tau, r, v_leak, v_threshold, reset_mode="zero"):
    return _np_spike_and_reset(_np_leaky(X, V, tau, r, v_leak), v_threshold, reset_mode)


def _if_reference(X, V, r, v_threshold, reset_mode="zero"):
    return _np_spike_and_reset((V + r * X).astype(X.dtype), v_threshold, reset_mode)


def _li_reference(X, V, tau, r, v_leak):
    v = _np_leaky(X, V, tau, r, v_leak)
    return v, v.copy()


def _integrator_reference(X, V, r):
    v = (V + r * X).astype(X.dtype)
    return v, v.copy()


def _cuba_lif_reference(X, V, I, tau_syn, tau_mem, r, v_leak, v_threshold, w_in):
    i = _np_leaky(X, I, tau_syn, w_in, np.zeros_like(w_in))
    s, v = _np_spike_and_reset(_np_leaky(i, V, tau_mem, r, v_leak), v_threshold)
    return s, v, i


def _threshold_reference(X, threshold):
    return ((X >= threshold).astype(X.dtype),)


# -- torch kernels (imported on first call: onnx_ops does not load torch until asked) ----------------------
def _lif_kernel(X, V, tau, r, v_leak, v_threshold, reset_mode="zero"):
    from .neuron_kernels import lif_coefficients, lif_step

    return lif_step(X, V, *lif_coefficients(tau), r, v_leak, v_threshold, subtract=reset_mode == "subtract")


def _if_kernel(X, V, r, v_threshold, reset_mode="zero"):
    from .neuron_kernels import if_step

    return if_step(X, V, r, v_threshold, subtract=reset_mode == "subtract")


def _li_kernel(X, V, tau, r, v_leak):
    from .neuron_kernels import lif_coefficients
    from .nir_kernels import li_step

    v = li_step(X, V, *lif_coefficients(tau), r, v_leak)
    return v, v


def _integrator_kernel(X, V, r):
    from .nir_kernels import integrator_step

    v = integrator_step(X, V, r)
    return v, v


def _cuba_lif_kernel(X, V, I, tau_syn, tau_mem, r, v_leak, v_threshold, w_in):
    from .neuron_kernels import lif_coefficients
    from .nir_kernels import cuba_lif_step

    return cuba_lif_step(X, V, I, *lif_coefficients(tau_syn), w_in, *lif_coefficients(tau_mem), r, v_leak,
                         v_threshold)


def _threshold_kernel(X, threshold):
    from .nir_kernels import threshold as fire

    return fire(X, threshold)


LIF = register_op(OpSpec(
    "LIF",
    "One LIF timestep (dt = 1): beta = 1 - 1/tau; V = beta*V + (1-beta)*(v_leak + r*X); S = V >= v_threshold; "
    "V_next = V reset to 0 where S (reset_mode 'zero') or V - S*v_threshold ('subtract').",
    ("X", "V", "tau", "r", "v_leak", "v_threshold"), ("S", "V_next"),
    _lif_body, _lif_reference, _lif_kernel, attributes=(RESET,), state=("v",), overload=_reset_overload,
))
IF = register_op(OpSpec(
    "IF",
    "One IF timestep: V = V + r*X; S = V >= v_threshold; V_next = V reset to 0 where S (reset_mode 'zero') "
    "or V - S*v_threshold ('subtract').",
    ("X", "V", "r", "v_threshold"), ("S", "V_next"),
    _if_body, _if_reference, _if_kernel, attributes=(RESET,), state=("v",), overload=_reset_overload,
))
LI = register_op(OpSpec(
    "LI",
    "One leaky-integrator timestep: V_next = beta*V + (1-beta)*(v_leak + r*X) as in LIF, never firing; Y = V_next.",
    ("X", "V", "tau", "r", "v_leak"), ("Y", "V_next"),
    _li_body, _li_reference, _li_kernel, state=("v",),
))
INTEGRATOR = register_op(OpSpec(
    "Integrator",
    "One integrator timestep: V_next = V + r*X; Y = V_next.",
    ("X", "V", "r"), ("Y", "V_next"),
    _integrator_body, _integrator_reference, _integrator_kernel, state=("v",),
))
CUBA_LIF = register_op(OpSpec(
    "CubaLIF",
    "One current-based LIF timestep: I_next = alpha*I + (1-alpha)*(w_in*X), alpha = 1 - 1/tau_syn; "
    "then the LIF step of I_next with tau_mem, r, v_leak, v_threshold.",
    ("X", "V", "I", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in"), ("S", "V_next", "I_next"),
    _cuba_lif_body, _cuba_lif_reference, _cuba_lif_kernel, state=("v", "i"),
))
THRESHOLD = register_op(OpSpec(
    "Threshold",
    "Y = 1 where X >= threshold else 0 (X's type).",
    ("X", "threshold"), ("Y",),
    _threshold_body, _threshold_reference, _threshold_kernel,
))
