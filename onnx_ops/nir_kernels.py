"""The one torch definition of the NIR-derived primitives' dynamics (LI, Integrator, CubaLIF, Threshold,
Scale, SumPool2d), built on the LIF/IF kernels of `neuron_kernels` so that the arithmetic is shared.

dt = 1, one call = one timestep. LI is LIF without firing and Integrator is IF without firing (an
infinite threshold never spikes, so the same update runs). CubaLIF updates the synaptic current
first, i = alpha*i + (1-alpha)*w_in*x, then runs the LIF step on i: the order of snnTorch's
Synaptic and of forward Euler applied to the current before the membrane.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .neuron_kernels import if_step, lif_step, spike


def _never(v: torch.Tensor) -> torch.Tensor:
    """A threshold no membrane reaches."""
    return v.new_tensor(float("inf"))


def li_step(x, v, beta, one_minus_beta, r, v_leak) -> torch.Tensor:
    """One leaky-integrator timestep: returns v_next, which is also the output."""
    return lif_step(x, v, beta, one_minus_beta, r, v_leak, _never(v))[1]


def integrator_step(x, v, r) -> torch.Tensor:
    """One integrator timestep (v + r*x): returns v_next, which is also the output."""
    return if_step(x, v, r, _never(v))[1]


def cuba_lif_step(
    x, v, i, alpha, one_minus_alpha, w_in, beta, one_minus_beta, r, v_leak, v_threshold
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One current-based LIF timestep from precomputed coefficients: returns (spikes, v_next, i_next)."""
    i = li_step(x, i, alpha, one_minus_alpha, w_in, torch.zeros_like(w_in))
    s, v = lif_step(i, v, beta, one_minus_beta, r, v_leak, v_threshold)
    return s, v, i


def threshold(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """1.0 where x >= level (surrogate gradient like a neuron's spike)."""
    return spike(x, level)


def scale(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Element-wise product."""
    return x * factor


def sum_pool2d(x: torch.Tensor, kernel_size, stride, padding) -> torch.Tensor:
    """2-D sum pooling over windows (zero padding)."""
    return F.avg_pool2d(x, tuple(kernel_size), tuple(stride), tuple(padding), divisor_override=1)
