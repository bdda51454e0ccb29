"""TALON IR to a NIR graph (or .nir file), the inverse of `importer` for the timestep `dt`.

Time constants become tau*dt seconds, IF/Integrator rates r/dt, inclusive thresholds NIR's strict
ones (one float32 step lower, so behaviour is unchanged in float32). Spiking neurons reset to 0, which
NIR's v_reset defaults to: files leave v_reset out when it is zero, so that readers older than nir 1.0.6
(which have no v_reset field) read them. `dt` defaults to the one a NIR import kept in the graph's
metadata ("nir.dt"). What NIR has no field for (SpikingAffine's quantisation, AvgPool2d's count_include_pad
where padding makes no difference) is kept under the node metadata key "talon", so nir_to_ir restores
it. Primitives NIR has no node for are listed together in one error.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Any, Callable

import h5py

import numpy as np

from talon import ir
from talon.ir._atomic import atomic_file
from talon.ir.primitives.base import numel

from talon.errors import require

from ..errors import ConversionError
from .common import DT_KEY, NIRConversionWarning, check_dt, load_nir, strict_threshold, to_seconds
from .importer import TALON_KEY


def _zeros(node: ir.Node) -> np.ndarray:
    """v_reset of a spiking neuron: TALON resets to zero."""
    return np.zeros(node.neuron_shape, dtype=np.float32)


def _lif(nir: Any, node: ir.LIF, shape: tuple, dt: float) -> Any:
    return nir.LIF(tau=to_seconds(node.tau, dt), r=node.r, v_leak=node.v_leak,
                   v_threshold=strict_threshold(node.v_threshold), v_reset=_zeros(node))


def _cuba_lif(nir: Any, node: ir.CubaLIF, shape: tuple, dt: float) -> Any:
    return nir.CubaLIF(tau_syn=to_seconds(node.tau_syn, dt), tau_mem=to_seconds(node.tau_mem, dt), r=node.r,
                       v_leak=node.v_leak, v_threshold=strict_threshold(node.v_threshold), v_reset=_zeros(node),
                       w_in=node.w_in)


def _kept(node: ir.Node) -> dict:
    """What NIR has no field for, kept in the NIR node's metadata so that nir_to_ir restores the exact node."""
    if getattr(node, "reset_mode", "zero") != "zero":
        return {"reset_mode": node.reset_mode}
    if isinstance(node, ir.SpikingAffine):
        return {"type": "SpikingAffine", "spike_mode": node.spike_mode, "weight_bits": node.weight_bits,
                "accumulator_bits": node.accumulator_bits}
    if isinstance(node, ir.AvgPool2d) and not node.count_include_pad:
        return {"count_include_pad": False}  # same result without padding (checked by _why_not)
    return {}


def _input_shaped(node: ir.Node, shape: tuple) -> tuple[ir.Node, dict]:
    """The node with its parameter arrays in the input's shape (NIR types a neuron by its parameters' shape),
    and the original parameter shape to keep when it differed (flat after a conv, or broadcast)."""
    if not getattr(node, "param_names", ()) or node.neuron_shape == shape:
        return node, {}
    fields = {}
    for field in node.param_names:
        value = np.asarray(getattr(node, field))
        fields[field] = (value.reshape(shape) if value.size == numel(shape) else np.broadcast_to(value, shape)).copy()
    return type(node)(**{**node.params(), **fields}), {"shape": list(node.neuron_shape)}


def _conv(nir: Any, node: ir.Node, shape: tuple, dt: float) -> Any:
    if isinstance(node, ir.Conv1d):
        return nir.Conv1d(input_shape=int(shape[1]), weight=node.weight, stride=node.stride[0],
                          padding=node.padding[0], dilation=node.dilation[0], groups=node.groups, bias=node.bias)
    return nir.Conv2d(input_shape=tuple(shape[1:]), weight=node.weight, stride=node.stride, padding=node.padding,
                      dilation=node.dilation, groups=node.groups, bias=node.bias)


def _pool(nir: Any, node: ir.Node, shape: tuple, dt: float) -> Any:
    cls = nir.SumPool2d if isinstance(node, ir.SumPool2d) else nir.AvgPool2d
    return cls(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride), padding=np.array(node.padding))


# TALON primitive class name -> converter(nir module, node, input shape, dt) returning the NIR node.
CONVERTERS: dict[str, Callable[[Any, Any, tuple, float], Any]] = {
    "Input": lambda nir, node, shape, dt: nir.Input(input_type=np.array(node.shape)),
    "Output": lambda nir, node, shape, dt: nir.Output(output_type=np.array(node.shape)),
    "Affine": lambda nir, node, shape, dt: nir.Affine(weight=node.weight, bias=node.bias),
    "SpikingAffine": lambda nir, node, shape, dt: nir.Affine(weight=node.weight, bias=node.bias),
    "Conv1d": _conv,
    "Conv2d": _conv,
    "AvgPool2d": _pool,
    "SumPool2d": _pool,
    "Flatten": lambda nir, node, shape, dt: nir.Flatten(
        input_type={"input": np.array(shape)}, start_dim=node.start_dim, end_dim=node.end_dim
    ),
    "LIF": _lif,
    "IF": lambda nir, node, shape, dt: nir.IF(
        r=np.asarray(node.r, dtype=np.float64) / dt, v_threshold=strict_threshold(node.v_threshold),
        v_reset=_zeros(node),
    ),
    "LI": lambda nir, node, shape, dt: nir.LI(tau=to_seconds(node.tau, dt), r=node.r, v_leak=node.v_leak),
    "Integrator": lambda nir, node, shape, dt: nir.I(r=np.asarray(node.r, dtype=np.float64) / dt),
    "CubaLIF": _cuba_lif,
    "Threshold": lambda nir, node, shape, dt: nir.Threshold(threshold=strict_threshold(node.threshold)),
    "Scale": lambda nir, node, shape, dt: nir.Scale(scale=node.scale),
}


