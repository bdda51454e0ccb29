"""What `talon analyze` counts: per-node costs read from the graph, and spikes and synaptic operations measured in a run.

Definitions (docs/cli-json.md): parameters are array elements; neurons are the output elements of stateful
nodes; synapses are the weight entries of the dense and convolution layers; MACs per step are the
multiply-accumulates of one timestep of the dense computation (batch 1); weight memory holds every parameter
array at its declared precision (`weight_bits` for SpikingAffine, 32 bits otherwise); neuron state memory is
neurons x state items (v, and i for CubaLIF) x 4 bytes. Synaptic operations follow NeuroBench: each non-zero
input element of a weight layer (a spike, when the input is spikes) times the number of synapses it drives.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from talon import ir
from talon.ir.primitives.base import numel

from .report import node_rows
from .running import Arrays, is_binary

FLOAT_BITS = 32
STATE_ITEM_BYTES = 4  # neuron state runs in float32


@dataclass
class NodeCost:
    """The static counts of one node."""

    name: str
    type: str
    input_shapes: list[list[int]]
    output_shapes: list[list[int]]
    params: int
    neurons: int
    synapses: int
    macs: int
    weight_bits: int
    weight_bytes: int
    state_bytes: int


@dataclass
class LayerActivity:
    """What one node did in a measured run (per step = per timestep and per batch item)."""

    name: str
    type: str
    neurons: int = 0
    spikes: int | None = None  # None when the node's output is not spikes
    spikes_per_step: float | None = None
    firing_rate: float | None = None
    synops: int | None = None  # weight layers: non-zero inputs x synapses each drives
    synops_per_step: float | None = None
    input_is_spikes: bool | None = None


def _weights(node: ir.Node) -> list[np.ndarray]:
    """The weight arrays whose entries are synapses."""
    if isinstance(node, (ir.Affine, ir.Conv1d, ir.Conv2d)):
        return [node.weight]
    if isinstance(node, ir.SepConv2d):
        return [node.depthwise_weight, node.pointwise_weight]
    return []


def _macs(node: ir.Node, out_shape: list[int] | None) -> int:
    """Multiply-accumulates of one timestep for batch 1: one per weight entry used per output element."""
    if out_shape is None:
        return 0
    if isinstance(node, ir.Affine):
        return numel(out_shape) * int(node.weight.shape[1])
    if isinstance(node, (ir.Conv1d, ir.Conv2d)):
        return numel(out_shape) * numel(node.weight.shape[1:])
    if isinstance(node, ir.SepConv2d):
        channels, kernel = node.depthwise_weight.shape[0], node.depthwise_weight.shape[2:]
        spatial = numel(out_shape[1:])
        return channels * spatial * numel(kernel) + numel(out_shape) * int(channels)
    return 0


def declared_bits(node: ir.Node) -> int:
    """Bits per stored parameter element: SpikingAffine's weight_bits, float32 otherwise."""
    return node.weight_bits if isinstance(node, ir.SpikingAffine) else FLOAT_BITS


def _state_items(node: ir.Node) -> int:
    """State items (v, i, ...) of a stateful node, as its talon op spec declares them (1 without a spec)."""
    from onnx_ops import op_spec

    if not node.stateful:
        return 0
    spec = op_spec(type(node).__name__)
    return len(spec.state) if spec is not None and spec.state else 1


def node_costs(graph: ir.Graph) -> list[NodeCost]:
    """One NodeCost per node, in node order."""
    costs = []
    for row in node_rows(graph):
        node = graph.nodes[row.name]
        out = row.output_shapes[0] if row.output_shapes else None
        neurons = 0
        if node.stateful:
            neurons = numel(out) if out is not None else numel(node.neuron_shape)
        bits = declared_bits(node)
        costs.append(NodeCost(
            name=row.name, type=row.type, input_shapes=row.input_shapes, output_shapes=row.output_shapes,
            params=row.params, neurons=neurons, synapses=sum(int(w.size) for w in _weights(node)),
            macs=_macs(node, out), weight_bits=bits, weight_bytes=math.ceil(row.params * bits / 8),
            state_bytes=neurons * _state_items(node) * STATE_ITEM_BYTES,
        ))
    return costs


