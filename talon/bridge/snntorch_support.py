"""snnTorch models in TALON: `replace_snntorch_modules` swaps each snntorch.Leaky for an equivalent
TALON LIF module (in a copy of the model), so that `bridge.to_ir` exports it as a LIF node.

snntorch.Leaky with ``reset_mechanism="zero"`` computes (snnTorch 1.0 source, reset_delay either way)
``mem = beta*(1 - reset)*mem + x`` with ``reset`` the previous step's spike and ``spk = mem > threshold``.
That is TALON's LIF (docs/neurons.md) with beta_talon = beta, r = 1/(1-beta), v_leak = 0 and the
threshold moved one float32 step up (``>`` becomes ``>=`` exactly in float32): identical spikes. The
TALON membrane is reported after the reset (snnTorch reports it before and resets on the next step).
What TALON LIF cannot express is refused with a ConversionError naming the module: reset by
subtraction (snnTorch's default; see below), no reset, graded spikes, inhibition, state quantisation, beta = 1,
and the other snnTorch neurons (Synaptic and RLeaky reset to zero by discarding the whole next update,
input included, which TALON's CubaLIF and LIF do not do).

Reset by subtraction has no exact TALON equivalent, although TALON LIF and IF have reset_mode='subtract'.
snnTorch subtracts with a delay, after the next step's decay: ``mem = beta*mem + x - spk_prev*threshold``.
TALON subtracts at the spike, so the subtracted threshold decays with the membrane:
``v = beta*(v - spk_prev*v_threshold) + ...``. Writing snnTorch's update in TALON's form needs a subtraction
of threshold/beta while firing at threshold: two values where TALON has one. With beta = 1 (a TALON IF)
the forms agree in real arithmetic, but the threshold moved one float32 step up for ``>`` would be
subtracted too, and the additions round in another order, so spikes are not guaranteed identical either.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import numpy as np
import torch
from torch import nn

from converters.errors import ConversionError
from converters.nir.common import inclusive_threshold
from onnx_ops.neuron_kernels import lif_coefficients

from .modules import LIFModule, exporting

_TAU_SEARCH = (0, 1, -1, 2, -2, 3, -3)  # float32 steps around 1/(1-beta) tried for an exact beta


def _array(value: Any) -> np.ndarray:
    return np.atleast_1d(torch.as_tensor(value).detach().cpu().to(torch.float32).numpy())


def _tau_for_beta(beta: np.ndarray) -> np.ndarray:
    """float32 tau whose TALON decay 1 - 1/tau (lif_coefficients) equals beta exactly where one exists nearby."""
    guess = (1.0 / (1.0 - beta.astype(np.float64))).astype(np.float32)
    bits = guess.view(np.int32)
    best, found = guess.copy(), np.zeros(beta.shape, bool)
    for step in _TAU_SEARCH:
        tau = (bits + step).view(np.float32)
        exact = lif_coefficients(torch.from_numpy(tau))[0].numpy() == beta
        best = np.where(exact & ~found, tau, best)
        found |= exact
    return best


def leaky_parameters(module: nn.Module, name: str = "") -> dict[str, np.ndarray]:
    """TALON LIF parameters (tau, r, v_leak, v_threshold) reproducing an snntorch.Leaky's spikes exactly.

    Raises ConversionError naming the module when its behaviour has no TALON LIF equivalent.
    """
    where = f"snntorch.Leaky {name!r}" if name else "snntorch.Leaky"

    def refuse(reason: str) -> ConversionError:
        return ConversionError(f"{where}: {reason}")

    if module.reset_mechanism == "subtract":
        raise refuse("resets by subtraction (reset_mechanism='subtract', snnTorch's default) after the next "
                     "step's decay (mem = beta*mem + x - spk_prev*threshold); TALON's reset_mode='subtract' "
                     "subtracts at the spike, before the decay, so its spikes differ unless the subtracted "
                     "amount were threshold/beta. Build the neuron with reset_mechanism='zero'")
    if module.reset_mechanism != "zero":
        raise refuse(f"reset_mechanism={module.reset_mechanism!r} has no TALON equivalent (TALON LIF resets to zero)")
    if module.inhibition or module.state_quant:
        raise refuse("inhibition and state_quant have no TALON equivalent")
    if not torch.all(torch.as_tensor(module.graded_spikes_factor) == 1):
        raise refuse("graded_spikes_factor != 1 has no TALON LIF equivalent (its spikes are 0/1)")
    beta = np.clip(_array(module.beta), 0, 1)  # snnTorch clamps beta to [0, 1] in every step
    if np.any(beta == 1):
        raise refuse("beta = 1 (no leak) has no TALON LIF equivalent (1 - beta scales its input)")
    threshold = _array(module.threshold)
    if not module.reset_delay and np.any(threshold < 0):
        raise refuse("reset_delay=False with a negative threshold resets differently from TALON LIF")
    shape = np.broadcast_shapes(beta.shape, threshold.shape)
    tau = _tau_for_beta(np.broadcast_to(beta, shape).astype(np.float32))
    one_minus_beta = lif_coefficients(torch.from_numpy(tau))[1].numpy()
    return {
        "tau": tau,
        "r": (1.0 / one_minus_beta.astype(np.float64)).astype(np.float32),
        "v_leak": np.zeros(shape, np.float32),
        "v_threshold": inclusive_threshold(np.broadcast_to(threshold, shape)),
    }


class SnnTorchLeakyLIF(LIFModule):
    """TALON LIFModule with snntorch.Leaky's call convention: ``spk = lif(x)`` with init_hidden (``spk, mem``
    with output=True), else ``spk, mem = lif(x, mem)``; a mem of another shape than x (snnTorch's
    ``init_leaky()``) is rest."""

    def __init__(self, tau: Any, r: Any, v_leak: Any, v_threshold: Any, init_hidden: bool, output: bool):
        super().__init__(tau, r, v_leak, v_threshold)
        self.init_hidden, self.output = bool(init_hidden), bool(output)
        self.mem: torch.Tensor | None = None

    def reset_mem(self) -> None:
        """Forget the hidden membrane (init_hidden): the next step starts at rest."""
        self.mem = None

    def forward(self, x: torch.Tensor, mem: torch.Tensor | None = None):
        if not self.init_hidden:
            return super().forward(x, mem if mem is not None and mem.shape == x.shape else None)
        hidden = self.mem if self.mem is not None and self.mem.shape == x.shape else None
        spk, v = super().forward(x, None if exporting() else hidden)
        if not exporting():
            self.mem = v
        return (spk, v) if self.output else spk


def _snntorch() -> Any:
    """The snntorch module when the user's program imported it (never imported here), else None."""
    return sys.modules.get("snntorch")


def replace_snntorch_modules(model: nn.Module) -> nn.Module:
    """`model` itself when it holds no snnTorch neuron; else a deep copy with each snntorch.Leaky replaced by a
    SnnTorchLeakyLIF (exact, see the module docstring). Other snnTorch neurons raise ConversionError."""
    snn = _snntorch()
    if snn is None or not any(isinstance(m, snn.SpikingNeuron) for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        if not isinstance(module, snn.SpikingNeuron):
            continue
        if type(module) is not snn.Leaky:
            raise ConversionError(
                f"snntorch.{type(module).__name__} {name!r} has no TALON equivalent: only snntorch.Leaky with "
                "reset_mechanism='zero' maps exactly (Synaptic and RLeaky reset by discarding the next step's "
                "whole update, input included)"
            )
        lif = SnnTorchLeakyLIF(**leaky_parameters(module, name), init_hidden=module.init_hidden,
                               output=module.output)
        if not name:
            return lif.train(module.training)
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, lif.train(module.training))
    return model
