"""GraphExecutor against a hand-written torch loop of the same math, measured interleaved in one process.

Prints, per network, the median time of 100 timesteps and the ratio executor / hand-written for the
step call (``out, state = ex(x, state)`` per timestep) and the sequence call (``ex.run_sequence(xs)``).
Targets at batch 1: <= 1.05 for the step and the sequence call (the executor calls every node's module as
a module, hooks and forward overrides honoured; the hand-written loop calls the LIF kernel directly). Times are the thread's CPU
time (torch runs on this one thread), so other processes sharing the cores disturb them little.

    python benchmarks/bench_executor.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from onnx_ops.neuron_kernels import lif_coefficients, lif_step
from talon import bridge, ir

T = 100


def _lif(shape: tuple[int, ...], rng: np.random.Generator) -> ir.LIF:
    n = int(np.prod(shape))
    return ir.LIF(tau=rng.uniform(2, 10, n).astype(np.float32).reshape(shape), r=np.ones(shape, np.float32),
                  v_leak=np.zeros(shape, np.float32), v_threshold=np.full(shape, 0.5, np.float32))


def _affine(n_in: int, n_out: int, rng: np.random.Generator) -> ir.Affine:
    return ir.Affine(weight=(rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32),
                     bias=np.zeros(n_out, np.float32))


def _load(layer: torch.nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> torch.nn.Module:
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


def mlp_graph(rng: np.random.Generator) -> ir.Graph:
    """784-256-128-10, each Affine followed by a LIF."""
    sizes = [784, 256, 128, 10]
    nodes: dict = {"input": ir.Input([784])}
    edges, prev = [], "input"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        nodes[f"fc{i}"], nodes[f"lif{i}"] = _affine(a, b, rng), _lif((b,), rng)
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = ir.Output([10])
    return ir.Graph(nodes, edges + [(prev, "output")])


def conv_graph(rng: np.random.Generator) -> ir.Graph:
    """Conv2d(1->8, k3, pad 1) on 28x28 - LIF - MaxPool2d(2) - Flatten - Affine(1568->10) - LIF."""
    conv = ir.Conv2d(weight=(rng.standard_normal((8, 1, 3, 3)) / 3).astype(np.float32),
                     bias=np.zeros(8, np.float32), padding=(1, 1))
    nodes = {"input": ir.Input([1, 28, 28]), "conv": conv, "lif1": _lif((8, 28, 28), rng),
             "pool": ir.MaxPool2d(kernel_size=(2, 2)), "flat": ir.Flatten(), "fc": _affine(1568, 10, rng),
             "lif2": _lif((10,), rng), "output": ir.Output([10])}
    names = list(nodes)
    return ir.Graph(nodes, list(zip(names, names[1:])))


class HandWritten:
    """The same network written by hand the usual way: torch layer modules (nn.Linear, nn.Conv2d, ...) called
    in sequence, and the LIF step of onnx_ops.neuron_kernels with its coefficient tensors held in locals.
    With functional=True the layers are torch.nn.functional calls on tensors held in locals instead (the
    leanest hand-written loop; reported for information, the targets refer to the usual form)."""

    def __init__(self, graph: ir.Graph, functional: bool = False):
        self.layers: list = []
        for name in graph.topological_order():
            node = graph.nodes[name]
            if isinstance(node, ir.LIF):
                beta, omb = lif_coefficients(torch.tensor(node.tau))
                self.layers.append((True, (beta, omb, *(torch.tensor(a) for a in (node.r, node.v_leak,
                                                                                  node.v_threshold)))))
            elif isinstance(node, (ir.Affine, ir.Conv2d)):
                w, b = torch.tensor(node.weight), torch.tensor(node.bias)
                if isinstance(node, ir.Affine):
                    layer = partial(F.linear, weight=w, bias=b) if functional else _load(torch.nn.Linear(
                        *node.weight.shape[::-1]), w, b)
                else:
                    layer = partial(F.conv2d, weight=w, bias=b, padding=node.padding) if functional else _load(
                        torch.nn.Conv2d(*node.weight.shape[1::-1], node.weight.shape[2:], padding=node.padding), w, b)
                self.layers.append((False, layer))
            elif isinstance(node, ir.MaxPool2d):
                self.layers.append((False, torch.nn.MaxPool2d(node.kernel_size)))
            elif isinstance(node, ir.Flatten):
                self.layers.append((False, torch.nn.Flatten()))

    def step(self, x: torch.Tensor, vs: list) -> torch.Tensor:
        i = 0
        for is_lif, layer in self.layers:
            if is_lif:
                x, vs[i] = lif_step(x, vs[i] if vs[i] is not None else torch.zeros_like(x), *layer)
                i += 1
            else:
                x = layer(x)
        return x

    def run_steps(self, xs: torch.Tensor) -> list:
        vs: list = [None] * sum(is_lif for is_lif, _ in self.layers)
        return [self.step(x, vs) for x in xs]

    def run_sequence(self, xs: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.run_steps(xs))


def executor_steps(ex: bridge.GraphExecutor, xs: torch.Tensor) -> list:
    state: dict = {}
    outs = []
    for x in xs:
        out, state = ex(x, state)
        outs.append(out)
    return outs


def bench(label: str, graph: ir.Graph, batch: int, repeats: int) -> dict[str, float]:
    """Median ratios executor / hand-written for the step and sequence calls; also printed: the min ratios
    and the median ratios against the functional hand-written loop."""
    ex = bridge.ir_to_torch(graph, return_state=True)
    hand, lean = HandWritten(graph), HandWritten(graph, functional=True)
    xs = (torch.rand(T, batch, *graph.infer_shapes()["input"]) < 0.2).float()
    ref = hand.run_sequence(xs)
    assert torch.equal(ex.run_sequence(xs)[0], ref) and torch.equal(torch.stack(executor_steps(ex, xs)), ref)
    assert torch.equal(lean.run_sequence(xs), ref)
    runs = {"ex_step": lambda: executor_steps(ex, xs), "hand_step": lambda: hand.run_steps(xs),
            "lean_step": lambda: lean.run_steps(xs), "ex_seq": lambda: ex.run_sequence(xs),
            "hand_seq": lambda: hand.run_sequence(xs), "lean_seq": lambda: lean.run_sequence(xs)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for key, fn in runs.items():
            t0 = time.thread_time()
            fn()
            times[key].append(time.thread_time() - t0)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    low = {k: min(v) * 1e3 for k, v in times.items()}
    ratios = {call: med[f"ex_{call}"] / med[f"hand_{call}"] for call in ("step", "seq")}
    parts = [f"{c} {med[f'ex_{c}']:6.2f} vs {med[f'hand_{c}']:6.2f} ms: {ratios[c]:.3f} (min "
             f"{low[f'ex_{c}'] / low[f'hand_{c}']:.3f}, functional {med[f'ex_{c}'] / med[f'lean_{c}']:.3f})"
             for c in ("step", "seq")]
    print(f"{label:<22} batch {batch:>2} | " + " | ".join(parts))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    mlp, conv = mlp_graph(rng), conv_graph(rng)
    print(f"{T} timesteps, torch {torch.__version__}, 1 thread, CPU time, median (and min) of {args.repeats} "
          "interleaved repeats; ratio = executor / hand-written")
    missed = []
    with torch.inference_mode():
        for label, graph, batches in (("LIF MLP 784-256-128-10", mlp, (1, 64)), ("conv SNN", conv, (1, 16))):
            for batch in batches:
                ratios = bench(label, graph, batch, args.repeats)
                if batch == 1:
                    missed += [f"{label} {call} {r:.3f}" for call, r, limit in
                               (("step", ratios["step"], 1.05), ("sequence", ratios["seq"], 1.05)) if r > limit]
    verdict = "met" if not missed else "MISSED " + ", ".join(missed)
    print("targets at batch 1 (step <= 1.05, sequence <= 1.05):", verdict)


if __name__ == "__main__":
    main()