def _why_not(node: ir.Node, shape: tuple) -> str | None:
    """Why a node of a supported type still has no NIR equivalent for this input shape, or None."""
    if isinstance(node, ir.Affine) and (not shape or any(d != 1 for d in shape[:-1])):
        return f"input shape {shape}: NIR's Affine takes vectors (leading dims of 1 allowed)"
    if isinstance(node, (ir.AvgPool2d, ir.SumPool2d)) and getattr(node, "ceil_mode", False):
        return "ceil_mode=True (NIR pools floor their output size)"
    if isinstance(node, ir.AvgPool2d) and not node.count_include_pad and any(node.padding):
        return "count_include_pad=False with padding (NIR averages count the padding)"
    return None


def _reset_warning(graph: ir.Graph, strict: bool) -> None:
    """NIR has no reset mode (its neurons reset to v_reset): subtract-reset neurons warn, or raise with strict."""
    subtract = [name for name, node in graph.nodes.items() if getattr(node, "reset_mode", "zero") == "subtract"]
    if not subtract:
        return
    text = (f"node(s) {subtract} reset by subtraction, which NIR cannot express: other NIR tools will read them as "
            "resetting to v_reset = 0 (nir_to_ir restores the mode from the node metadata key 'talon')")
    if strict:
        raise ConversionError(f"{text}; strict=True refuses such conversions")
    warnings.warn(text, NIRConversionWarning, stacklevel=3)


def ir_to_nir(graph: ir.Graph, *, dt: float | None = None, strict: bool = False) -> Any:
    """A nir.NIRGraph equivalent to `graph` when simulated with timestep `dt` (seconds per TALON step; by default
    the dt a NIR import kept in the graph's metadata).

    Subtract-reset neurons (no NIR field) warn with NIRConversionWarning, or raise ConversionError with strict."""
    require(graph, ir.Graph, "ir_to_nir: graph", ConversionError)
    nir = load_nir()
    dt = check_dt(graph.metadata.get(DT_KEY) if dt is None else dt)
    _reset_warning(graph, strict)
    shapes = graph.infer_shapes()
    inputs = {n: tuple(shapes[graph.predecessors(n)[0]]) if graph.predecessors(n) else () for n in graph.nodes}
    problems = [
        f"{name!r} ({type(node).__name__}): " + (_why_not(node, inputs[name]) or "no NIR node type")
        for name, node in graph.nodes.items()
        if type(node).__name__ not in CONVERTERS or _why_not(node, inputs[name])
    ]
    if problems:
        raise ConversionError(
            "TALON IR node(s) that NIR cannot express:\n  - " + "\n  - ".join(problems)
            + f"\nNIR expresses: {sorted(CONVERTERS)}"
        )
    nodes = {}
    for name, node in graph.nodes.items():
        shaped, kept = _input_shaped(node, inputs[name])
        nodes[name] = CONVERTERS[type(node).__name__](nir, shaped, inputs[name], dt)
        kept.update(_kept(node))
        nodes[name].metadata = {**node.metadata, **({TALON_KEY: kept} if kept else {})}
    metadata = {k: v for k, v in graph.metadata.items() if k != DT_KEY}
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=metadata, type_check=False)


def save_nir(graph: ir.Graph, path: str | os.PathLike, *, dt: float | None = None, strict: bool = False) -> None:
    """Write `graph` as a .nir file (HDF5) for timestep `dt` (default: the graph's metadata["nir.dt"]), atomically
    (a failed write leaves no partial file). Zero v_reset datasets are left out (see the module docstring)."""
    nir, nir_graph = load_nir(), ir_to_nir(graph, dt=dt, strict=strict)  # converted before anything touches the disk
    buffer = io.BytesIO()
    nir.write(buffer, nir_graph)
    with h5py.File(buffer, "r+") as h5:
        _drop_zero_resets(h5["node"])
    with atomic_file(path) as f:
        f.write(buffer.getvalue())


def _drop_zero_resets(group: h5py.Group) -> None:
    """Delete every all-zero v_reset dataset under a NIR node group (nested graphs included)."""
    reset = group.get("v_reset")
    if isinstance(reset, h5py.Dataset) and not np.any(reset[()]):
        del group["v_reset"]
    for child in group.values():
        if isinstance(child, h5py.Group):
            _drop_zero_resets(child)
