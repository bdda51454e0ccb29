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


def with_probes(graph: ir.Graph, observed: Callable[[ir.Node], bool]) -> tuple[ir.Graph, dict[str, str]]:
    """A copy of the graph with an extra Output after every observed node, so both backends report its output.

    Output nodes and multi-output nodes are never probed. Returns the probed graph and a map from probe output
    name to the node it observes."""
    shapes = graph.infer_shapes()
    nodes, edges, probes = dict(graph.nodes), list(graph.edges), {}
    for name, node in graph.nodes.items():
        if observed(node) and not isinstance(node, ir.Output) and not node.multi_output:
            probe = name + PROBE_SUFFIX
            while probe in nodes:
                probe += "_"
            nodes[probe] = ir.Output(np.array(shapes[name]))
            edges.append((name, probe))
            probes[probe] = name
    return ir.Graph(nodes, edges, graph.metadata, allow_cycles=graph.allow_cycles), probes


def with_spike_probes(graph: ir.Graph) -> tuple[ir.Graph, dict[str, str]]:
    """with_probes on every stateful node: the layers whose spikes `run` reports."""
    return with_probes(graph, lambda node: node.stateful)


def probed_values(outputs: Arrays, probes: Mapping[str, str]) -> Arrays:
    """Each observed node's recorded output (T, B, ...), by node name."""
    return {layer: outputs[probe] for probe, layer in probes.items()}


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


def differs(x: np.ndarray, y: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """Where two runs' values differ beyond |x - y| <= atol + rtol * |y| (NaN equal to NaN)."""
    return ~np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=True)


@dataclass
class Comparison:
    """How one output agrees between two runs."""

    output: str
    max_diff: float
    spike_agreement: float | None  # fraction of equal values when both runs output spikes, else None
    ok: bool  # values within tolerance and every spike equal


def compare(a: Arrays, b: Arrays, names: Iterable[str], atol: float, rtol: float = 0.0,
            b_names: Iterable[str] | None = None) -> list[Comparison]:
    """Max absolute difference, spike agreement where both runs output spikes, and whether they agree, per output
    (output i of `a` against output i of `b_names`, by default the same name)."""
    names = list(names)
    result = []
    for name, other in zip(names, names if b_names is None else b_names):
        x, y = a[name], b[other]
        if x.shape != y.shape:
            raise CliError(f"output {name!r} has shape {x.shape} in one run and {y.shape} in the other")
        diff = float(np.max(np.abs(x.astype(np.float64) - y))) if x.size else 0.0
        spikes = bool(x.size) and is_binary(x) and is_binary(y)
        agreement = float(np.mean(x == y)) if spikes else None
        ok = not differs(x, y, atol, rtol).any() and agreement in (None, 1.0)
        result.append(Comparison(name if b_names is None or name == other else f"{name} / {other}", diff,
                                 agreement, ok))
    return result


@dataclass
class Divergence:
    """Where two runs first part: the node, timestep, batch item and neuron (index into the node's output)."""

    layer: str
    timestep: int
    batch: int
    neuron: list[int]
    a: float
    b: float


def first_divergence(graph: ir.Graph, a: Arrays, b: Arrays, atol: float, rtol: float = 0.0) -> Divergence | None:
    """The earliest timestep at which some node's output differs, and there the first node in topological order
    and its first differing element; None when every recorded node agrees."""
    found: Divergence | None = None
    for name in graph.topological_order():
        if name not in a or name not in b or a[name].shape != b[name].shape:
            continue
        bad = differs(a[name], b[name], atol, rtol)
        if not bad.any():
            continue
        where = np.unravel_index(int(np.argmax(bad.reshape(-1))), bad.shape)
        if found is None or where[0] < found.timestep:
            found = Divergence(name, int(where[0]), int(where[1]), [int(i) for i in where[2:]],
                               float(a[name][where]), float(b[name][where]))
    return found
