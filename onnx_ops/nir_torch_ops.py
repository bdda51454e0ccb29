"""`torch.ops.talon.*` custom ops of the NIR-derived primitives (computed by onnx_ops.nir_kernels) and their
translations to the talon ONNX ops LI, Integrator, CubaLIF, Threshold and SumPool2d (schemas in onnx_ops.schemas).

The bridge's modules call these only while exporting, so `bridge.to_ir` sees one talon node per module;
`custom_translation_table()` is merged into onnx_ops.torch_ops's table.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from onnxscript import values as _osv

from . import nir_kernels as nk
from .neuron_kernels import lif_coefficients
from .schemas import DOMAIN, VERSION

_talon = _osv.Opset(DOMAIN, VERSION)


@torch.library.custom_op("talon::li", mutates_args=())
def li(x: torch.Tensor, v: torch.Tensor, tau: torch.Tensor, r: torch.Tensor,
       v_leak: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One leaky-integrator timestep: (y, v_next), y = v_next."""
    v_next = nk.li_step(x, v, *lif_coefficients(tau), r, v_leak)
    return v_next, v_next.clone()


@torch.library.custom_op("talon::integrator", mutates_args=())
def integrator(x: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One integrator timestep: (y, v_next), y = v_next."""
    v_next = nk.integrator_step(x, v, r)
    return v_next, v_next.clone()


@torch.library.custom_op("talon::cuba_lif", mutates_args=())
def cuba_lif(x: torch.Tensor, v: torch.Tensor, i: torch.Tensor, tau_syn: torch.Tensor, tau_mem: torch.Tensor,
             r: torch.Tensor, v_leak: torch.Tensor, v_threshold: torch.Tensor,
             w_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One current-based LIF timestep: (spikes, v_next, i_next)."""
    return nk.cuba_lif_step(x, v, i, *lif_coefficients(tau_syn), w_in, *lif_coefficients(tau_mem), r, v_leak,
                            v_threshold)


@torch.library.custom_op("talon::threshold", mutates_args=())
def threshold(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """1.0 where x >= level."""
    return nk.threshold(x, level)


@torch.library.custom_op("talon::sum_pool2d", mutates_args=())
def sum_pool2d(x: torch.Tensor, kernel_size: Sequence[int], stride: Sequence[int],
               padding: Sequence[int]) -> torch.Tensor:
    """2-D sum pooling."""
    return nk.sum_pool2d(x, kernel_size, stride, padding)


def _like(x: torch.Tensor, *others: torch.Tensor, count: int) -> tuple[torch.Tensor, ...]:
    shape = torch.broadcast_shapes(x.shape, *(o.shape for o in others))
    return tuple(x.new_empty(shape) for _ in range(count))


li.register_fake(lambda x, v, tau, r, v_leak: _like(x, v, count=2))
integrator.register_fake(lambda x, v, r: _like(x, v, count=2))
cuba_lif.register_fake(lambda x, v, i, *params: _like(x, v, i, count=3))
threshold.register_fake(lambda x, level: _like(x, level, count=1)[0])
sum_pool2d.register_fake(lambda x, kernel_size, stride, padding: nk.sum_pool2d(x, kernel_size, stride, padding))


def _li_onnx(x, v, tau, r, v_leak):
    return _talon.LI(x, v, tau, r, v_leak, _outputs=2)


def _integrator_onnx(x, v, r):
    return _talon.Integrator(x, v, r, _outputs=2)


def _cuba_lif_onnx(x, v, i, tau_syn, tau_mem, r, v_leak, v_threshold, w_in):
    return _talon.CubaLIF(x, v, i, tau_syn, tau_mem, r, v_leak, v_threshold, w_in, _outputs=3)


def _threshold_onnx(x, level):
    return _talon.Threshold(x, level)


def _sum_pool2d_onnx(x, kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int]):
    return _talon.SumPool2d(x, kernel_shape=list(kernel_size), strides=list(stride), pads=list(padding) * 2)


def custom_translation_table() -> dict[Any, Callable]:
    """{torch custom op: onnxscript translation} of these ops, for torch.onnx.export's custom_translation_table."""
    ops = torch.ops.talon
    return {ops.li.default: _li_onnx, ops.integrator.default: _integrator_onnx, ops.cuba_lif.default: _cuba_lif_onnx,
            ops.threshold.default: _threshold_onnx, ops.sum_pool2d.default: _sum_pool2d_onnx}
