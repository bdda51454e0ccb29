"""From a trained ANN (ReLU network) to a rate-coded spiking network in TALON IR (Rueckauer et al. 2017).

`ann_to_snn(model, calibration, timesteps=...)` returns an `ir.Graph` whose ReLUs are IF neurons; the
network's output at each step is the last layer's (non-spiking) output, and the prediction is the argmax of
its sum over the steps. The conversion report is kept in ``graph.metadata["ann_to_snn"]`` (it travels with
the graph through .t1c and ONNX) and `format_report` prints it.

Scales. Every tensor of the SNN carries the ANN's tensor divided by a scale: 1 for the input and the
output, lambda for the spikes of an IF layer (lambda is the ReLU's calibration activation at the chosen
percentile, so a neuron firing every step stands for lambda). A Conv or Affine layer rescales its weights
by s_in/s_out and its bias by 1/s_out, so that each IF neuron has v_threshold = 1 and r = 1. Where two
tensors of different scales meet (a residual addition of an identity shortcut, a concatenation), a Scale
node brings the shortcut to the scale of the layer after it.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch

from converters.errors import ConversionError

from .. import ir
from ..ir.graph import Graph
from ..ir.primitives.neurons import RESET_MODES
from .executor import GraphExecutor

REPORT_KEY = "ann_to_snn"
ENCODINGS = ("real", "rate")
MAX_POOL = ("spikes", "avg", "refuse")
LINEAR = (ir.Conv1d, ir.Conv2d, ir.Affine)  # weighted layers (SpikingAffine is an Affine)
NORMS = (ir.BatchNorm1d, ir.BatchNorm2d)
PASSING = (ir.AvgPool2d, ir.MaxPool2d, ir.Flatten, ir.Dropout, ir.Skip, ir.Concat, ir.Pad)  # commute with scaling
BATCH = 256  # calibration samples per executor call


def ann_to_snn(
    model: Any,
    calibration: Any,
    *,
    timesteps: int,
    reset_mode: str = "subtract",
    normalization: str = "percentile",
    percentile: float = 99.9,
    encoding: str = "real",
    seed: int = 0,
    max_pool: str = "spikes",
    labels: Any = None,
) -> Graph:
    """Convert a ReLU network to a spiking TALON IR graph of IF neurons, with a report in its metadata.

    model: an ir.Graph, an ONNX file path or ModelProto, or a torch module (exported by `to_ir` on one
    calibration sample). calibration: a batch of real inputs (numpy or torch, [N, *input shape]); labels:
    optional class indices [N] for accuracies in the report.

    - BatchNorm is folded into the Conv or Affine before it; a final Softmax is dropped (argmax unchanged).
    - Each ReLU becomes an IF neuron (v_threshold = 1, r = 1) with `reset_mode` 'subtract' (default: the
      residue above threshold carries to the next step, so rates approach the ReLU value) or 'zero'.
    - normalization: 'percentile' (default) scales each layer by the `percentile`-th percentile (99.9) of
      its ReLU activations over the calibration set, robust to rare outliers; 'max' by their maximum, which
      never saturates on the calibration data but fires sparsely when the maximum is an outlier.
    - Average pooling is kept (linear). max_pool: 'spikes' (default) keeps MaxPool on what reaches it -
      exact on real-valued currents (pool before the ReLU on a constant input), an OR of spikes after an IF
      neuron, which over-estimates the pooled rate; 'avg' replaces it by average pooling of the same window
      (a different ANN: check the report's agreement); 'refuse' refuses it.
    - Residual additions and concatenations: their inputs are brought to one scale (Scale nodes on
      shortcuts that carry spikes), see the module docstring.
    - encoding: 'real' (default) feeds the real input at every step; 'rate' feeds Bernoulli spikes with
      probability x (inputs in [0, 1]) drawn with `seed` (see `encode`). It is used for the report and
      recorded; the graph itself takes whatever is fed at each step.
    - timesteps: the steps simulated for the report (SNN-ANN agreement, firing rates).

    Anything else (other activations, normalisations that cannot be folded, neurons already spiking) is
    refused at once with a ConversionError listing every node.
    """
    _check_options(timesteps, reset_mode, normalization, percentile, encoding, max_pool)
    original = _load(model, calibration)
    x = _calibration(calibration, original)
    y = None if labels is None else np.asarray(labels).reshape(-1)
    if y is not None and len(y) != len(x):
        raise ConversionError(f"labels: {len(y)} labels for {len(x)} calibration samples")
    _refuse_unconvertible(original, max_pool)
    ann = _prepared(original, max_pool)
    relus = [n for n, node in ann.nodes.items() if isinstance(node, ir.ReLU)]
    activations = _run_probed(ann, relus, x)
    scales = {n: _layer_scale(activations[n], normalization, percentile) for n in relus}
    snn = _spiking(ann, scales, reset_mode)
    report = _report(original, snn, x, y, timesteps, encoding, seed, scales)
    report.update(reset_mode=reset_mode, normalization=normalization, percentile=float(percentile),
                  encoding=encoding, seed=int(seed), max_pool=max_pool, readout="argmax of the output summed over steps")
    return Graph(snn.nodes, snn.edges, metadata={**snn.metadata, REPORT_KEY: report})


def encode(x: Any, timesteps: int, encoding: str = "real", seed: int = 0) -> torch.Tensor:
    """Inputs [N, ...] as a [timesteps, N, ...] float32 sequence: the same real input at every step ('real'),
    or Bernoulli spikes of probability x ('rate', x in [0, 1], reproducible from `seed`)."""
    if encoding not in ENCODINGS:
        raise ConversionError(f"encoding must be one of {list(ENCODINGS)}, got {encoding!r}")
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(torch.float32)
    if encoding == "real":
        return x.unsqueeze(0).expand(timesteps, *x.shape)
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ConversionError(f"rate encoding needs inputs in [0, 1]; got values in [{float(x.min())}, "
                              f"{float(x.max())}]: scale the inputs, or use encoding='real'")
    gen = torch.Generator().manual_seed(int(seed))
    return torch.bernoulli(x.unsqueeze(0).expand(timesteps, *x.shape), generator=gen)


def fold_batch_norms(graph: Graph) -> Graph:
    """The graph with each BatchNorm that alone follows a Conv or Affine folded into it (computed in float64):
    w' = w * g, b' = (b - mean) * g + beta with g = weight / sqrt(running_var + eps)."""
    nodes, edges = dict(graph.nodes), list(graph.edges)
    for name, node in graph.nodes.items():
        if not isinstance(node, NORMS):
            continue
        (src,) = graph.predecessors(name)
        layer = nodes[src]
        gain = np.asarray(node.weight, np.float64) / np.sqrt(np.asarray(node.running_var, np.float64) + node.eps)
        shift = np.asarray(node.bias, np.float64) - np.asarray(node.running_mean, np.float64) * gain
        weight = np.asarray(layer.weight, np.float64) * gain.reshape(-1, *[1] * (layer.weight.ndim - 1))
        bias = np.asarray(layer.bias, np.float64) * gain + shift
        nodes[src] = _with(layer, weight=weight.astype(np.float32), bias=bias.astype(np.float32))
        edges = _bypass(edges, name)
        del nodes[name]
    return Graph(nodes, edges, metadata=dict(graph.metadata))


def format_report(report: dict) -> str:
    """The conversion report (``graph.metadata["ann_to_snn"]``) as text lines."""
    lines = [f"ANN -> SNN: {report['timesteps']} steps, reset_mode {report['reset_mode']}, "
             f"{report['normalization']} normalisation"
             + (f" ({report['percentile']})" if report["normalization"] == "percentile" else "")
             + f", {report['encoding']} input encoding, max pooling: {report['max_pool']}"]
    for key, label in (("ann_accuracy", "ANN accuracy"), ("snn_accuracy", "SNN accuracy")):
        if key in report:
            lines.append(f"{label} on the calibration set: {100 * report[key]:.2f}%")
    lines.append(f"SNN-ANN agreement (argmax) at T={report['timesteps']}: {100 * report['agreement']:.2f}% "
                 f"of {report['samples']} calibration samples")
    lines.append("layer: scale, firing rate (spikes per neuron per step)")
    for name, layer in report["layers"].items():
        lines.append(f"  {name}: {layer['scale']:.4g}, {layer['firing_rate']:.4f}")
    return "\n".join(lines)


# -- checks -------------------------------------------------------------------------------------------------
def _check_options(timesteps, reset_mode, normalization, percentile, encoding, max_pool) -> None:
    problems = []
    if isinstance(timesteps, bool) or not isinstance(timesteps, (int, np.integer)) or timesteps < 1:
        problems.append(f"timesteps must be a positive int, got {timesteps!r}")
    for name, value, choices in (("reset_mode", reset_mode, RESET_MODES),
                                 ("normalization", normalization, ("percentile", "max")),
                                 ("encoding", encoding, ENCODINGS), ("max_pool", max_pool, MAX_POOL)):
        if value not in choices:
            problems.append(f"{name} must be one of {list(choices)}, got {value!r}")
    if not isinstance(percentile, (int, float)) or not 0 < percentile <= 100:
        problems.append(f"percentile must be in (0, 100], got {percentile!r}")
    if problems:
        raise ConversionError("ann_to_snn: " + "; ".join(problems))


def _load(model: Any, calibration: Any) -> Graph:
    """The model as a TALON IR graph."""
    if isinstance(model, Graph):
        return model
    if isinstance(model, torch.nn.Module):
        from .export import to_ir

        sample = torch.as_tensor(np.asarray(calibration[:1]) if not isinstance(calibration, torch.Tensor)
                                 else calibration[:1]).to(torch.float32)
        return to_ir(model, sample)
    import onnx

    if isinstance(model, (str, os.PathLike, onnx.ModelProto)):
        from converters import onnx_to_ir

        return onnx_to_ir(model)
    raise ConversionError(f"model must be an ir.Graph, an ONNX path or ModelProto, or a torch module; "
                          f"got {type(model).__name__}")


def _calibration(calibration: Any, graph: Graph) -> np.ndarray:
    """The calibration batch as float32 numpy, checked against the graph's single input."""
    if isinstance(calibration, torch.Tensor):
        calibration = calibration.detach().cpu().numpy()
    x = np.asarray(calibration)
    if x.dtype.kind not in "biuf":
        raise ConversionError(f"calibration must be an array of real numbers, got dtype {x.dtype}")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ConversionError(f"ann_to_snn converts graphs with one Input and one Output, got inputs "
                              f"{graph.inputs} and outputs {graph.outputs}")
    shape = tuple(graph.nodes[graph.inputs[0]].shape)
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape or len(x) == 0:
        raise ConversionError(f"calibration must be shaped [N, {', '.join(map(str, shape))}] (N >= 1) for input "
                              f"{graph.inputs[0]!r}, got {list(x.shape)}")
    if not np.all(np.isfinite(x)):
        raise ConversionError("calibration holds NaN or infinite values")
    return x.astype(np.float32)


def _refuse_unconvertible(graph: Graph, max_pool: str) -> None:
    """ConversionError listing every node the conversion cannot handle."""
    problems = []
    if graph.is_cyclic:
        problems.append(f"the graph has cycles (closed by {graph.back_edges()}); ann_to_snn converts feed-forward "
                        "networks")
    for name, node in graph.nodes.items():
        why = _why_not(graph, name, node, max_pool)
        if why:
            problems.append(f"{name!r} ({type(node).__name__}): {why}")
    if problems:
        raise ConversionError("ann_to_snn cannot convert node(s):\n  - " + "\n  - ".join(problems))


def _why_not(graph: Graph, name: str, node: ir.Node, max_pool: str) -> str | None:
    if isinstance(node, (ir.Input, ir.Output, *LINEAR)):
        return None
    if isinstance(node, ir.ReLU):
        return "a leaky ReLU (negative_slope != 0) has no IF equivalent" if node.negative_slope else None
    if isinstance(node, NORMS):
        preds = graph.predecessors(name)
        if len(preds) == 1 and isinstance(graph.nodes[preds[0]], LINEAR) and graph.successors(preds[0]) == [name]:
            return None
        return "BatchNorm is folded only into a Conv or Affine whose output goes to it alone"
    if isinstance(node, ir.Softmax):
        succ = graph.successors(name)
        return None if len(succ) == 1 and isinstance(graph.nodes[succ[0]], ir.Output) else \
            "a Softmax is only dropped before the output (argmax unchanged); elsewhere it has no spiking equivalent"
    if isinstance(node, ir.MaxPool2d):
        if max_pool == "refuse":
            return "max pooling refused (max_pool='refuse')"
        if max_pool == "avg" and tuple(node.dilation) != (1, 1):
            return "max_pool='avg' replaces it by average pooling, which has no dilation"
        return None
    if isinstance(node, ir.Pad):
        return None if node.value == 0 else f"padding with {node.value} does not commute with the layer scales"
    if isinstance(node, PASSING):
        return None
    if node.stateful:
        return "the network already holds spiking neurons"
    return ("no spiking equivalent (ann_to_snn converts ReLU networks of Conv, Affine, BatchNorm, pooling, "
            "Flatten, Pad and residual sums)")


# -- graph edits --------------------------------------------------------------------------------------------
def _with(node: ir.Node, **fields: Any) -> ir.Node:
    """A copy of a node with some fields replaced (metadata kept)."""
    return type(node)(**{**node.params(), **fields}, metadata=dict(node.metadata))


def _bypass(edges: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    """Edges with single-input node `name` removed: its source feeds its destinations, in their places."""
    (src,) = [s for s, d in edges if d == name]
    return [(src if s == name else s, d) for s, d in edges if d != name]


def _prepared(graph: Graph, max_pool: str) -> Graph:
    """The ANN the SNN follows: BatchNorm folded, a final Softmax dropped, max pooling as `max_pool` says."""
    graph = fold_batch_norms(graph)
    nodes, edges = dict(graph.nodes), list(graph.edges)
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Softmax):
            edges = _bypass(edges, name)
            del nodes[name]
        elif isinstance(node, ir.MaxPool2d) and max_pool == "avg":
            nodes[name] = ir.AvgPool2d(kernel_size=node.kernel_size, stride=node.stride, padding=node.padding,
                                       ceil_mode=node.ceil_mode, count_include_pad=False, metadata=dict(node.metadata))
    return Graph(nodes, edges, metadata=dict(graph.metadata))


def _probed(graph: Graph, names: Sequence[str]) -> Graph:
    """The graph with an extra Output node `probe:<name>` reading each named node."""
    shapes = graph.infer_shapes()
    extra = {f"probe:{n}": ir.Output(shape=shapes[n]) for n in names}
    return Graph({**graph.nodes, **extra}, [*graph.edges, *((n, f"probe:{n}") for n in names)],
                 metadata=dict(graph.metadata))


def _run_probed(graph: Graph, names: Sequence[str], x: np.ndarray) -> dict[str, np.ndarray]:
    """The named nodes' outputs and the output (key: the Output's name) for each calibration sample (one step)."""
    executor = GraphExecutor(_probed(graph, names))
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for start in range(0, len(x), BATCH):
            out = executor(torch.from_numpy(x[start:start + BATCH]))
            out = out if isinstance(out, dict) else {graph.outputs[0]: out}
            for key, value in out.items():
                parts.setdefault(key.removeprefix("probe:"), []).append(value.numpy())
    return {key: np.concatenate(values) for key, values in parts.items()}


def _layer_scale(values: np.ndarray, normalization: str, percentile: float) -> float:
    """The activation a neuron firing at every step stands for: the percentile (or the maximum) of the layer's
    calibration activations; the maximum when that percentile is 0, and 1 for a layer that never activates."""
    top = float(values.max())
    scale = top if normalization == "max" else float(np.percentile(values.astype(np.float64), percentile))
    return scale if scale > 0 else (top if top > 0 else 1.0)


def _spiking(ann: Graph, scales: dict[str, float], reset_mode: str) -> Graph:
    """The SNN: ReLUs as IF neurons, weighted layers rescaled, Scale nodes where scales still differ."""
    shapes = ann.infer_shapes()
    out_scale: dict[str, float] = {}
    in_scale: dict[str, float] = {}
    demands: dict[str, float | None] = {}

    def demand(name: str) -> float | None:
        """The scale the consumers of `name`'s output want (None: a weighted layer takes any)."""
        if name not in demands:
            wanted = None
            for succ in ann.successors(name):
                node = ann.nodes[succ]
                d = scales[succ] if isinstance(node, ir.ReLU) else 1.0 if isinstance(node, ir.Output) else \
                    demand(succ) if isinstance(node, PASSING) else None
                wanted = d if wanted is None else wanted
            demands[name] = wanted
        return demands[name]

    nodes: dict[str, ir.Node] = {}
    for name in ann.topological_order():
        node, preds = ann.nodes[name], ann.predecessors(name)
        first = out_scale[preds[0]] if preds else 1.0
        if isinstance(node, ir.Input):
            in_scale[name] = out_scale[name] = 1.0
        elif isinstance(node, ir.ReLU):
            in_scale[name] = out_scale[name] = scales[name]
            ones = np.ones(shapes[name], np.float32)
            node = ir.IF(r=ones, v_threshold=ones.copy(), reset_mode=reset_mode, metadata=dict(node.metadata))
        elif isinstance(node, ir.Output):
            in_scale[name] = out_scale[name] = 1.0
        elif isinstance(node, LINEAR):
            in_scale[name] = first
            out_scale[name] = demand(name) or first
            factor = in_scale[name] / out_scale[name]
            node = _with(node, weight=(np.asarray(node.weight, np.float64) * factor).astype(np.float32),
                         bias=(np.asarray(node.bias, np.float64) / out_scale[name]).astype(np.float32))
        else:  # passing nodes: pooling, flatten, dropout, zero padding, residual sums, concatenation
            in_scale[name] = out_scale[name] = demand(name) or first
        nodes[name] = node
    edges = list(ann.edges)
    for i, (src, dst) in enumerate(ann.edges):
        if out_scale[src] != in_scale[dst]:
            scale_name = f"{src}/scale_to_{dst}"
            nodes[scale_name] = ir.Scale(scale=np.full(shapes[src], out_scale[src] / in_scale[dst], np.float32))
            edges[i] = (scale_name, dst)
            edges.append((src, scale_name))
    return Graph(nodes, edges, metadata=dict(ann.metadata))


# -- the report ---------------------------------------------------------------------------------------------
def _report(original: Graph, snn: Graph, x: np.ndarray, y: np.ndarray | None, timesteps: int, encoding: str,
            seed: int, scales: dict[str, float]) -> dict:
    """ANN accuracy, SNN accuracy and agreement at `timesteps`, and each IF layer's scale and firing rate."""
    ann_out = _run_probed(original, [], x)[original.outputs[0]]
    neurons = [n for n, node in snn.nodes.items() if isinstance(node, ir.IF)]
    executor = GraphExecutor(_probed(snn, neurons))
    sums, spikes = [], {n: 0.0 for n in neurons}
    with torch.no_grad():
        for start in range(0, len(x), BATCH):
            seq = encode(x[start:start + BATCH], timesteps, encoding, seed + start)
            out = executor.run_sequence(seq)
            sums.append(out[snn.outputs[0]].sum(0).numpy())
            for n in neurons:
                spikes[n] += float(out[f"probe:{n}"].sum())
    snn_pred, ann_pred = np.concatenate(sums).argmax(-1), ann_out.argmax(-1)
    shapes = snn.infer_shapes()
    report: dict[str, Any] = {"timesteps": int(timesteps), "samples": int(len(x)),
                              "agreement": float(np.mean(snn_pred == ann_pred))}
    if y is not None:
        report["ann_accuracy"] = float(np.mean(ann_pred == y))
        report["snn_accuracy"] = float(np.mean(snn_pred == y))
    report["layers"] = {
        n: {"scale": scales[n], "firing_rate": spikes[n] / (timesteps * len(x) * int(np.prod(shapes[n])))}
        for n in neurons
    }
    return report
