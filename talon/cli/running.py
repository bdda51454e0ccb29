"""Running a graph over T timesteps on a backend, per-layer spike statistics, and output comparisons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from talon import ir

from .files import CliError

BACKENDS = ("torch", "onnxruntime")
PROBE_SUFFIX = "__spikes"

Arrays = dict[str, np.ndarray]
Step = Callable[[Arrays, Any], tuple[Arrays, Any]]


def with_spike_probes(graph: ir.Graph) -> tuple[ir.Graph, dict[str, str]]:
    """A copy of the graph with an extra Output after every stateful node, so both backends report its spikes.

    Returns the probed graph and a map from probe output name to the layer it observes.
    """
    shapes = graph.infer_shapes()
    nodes, edges, probes = dict(graph.nodes), list(graph.edges), {}
    for name, node in graph.nodes.items():
        if node.stateful:
            probe = name + PROBE_SUFFIX
            while probe in nodes:
                probe += "_"
            nodes[probe] = ir.Output(np.array(shapes[name]))
            edges.append((name, probe))
            probes[probe] = name
    return ir.Graph(nodes, edges, graph.metadata, allow_cycles=graph.allow_cycles), probes


def _numpy_outputs(out: Any, names: list[str]) -> Arrays:
    """A torch executor's output (one tensor or a dict) as numpy arrays keyed by output name."""
    if not isinstance(out, Mapping):
        out = {names[0]: out}
    return {k: v.detach().cpu().numpy() for k, v in out.items()}


def torch_step(graph: ir.Graph) -> Step:
    """One timestep of the graph in torch (eval mode, no autograd); a cyclic graph runs one internal step per call."""
    import torch

    from talon import bridge

    if graph.is_cyclic:
        cyclic = bridge.CyclicGraphExecutor.from_graph(graph, timesteps=1, return_state=True)

        def executor(x: Any, state: Any) -> tuple[Any, Any]:
            outputs, state = cyclic(x, state)
            return outputs[0], state
    else:
        executor = bridge.ir_to_torch(graph, return_state=True)

    def step(inputs: Arrays, state: Any) -> tuple[Arrays, Any]:
        with torch.no_grad():
            out, state = executor({k: torch.from_numpy(v) for k, v in inputs.items()}, state)
        return _numpy_outputs(out, graph.outputs), state

    return step


def onnxruntime_step(model: Any, input_names: list[str], output_names: list[str]) -> Step:
    """One timestep of an ONNX model or path on onnxruntime; its inputs and outputs take the IR's names, in order."""
    from onnx_ops import OrtExecutor

    executor = OrtExecutor(model, return_state=True)
    to_onnx = dict(zip(input_names, executor.input_names))

    def step(inputs: Arrays, state: Any) -> tuple[Arrays, Any]:
        out, state = executor({to_onnx[k]: v for k, v in inputs.items()}, state)
        values = [out[n] for n in executor.output_names] if isinstance(out, Mapping) else [out]
        return dict(zip(output_names, values)), state

    return step


def backend_step(graph: ir.Graph, backend: str) -> Step:
    """The timestep function of a backend by name."""
    if backend == "torch":
        return torch_step(graph)
    if backend == "onnxruntime":
        from converters import ir_to_onnx

        return onnxruntime_step(ir_to_onnx(graph), graph.inputs, graph.outputs)
    raise CliError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def run_steps(step: Step, inputs: Arrays, advance: Callable[[], None] = lambda: None) -> Arrays:
    """Run T timesteps (inputs are (T, B, ...)) carrying the state; outputs stacked as (T, B, ...)."""
    steps = next(iter(inputs.values())).shape[0]
    state: Any = {}
    collected: dict[str, list[np.ndarray]] = {}
    for t in range(steps):
        out, state = step({k: np.ascontiguousarray(v[t]) for k, v in inputs.items()}, state)
        for name, value in out.items():
            collected.setdefault(name, []).append(value)
        advance()
    return {name: np.stack(values) for name, values in collected.items()}


def is_binary(values: np.ndarray) -> bool:
    """True when every value is 0 or 1: the array holds spikes."""
    return bool(np.isin(values, (0.0, 1.0)).all())


@dataclass
class LayerSpikes:
    """Spike count and rate of one stateful layer over a run (None when its output is not spikes, e.g. LI)."""

    layer: str
    neurons: int
    spikes: int | None
    rate: float | None


def spike_stats(outputs: Arrays, probes: Mapping[str, str]) -> list[LayerSpikes]:
    """Per-layer spike counts and rates (spikes per neuron per timestep per batch item)."""
    stats = []
    for probe, layer in probes.items():
        trains = outputs[probe]
        neurons = int(np.prod(trains.shape[2:], dtype=np.int64))
        if not is_binary(trains):
            stats.append(LayerSpikes(layer, neurons, None, None))
            continue
        total = int(np.count_nonzero(trains))
        stats.append(LayerSpikes(layer, neurons, total, total / trains.size if trains.size else 0.0))
    return stats


@dataclass
class Comparison:
    """How one output agrees between two runs."""

    output: str
    max_diff: float
    spike_agreement: float | None  # fraction of equal values when both runs output spikes, else None

    def ok(self, atol: float) -> bool:
        """True when values agree within atol and every spike agrees."""
        return self.max_diff <= atol and self.spike_agreement in (None, 1.0)


def compare(a: Arrays, b: Arrays, names: Iterable[str]) -> list[Comparison]:
    """Max absolute difference, and spike agreement where both runs output spikes, for each named output."""
    result = []
    for name in names:
        x, y = a[name], b[name]
        if x.shape != y.shape:
            raise CliError(f"output {name!r} has shape {x.shape} on one backend and {y.shape} on the other")
        diff = float(np.max(np.abs(x.astype(np.float64) - y))) if x.size else 0.0
        agreement = float(np.mean(x == y)) if x.size and is_binary(x) and is_binary(y) else None
        result.append(Comparison(name, diff, agreement))
    return result
