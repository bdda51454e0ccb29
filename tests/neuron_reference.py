"""LIF written out from docs/neurons.md for the executor tests' reference loops, independently of the
package's kernels (onnx_ops.neuron_kernels): forward Euler with dt = 1, spike at v >= v_threshold, reset to
zero, and the documented fast-sigmoid surrogate derivative 1 / (1 + 5 |v - v_threshold|)^2 for training."""

from __future__ import annotations

import torch

SLOPE = 5.0


def spike(v: torch.Tensor, v_threshold: torch.Tensor | float) -> torch.Tensor:
    """Heaviside(v - v_threshold) in value; in gradient, the derivative of u / (1 + SLOPE |u|), which is the
    surrogate 1 / (1 + SLOPE |u|)^2 (u = v - v_threshold)."""
    u = v - v_threshold
    smooth = u / (1.0 + SLOPE * u.abs())
    return (u >= 0).to(v.dtype) + (smooth - smooth.detach())


def lif(x: torch.Tensor, v: torch.Tensor, tau: float | torch.Tensor, v_threshold: float | torch.Tensor,
        r: float = 1.0, v_leak: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One timestep: (spikes, membrane after reset). beta = 1 - 1/tau is computed in float32, as documented."""
    beta = 1.0 - 1.0 / torch.as_tensor(tau, dtype=torch.float32)
    v = beta * v + (1.0 - beta) * (v_leak + r * x)
    s = spike(v, v_threshold)
    return s, v * (1.0 - s)
