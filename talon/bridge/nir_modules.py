"""Torch modules of the NIR-derived primitives (LI, Integrator, CubaLIF, Threshold, Scale, SumPool2d),
registered into the bridge's module registry; the dynamics are onnx_ops.nir_kernels'.

Stateful ones follow the executors' protocol: ``forward(x, *state) -> (output, *next_state)``, rest when
no state is given. LI and Integrator output their membrane; CubaLIF's state is (membrane, current).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from onnx_ops import op_spec
from onnx_ops.neuron_kernels import lif_coefficients
from onnx_ops.nir_kernels import cuba_lif_step, integrator_step, li_step, scale, sum_pool2d, threshold

from .. import ir
from .modules import _NeuronModule, exporting, register_module, talon_op


class _FittedModule(_NeuronModule):
    """A neuron-style module whose kernel buffers are shaped to the input on first use."""

    def _fitted(self, x: torch.Tensor) -> None:
        if x.shape[1:] != self._fit_shape:
            self.fit(x.shape[1:])


class LIModule(_FittedModule):
    """Leaky integrator: ``forward(x, v=None) -> (v_next, v_next)``; the output is the membrane."""

    _state_size = len(op_spec("LI").state)

    param_names = ("tau", "r", "v_leak")
    kernel_names = ("beta", "one_minus_beta", "k_r", "k_v_leak")

    def __init__(self, tau: Any, r: Any, v_leak: Any):
        super().__init__(tau=tau, r=r, v_leak=v_leak)

    def _kernel_values(self) -> tuple[torch.Tensor, ...]:
        return (*lif_coefficients(self.tau), self.r, self.v_leak)

    def forward(self, x: torch.Tensor, v: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        self._fitted(x)
        v = torch.zeros_like(x) if v is None else v
        if exporting():
            return talon_op("li")(x, v, self.tau.reshape(self.beta.shape), self.k_r, self.k_v_leak)
        v = li_step(x, v, *self._kernel)
        return v, v


class IntegratorModule(_FittedModule):
    """Integrator: ``forward(x, v=None) -> (v_next, v_next)`` with v_next = v + r*x."""

    _state_size = len(op_spec("Integrator").state)

    param_names = ("r",)
    kernel_names = ("k_r",)

    def __init__(self, r: Any):
        super().__init__(r=r)

    def _kernel_values(self) -> tuple[torch.Tensor, ...]:
        return (self.r,)

    def forward(self, x: torch.Tensor, v: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        self._fitted(x)
        v = torch.zeros_like(x) if v is None else v
        if exporting():
            return talon_op("integrator")(x, v, self.k_r)
        v = integrator_step(x, v, *self._kernel)
        return v, v


class CubaLIFModule(_FittedModule):
    """Current-based LIF: ``forward(x, v=None, i=None) -> (spikes, v_next, i_next)``."""

    _state_size = len(op_spec("CubaLIF").state)  # membrane, synaptic current, as the talon op declares
    param_names = ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in")
    kernel_names = ("alpha", "one_minus_alpha", "k_w_in", "beta", "one_minus_beta", "k_r", "k_v_leak", "k_v_threshold")

    def __init__(self, tau_syn: Any, tau_mem: Any, r: Any, v_leak: Any, v_threshold: Any, w_in: Any):
        super().__init__(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak, v_threshold=v_threshold, w_in=w_in)

    def _kernel_values(self) -> tuple[torch.Tensor, ...]:
        return (*lif_coefficients(self.tau_syn), self.w_in, *lif_coefficients(self.tau_mem), self.r, self.v_leak,
                self.v_threshold)

    def forward(
        self, x: torch.Tensor, v: torch.Tensor | None = None, i: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self._fitted(x)
        v = torch.zeros_like(x) if v is None else v
        i = torch.zeros_like(x) if i is None else i
        if exporting():
            shape = self.beta.shape
            return talon_op("cuba_lif")(x, v, i, self.tau_syn.reshape(shape), self.tau_mem.reshape(shape), self.k_r,
                                   self.k_v_leak, self.k_v_threshold, self.k_w_in)
        return cuba_lif_step(x, v, i, *self._kernel)


class _ElementwiseModule(_FittedModule):
    """A stateless map with one parameter array shaped to the input like a neuron's."""

    _is_stateful = False

    def _kernel_values(self) -> tuple[torch.Tensor, ...]:
        return (getattr(self, self.param_names[0]),)


class ThresholdModule(_ElementwiseModule):
    """1.0 where x >= threshold, else 0.0."""

    param_names = ("threshold",)
    kernel_names = ("k_threshold",)

    def __init__(self, threshold: Any):
        super().__init__(threshold=threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._fitted(x)
        if exporting():
            return talon_op("threshold")(x, *self._kernel)
        return threshold(x, *self._kernel)


class ScaleModule(_ElementwiseModule):
    """x * scale."""

    param_names = ("scale",)
    kernel_names = ("k_scale",)

    def __init__(self, scale: Any):
        super().__init__(scale=scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._fitted(x)
        return scale(x, *self._kernel)


class SumPool2dModule(nn.Module):
    """2-D sum pooling over (N, C, H, W)."""

    def __init__(self, kernel_size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int] = (0, 0)):
        super().__init__()
        self.kernel_size, self.stride, self.padding = tuple(kernel_size), tuple(stride), tuple(padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if exporting():
            return talon_op("sum_pool2d")(x, list(self.kernel_size), list(self.stride), list(self.padding) * 2)
        return sum_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


register_module(ir.LI)(lambda node: LIModule(node.tau, node.r, node.v_leak))
register_module(ir.Integrator)(lambda node: IntegratorModule(node.r))
register_module(ir.CubaLIF)(
    lambda node: CubaLIFModule(node.tau_syn, node.tau_mem, node.r, node.v_leak, node.v_threshold, node.w_in)
)
register_module(ir.Threshold)(lambda node: ThresholdModule(node.threshold))
register_module(ir.Scale)(lambda node: ScaleModule(node.scale))
register_module(ir.SumPool2d)(lambda node: SumPool2dModule(node.kernel_size, node.stride, node.padding))
