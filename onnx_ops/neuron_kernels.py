"""The one torch definition of TALON neuron dynamics (docs/neurons.md), shared by the bridge's
modules and the `talon::` torch custom ops.

LIF, dt = 1:  beta = 1 - 1/tau;  v = beta*v + (1-beta)*(v_leak + r*x);  spike = v >= v_threshold;
v_next = 0 where spiked (v - v_threshold where spiked with subtract=True).  IF: v = v + r*x, same threshold
and reset. Float32 bit for bit with the
established executor when computed in this order with beta and 1-beta precomputed in float32.
"""

from __future__ import annotations

import torch

SURROGATE_SLOPE = 5.0  # width of the fast-sigmoid surrogate derivative


class _SpikeFn(torch.autograd.Function):
    """Heaviside(v - threshold) forward (v >= threshold spikes); fast-sigmoid surrogate backward."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(v, threshold)
        return (v >= threshold).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        v, threshold = ctx.saved_tensors
        d = grad / (SURROGATE_SLOPE * (v - threshold).abs() + 1.0) ** 2
        grad_thr = -d
        if threshold.shape != d.shape:
            grad_thr = grad_thr.sum_to_size(threshold.shape)
        return d, grad_thr


def spike(v: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Spikes (0/1 in v's dtype) where v >= threshold; differentiable through a surrogate when grads are on."""
    if torch.is_grad_enabled() and (v.requires_grad or threshold.requires_grad):
        return _SpikeFn.apply(v, threshold)
    return (v >= threshold).to(v.dtype)


def lif_coefficients(tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(beta, 1 - beta) with beta = 1 - 1/tau, computed in tau's dtype (float32 for bit-exactness)."""
    beta = 1.0 - 1.0 / tau
    return beta, 1.0 - beta


def _reset(v: torch.Tensor, s: torch.Tensor, v_threshold: torch.Tensor, subtract: bool) -> torch.Tensor:
    """The membrane after spikes `s`: v - s*v_threshold when subtracting, else v*(1 - s) (zero where spiked)."""
    return v - s * v_threshold if subtract else v * (1.0 - s)


def lif_step(
    x, v, beta, one_minus_beta, r, v_leak, v_threshold, subtract: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LIF timestep from precomputed coefficients: returns (spikes, v_next)."""
    v = beta * v + one_minus_beta * (v_leak + r * x)
    s = spike(v, v_threshold)
    return s, _reset(v, s, v_threshold, subtract)


def if_step(x, v, r, v_threshold, subtract: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One IF timestep: returns (spikes, v_next)."""
    v = v + r * x
    s = spike(v, v_threshold)
    return s, _reset(v, s, v_threshold, subtract)


def _reset_into(v: torch.Tensor, v_threshold, subtract: bool, scratch: torch.Tensor, out: torch.Tensor):
    """_reset without allocation, for the scans: `scratch` and `out` have v's shape; returns `out`.

    Zero reset multiplies by (v < v_threshold), which equals 1 - spike (NaN and inf included); subtract
    reset takes spike*v_threshold away, as _reset does."""
    if subtract:
        torch.ge(v, v_threshold, out=scratch)
        torch.mul(scratch, v_threshold, out=scratch)
        return torch.sub(v, scratch, out=out)
    torch.lt(v, v_threshold, out=scratch)
    return torch.mul(v, scratch, out=out)


def lif_scan(xs, v, beta, one_minus_beta, r, v_leak, v_threshold, subtract: bool = False):
    """T lif_step calls over xs [T, ...] from v, without autograd: (spikes [T, ...], v after the last step).

    The same numbers as the step loop in fewer operations: the input current (1-beta)*(v_leak + r*x) is
    computed for all timesteps at once, each step keeps its membrane before reset in place of that current,
    and the spikes are read from the kept membranes at the end."""
    h = one_minus_beta * (v_leak + r * xs)
    scaled, scratch, v_next = torch.empty_like(h[0]), torch.empty_like(h[0]), torch.empty_like(h[0])
    for h_t in h:
        torch.mul(beta, v, out=scaled)
        torch.add(scaled, h_t, out=h_t)
        v = _reset_into(h_t, v_threshold, subtract, scratch, v_next)
    return h.ge_(v_threshold), v


def if_scan(xs, v, r, v_threshold, subtract: bool = False):
    """T if_step calls over xs [T, ...] from v, without autograd: (spikes [T, ...], v after the last step);
    computed as lif_scan is."""
    h = r * xs
    scratch, v_next = torch.empty_like(h[0]), torch.empty_like(h[0])
    for h_t in h:
        torch.add(v, h_t, out=h_t)
        v = _reset_into(h_t, v_threshold, subtract, scratch, v_next)
    return h.ge_(v_threshold), v
