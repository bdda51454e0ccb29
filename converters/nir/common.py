"""What both NIR directions share: the lazy `nir` import, time and threshold conversions, and warnings.

Time: NIR is continuous time; TALON steps with dt = 1. Forward Euler with the simulation's `dt`
turns ``tau dv/dt = (v_leak - v) + r*I`` into ``v += (dt/tau) * (v_leak - v + r*I)``, which is
TALON's LIF with ``tau_talon = tau_nir / dt`` (r, v_leak unchanged), and ``dv/dt = r*I`` into
``v += (r*dt) * I``, TALON's IF/Integrator with ``r_talon = r_nir * dt``. The input I is held
constant over a step (the value of the step's input tensor).

Threshold: NIR fires when v > v_threshold, TALON when v >= v_threshold. In float32 (the precision
TALON neurons run in) ``v > t`` equals ``v >= t'`` for t' the smallest float32 above t, so the
exact conversion moves the threshold by one float32 step; ``exact_threshold=False`` keeps the
numbers and warns instead.
"""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np

from ..errors import ConversionError
from talon.errors import NIRConversionWarning  # noqa: F401  (re-exported)

NEURON_DTYPE = np.float32  # TALON neurons run in float32; converted neuron parameters are stored so
DT_KEY = "nir.dt"  # graph metadata: the dt a NIR file was imported with, which a later NIR export reuses
INSTALL_HINT = "NIR support needs the optional 'nir' package: pip install talon-ir-bridge[nir]"


def load_nir() -> ModuleType:
    """The `nir` package, imported on first use; ImportError with the install command when missing."""
    try:
        import nir
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return nir


def check_dt(dt: float | None) -> float:
    """The simulation timestep as a positive finite float; ConversionError naming dt otherwise."""
    if dt is None:
        raise ConversionError(
            "NIR stores no timestep: pass dt=<seconds per TALON step> (--dt on the command line; snnTorch's "
            "export_to_nir uses dt=1e-4); "
            f"graphs imported from NIR keep theirs in metadata[{DT_KEY!r}]"
        )
    if isinstance(dt, (bool, np.bool_)) or not isinstance(dt, (int, float, np.integer, np.floating)):
        raise ConversionError(f"dt must be a number of seconds, got {type(dt).__name__} {dt!r}")
    value = float(dt)
    if not np.isfinite(value) or value <= 0:
        raise ConversionError(f"dt must be a positive finite number of seconds, got {dt!r}")
    return value


def to_steps(tau, dt: float, name: str = "?", field: str = "tau") -> np.ndarray:
    """A NIR time constant (seconds) in TALON timesteps: tau / dt, computed in float64, stored float32.

    ConversionError naming the node and field when a constant is not finite in float32 or shorter than one
    step (forward Euler then gives decay factors below 0, so the membrane oscillates or diverges)."""
    steps = np.asarray(tau, dtype=np.float64) / dt
    with np.errstate(over="ignore"):
        stored = steps.astype(NEURON_DTYPE)
    if not np.all(np.isfinite(stored)) or np.any(stored < 1):
        worst = steps.reshape(-1)[np.argmin(np.where(np.isfinite(stored.reshape(-1)), stored.reshape(-1), -np.inf))]
        raise ConversionError(
            f"NIR node {name!r}: {field} / dt = {worst!r} steps; each time constant must be a finite number of at "
            f"least one step (dt={dt!r} s): pass a smaller dt or fix {field}")
    return stored


def to_seconds(tau, dt: float) -> np.ndarray:
    """A TALON time constant (timesteps) in seconds: tau * dt in float64 (float32 comes back exactly)."""
    return np.asarray(tau, dtype=np.float64) * dt


def inclusive_threshold(strict) -> np.ndarray:
    """The smallest float32 t with (v >= t) == (v > strict) for every float32 v."""
    strict = np.asarray(strict, dtype=np.float64)
    near = strict.astype(NEURON_DTYPE)
    return np.where(near > strict, near, np.nextafter(near, NEURON_DTYPE(np.inf))).astype(NEURON_DTYPE)


def strict_threshold(inclusive) -> np.ndarray:
    """The largest float32 t with (v > t) == (v >= inclusive) for every float32 v."""
    return np.nextafter(np.asarray(inclusive).astype(NEURON_DTYPE), NEURON_DTYPE(-np.inf))


def neuron_array(value) -> np.ndarray:
    """A neuron parameter as a float32 array (float64 NIR values are rounded as TALON's executor would)."""
    return np.asarray(value, dtype=NEURON_DTYPE)


def behaviour_change(name: str, kind: str, message: str, strict: bool) -> None:
    """Warn (or raise with strict) that node `name` of NIR type `kind` converts with a change of behaviour."""
    text = f"NIR node {name!r} ({kind}): {message}"
    if strict:
        raise ConversionError(f"{text} (strict=True refuses such conversions)")
    warnings.warn(text, NIRConversionWarning, stacklevel=4)
