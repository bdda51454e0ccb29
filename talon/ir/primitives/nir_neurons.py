"""Primitives for NIR's node set beyond LIF and IF: LI, Integrator, CubaLIF, Threshold, Scale and SumPool2d.

All run with dt = 1 like LIF (docs/neurons.md): time constants are in timesteps, a spike is
``v >= v_threshold`` and a spiking neuron resets to zero. ``converters.nir`` converts NIR's
continuous-time parameters to these with the simulation's dt.
"""

from __future__ import annotations

import numpy as np

from .base import param, register_primitive
from .neurons import _Neuron
from .pooling import _Pool2d


class _Leaky(_Neuron):
    """Neurons whose time constants (the `tau*` fields) must be positive."""

    def validate(self) -> None:
        super().validate()
        for name in self.param_names:
            if name.startswith("tau") and not np.all(np.asarray(getattr(self, name), dtype=np.float64) > 0):
                raise self.fail(name, "must be positive everywhere")


class _Elementwise(_Neuron):
    """Stateless per-element maps whose parameter array must fit the input like a neuron's."""

    stateful = False


@register_primitive
class LI(_Leaky):
    """Leaky integrator: v = beta*v + (1-beta)*(v_leak + r*x), beta = 1 - 1/tau; outputs v (no spikes)."""

    tau: np.ndarray = param("array")
    r: np.ndarray = param("array")
    v_leak: np.ndarray = param("array")


@register_primitive
class Integrator(_Neuron):
    """Integrator (NIR's I): v = v + r*x; outputs v (no spikes, no leak)."""

    r: np.ndarray = param("array")


@register_primitive
class CubaLIF(_Leaky):
    """Current-based LIF; the synaptic current is updated first and drives the membrane in the same step.

    i = alpha*i + (1-alpha)*w_in*x, alpha = 1 - 1/tau_syn;
    v = beta*v + (1-beta)*(v_leak + r*i), beta = 1 - 1/tau_mem;
    spike at v >= v_threshold, then v resets to zero (i is not reset). State: (v, i).
    """

    tau_syn: np.ndarray = param("array")
    tau_mem: np.ndarray = param("array")
    r: np.ndarray = param("array")
    v_leak: np.ndarray = param("array")
    v_threshold: np.ndarray = param("array")
    w_in: np.ndarray = param("array")


@register_primitive
class Threshold(_Elementwise):
    """Heaviside step: 1.0 where x >= threshold, else 0.0 (stateless)."""

    threshold: np.ndarray = param("array")


@register_primitive
class Scale(_Elementwise):
    """Element-wise product y = x * scale."""

    scale: np.ndarray = param("array")


@register_primitive
class SumPool2d(_Pool2d):
    """2-D sum pooling (zero padding adds nothing); `stride` defaults to `kernel_size`."""

    kernel_size: tuple = param("ints", length=2)
    stride: tuple = param("ints", None, length=2)
    padding: tuple = param("ints", (0, 0), length=2)
    ceil_mode = False