def static_report(graph: ir.Graph) -> dict[str, Any]:
    """Per-node costs, their totals and the count of each op type, as a JSON-safe dict."""
    costs = node_costs(graph)
    totals = {key: sum(getattr(c, key) for c in costs)
              for key in ("params", "neurons", "synapses", "macs", "weight_bytes", "state_bytes")}
    return {"nodes": [asdict(c) for c in costs], "totals": {"nodes": len(costs), "edges": len(graph.edges), **totals},
            "op_types": dict(sorted(Counter(c.type for c in costs).items()))}


# -- a measured run -----------------------------------------------------------------------------------
def fanout(node: ir.Node, in_shape: tuple[int, ...]) -> np.ndarray | None:
    """For each input element of a weight layer, the number of synapses (weight uses) it drives; None otherwise.

    Computed exactly as the gradient of the summed layer output with all weights set to one (borders,
    stride and groups included); for SepConv2d the depthwise taps the spikes reach directly."""
    import torch
    import torch.nn.functional as F

    if isinstance(node, ir.Affine):
        return np.full(in_shape, node.weight.shape[0], dtype=np.int64)
    if isinstance(node, (ir.Conv1d, ir.Conv2d)):
        conv, weight, groups = (F.conv1d if isinstance(node, ir.Conv1d) else F.conv2d), node.weight, node.groups
    elif isinstance(node, ir.SepConv2d):
        conv, weight, groups = F.conv2d, node.depthwise_weight, node.depthwise_weight.shape[0]
    else:
        return None
    x = torch.ones((1, *in_shape), dtype=torch.float64, requires_grad=True)
    ones = torch.ones(weight.shape, dtype=torch.float64)
    conv(x, ones, None, tuple(node.stride), tuple(node.padding), tuple(node.dilation), int(groups)).sum().backward()
    return np.rint(x.grad[0].numpy()).astype(np.int64)


def node_inputs(graph: ir.Graph, values: Arrays, name: str) -> np.ndarray | None:
    """The summed input (T, B, ...) of a node from its predecessors' recorded outputs; a feedback edge delivers the
    previous timestep's value (zero first). None when a predecessor was not recorded."""
    back = set(graph.back_edges())
    total = None
    for src in graph.predecessors(name):
        if src not in values:
            return None
        value = values[src].astype(np.float64)
        if (src, name) in back:
            value = np.concatenate([np.zeros_like(value[:1]), value[:-1]])
        total = value if total is None else total + value
    return total


def activity(graph: ir.Graph, values: Arrays) -> list[LayerActivity]:
    """Spikes of the stateful nodes and synaptic operations of the weight layers, from every node's output
    over a run (values[name] is (T, B, ...))."""
    result = []
    for name, node in graph.nodes.items():
        entry = LayerActivity(name, type(node).__name__)
        if node.stateful and name in values:
            trains = values[name]
            entry.neurons = numel(trains.shape[2:])
            steps = trains.shape[0] * trains.shape[1]
            if is_binary(trains):
                entry.spikes = int(np.count_nonzero(trains))
                entry.spikes_per_step = entry.spikes / steps if steps else 0.0
                entry.firing_rate = entry.spikes / trains.size if trains.size else 0.0
        x = node_inputs(graph, values, name) if _weights(node) else None
        if x is not None:
            drives = fanout(node, tuple(x.shape[2:]))
            entry.synops = int(((x != 0) * drives).sum())
            entry.synops_per_step = entry.synops / (x.shape[0] * x.shape[1])
            entry.input_is_spikes = is_binary(x)
        if node.stateful or x is not None:
            result.append(entry)
    return result


def run_report(graph: ir.Graph, values: Arrays) -> dict[str, Any]:
    """The measured part of `talon analyze --run` as a JSON-safe dict."""
    layers = activity(graph, values)
    steps, batch = next(iter(values.values())).shape[:2]
    spikes = [a.spikes for a in layers if a.spikes is not None]
    synops = [a.synops for a in layers if a.synops is not None]
    neurons = sum(a.neurons for a in layers if a.spikes is not None)
    total_spikes = sum(spikes)
    return {
        "steps": int(steps), "batch": int(batch), "layers": [asdict(a) for a in layers],
        "totals": {
            "spikes": total_spikes, "spikes_per_step": total_spikes / (steps * batch),
            "firing_rate": total_spikes / (neurons * steps * batch) if neurons else None,
            "synops": sum(synops), "synops_per_step": sum(synops) / (steps * batch),
        },
    }
