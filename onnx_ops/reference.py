"""numpy implementations of the talon ops for `onnx.reference.ReferenceEvaluator` (independent of the bodies).

Use ``ReferenceEvaluator(model, new_ops=REFERENCE_OPS)``, or :func:`reference_evaluator`.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from .schemas import DOMAIN


def _spike_and_reset(v: np.ndarray, v_threshold: np.ndarray, reset_mode=None) -> tuple[np.ndarray, np.ndarray]:
    s = (v >= v_threshold).astype(v.dtype)
    if reset_mode == "subtract":
        return s, (v - s * v_threshold).astype(v.dtype)
    return s, v * (v.dtype.type(1) - s)


def _leaky(X, V, tau, r, v_leak):
    one = X.dtype.type(1)
    beta = one - one / tau
    return (beta * V + (one - beta) * (v_leak + r * X)).astype(X.dtype)


class LIF(OpRun):
    """One LIF timestep with beta and 1-beta in the parameters' dtype (neurons.md)."""

    op_domain = DOMAIN

    def _run(self, X, V, tau, r, v_leak, v_threshold, reset_mode=None):
        return _spike_and_reset(_leaky(X, V, tau, r, v_leak), v_threshold, reset_mode)


class LI(OpRun):
    """One leaky-integrator timestep; the output is the membrane."""

    op_domain = DOMAIN

    def _run(self, X, V, tau, r, v_leak):
        v = _leaky(X, V, tau, r, v_leak)
        return v, v.copy()


class Integrator(OpRun):
    """V + r*X; the output is the membrane."""

    op_domain = DOMAIN

    def _run(self, X, V, r):
        v = (V + r * X).astype(X.dtype)
        return v, v.copy()


class CubaLIF(OpRun):
    """Current first, then the LIF step driven by it."""

    op_domain = DOMAIN

    def _run(self, X, V, I, tau_syn, tau_mem, r, v_leak, v_threshold, w_in):
        i = _leaky(X, I, tau_syn, w_in, np.zeros_like(w_in))
        s, v = _spike_and_reset(_leaky(i, V, tau_mem, r, v_leak), v_threshold)
        return s, v, i


class Threshold(OpRun):
    """1 where X >= threshold."""

    op_domain = DOMAIN

    def _run(self, X, threshold):
        return ((X >= threshold).astype(X.dtype),)


class SumPool2d(OpRun):
    """Sums over each pooling window (zero padding)."""

    op_domain = DOMAIN

    def _run(self, X, kernel_shape=None, strides=None, pads=None):
        (kh, kw), (sh, sw) = kernel_shape, strides or (1, 1)
        pt, pl, pb, pr = pads or (0, 0, 0, 0)
        xp = np.pad(X, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
        y = np.zeros((*X.shape[:2], oh, ow), dtype=X.dtype)
        for i in range(kh):
            for j in range(kw):
                y += xp[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
        return (y,)


class IF(OpRun):
    """One IF timestep."""

    op_domain = DOMAIN

    def _run(self, X, V, r, v_threshold, reset_mode=None):
        return _spike_and_reset((V + r * X).astype(X.dtype), v_threshold, reset_mode)


class SpikingAffine(OpRun):
    """Y = X W^T + B."""

    op_domain = DOMAIN

    def _run(self, X, W, B, weight_bits=None, accumulator_bits=None, spike_mode=None):
        return ((X @ W.T + B).astype(X.dtype),)


class ChannelSplit(OpRun):
    """Splits X along axis into split_sections."""

    op_domain = DOMAIN

    def _run(self, X, split_sections=None, axis=None):
        axis = 1 if axis is None else axis
        return tuple(np.split(X, np.cumsum(split_sections)[:-1], axis=axis))


class SepConv2d(OpRun):
    """Depthwise then pointwise 2-D convolution (direct numpy loops over the kernel)."""

    op_domain = DOMAIN

    def _run(self, X, DW, PW, DB, PB, group=None, strides=None, pads=None, dilations=None):
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


class HybridRegion(OpRun):
    """The identity."""

    op_domain = DOMAIN

    def _run(self, X, mode=None, region_name=None):
        return (X.copy(),)


REFERENCE_OPS = [
    LIF,
    IF,
    LI,
    Integrator,
    CubaLIF,
    Threshold,
    SumPool2d,
    SpikingAffine,
    ChannelSplit,
    SepConv2d,
    HybridRegion,
]


def reference_evaluator(model: onnx.ModelProto | str, **kwargs) -> ReferenceEvaluator:
    """A ReferenceEvaluator running talon nodes with the numpy implementations above."""
    return ReferenceEvaluator(model, new_ops=REFERENCE_OPS, **kwargs)
