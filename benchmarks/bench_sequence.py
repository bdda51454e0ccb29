"""Whole sequences (T = 100) side by side in one run: our step loop, our run_sequence (torch and onnxruntime),
SpikingJelly's multi-step mode and an snnTorch loop, all with the same weights and identical spikes.

Each network is written once as an snnTorch model (snn.Leaky, reset to zero, beta 0.5); `bridge.to_ir` turns
it into our graph (identical spikes, see talon/bridge/snntorch_support.py) and the SpikingJelly model copies
its layers (LIFNode with tau 2 and decay_input=False computes v/2 + x like beta*v + x at beta 0.5, and the
inclusive threshold of our graph). torch and onnxruntime on the same number of threads (--threads, 1 by
default: on a shared machine, multi-threaded GEMMs wait for cores; 0 keeps each library's default); wall
time, median of interleaved repeats. Prints absolute times, the ratios to the targets (run_sequence at most
0.4x our step loop, 0.4x SpikingJelly, 0.3x snnTorch; onnxruntime's sequence no slower than torch's) and the
number of output spikes each runtime gives differently from our step loop.

    python benchmarks/bench_sequence.py [--repeats 7] [--only mlp1,mlp32,conv16]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import snntorch as snn
import torch
from snntorch import utils as snn_utils
from spikingjelly.activation_based import functional as sj_functional
from spikingjelly.activation_based import layer as sj_layer
from spikingjelly.activation_based import neuron as sj_neuron

import converters
from onnx_ops import OrtExecutor
from talon import bridge, ir

T = 100
BETA, THRESHOLD = 0.5, 0.5


def _leaky() -> snn.Leaky:
    return snn.Leaky(beta=BETA, threshold=THRESHOLD, init_hidden=True, reset_mechanism="zero")


def _scaled(net: torch.nn.Sequential, gain: float) -> torch.nn.Sequential:
    """The net with its weights multiplied by `gain` (torch's default init leaves deeper layers silent)."""
    with torch.no_grad():
        for m in net:
            if hasattr(m, "weight"):
                m.weight.mul_(gain)
    return net.eval()


def mlp() -> torch.nn.Sequential:
    """784-256-128-10, each Linear followed by a LIF."""
    torch.manual_seed(0)
    return _scaled(torch.nn.Sequential(torch.nn.Linear(784, 256), _leaky(), torch.nn.Linear(256, 128), _leaky(),
                                       torch.nn.Linear(128, 10), _leaky()), 4.0)


def conv_snn() -> torch.nn.Sequential:
    """2x32x32 input: two conv(3x3)-LIF-avgpool(2) stages (16 and 32 channels), then a linear-LIF head."""
    torch.manual_seed(0)
    return _scaled(torch.nn.Sequential(
        torch.nn.Conv2d(2, 16, 3, padding=1), _leaky(), torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), _leaky(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(2048, 10), _leaky()), 4.0)


def spikingjelly_copy(net: torch.nn.Sequential, graph: ir.Graph) -> torch.nn.Sequential:
    """The same layers in SpikingJelly, multi-step mode, torch backend, thresholds from our graph's LIFs."""
    thresholds = iter(float(n.v_threshold.flat[0]) for n in graph.nodes.values() if isinstance(n, ir.LIF))
    layers = []
    for m in net:
        if isinstance(m, snn.Leaky):
            layers.append(sj_neuron.LIFNode(tau=1.0 / (1.0 - BETA), decay_input=False, v_threshold=next(thresholds),
                                            v_reset=0.0, step_mode="m"))
        elif isinstance(m, torch.nn.Linear):
            layers.append(sj_layer.Linear(m.in_features, m.out_features, step_mode="m"))
        elif isinstance(m, torch.nn.Conv2d):
            layers.append(sj_layer.Conv2d(m.in_channels, m.out_channels, m.kernel_size, padding=m.padding,
                                          step_mode="m"))
        elif isinstance(m, torch.nn.AvgPool2d):
            layers.append(sj_layer.AvgPool2d(m.kernel_size, step_mode="m"))
        else:
            layers.append(sj_layer.Flatten(step_mode="m"))
        if hasattr(m, "weight"):
            layers[-1].load_state_dict(m.state_dict())
    return torch.nn.Sequential(*layers).eval()


def snntorch_loop(net: torch.nn.Sequential, xs: torch.Tensor) -> torch.Tensor:
    snn_utils.reset(net)
    return torch.stack([net(x) for x in xs])


def step_loop(ex: bridge.GraphExecutor, xs: torch.Tensor) -> torch.Tensor:
    state, outs = {}, []
    for x in xs:
        out, state = ex(x, state)
        outs.append(out)
    return torch.stack(outs)


def spikingjelly_run(net: torch.nn.Sequential, xs: torch.Tensor) -> torch.Tensor:
    sj_functional.reset_net(net)
    return net(xs)


def bench(label: str, net: torch.nn.Sequential, xs: torch.Tensor, repeats: int, threads: int) -> list[str]:
    graph = bridge.to_ir(net, xs[0])
    ex = bridge.ir_to_torch(graph, return_state=True)
    ort_ex = OrtExecutor(converters.ir_to_onnx(graph), intra_op_threads=threads or None)
    sj = spikingjelly_copy(net, graph)
    xs_np = xs.numpy()
    runs = {
        "step loop": lambda: step_loop(ex, xs),
        "run_sequence": lambda: ex.run_sequence(xs)[0],
        "ort sequence": lambda: torch.from_numpy(ort_ex.run_sequence(xs_np)),
        "SpikingJelly -m": lambda: spikingjelly_run(sj, xs),
        "snnTorch loop": lambda: snntorch_loop(net, xs),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    with torch.inference_mode():
        ref = runs["step loop"]()
        mismatches = {k: int((fn() != ref).sum()) for k, fn in runs.items()}  # also the warm-up
        for _ in range(repeats):
            for key, fn in runs.items():
                t0 = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    seq = med["run_sequence"]
    ratios = {"seq/step": (seq / med["step loop"], 0.4), "seq/SJ": (seq / med["SpikingJelly -m"], 0.4),
              "seq/snnTorch": (seq / med["snnTorch loop"], 0.3), "ort/seq": (med["ort sequence"] / seq, 1.0)}
    print(f"\n{label}: {xs.shape[1]} per batch, {int(ref.sum())} of {ref.numel()} output spikes")
    for k in runs:
        print(f"  {k:<16} {med[k]:9.1f} ms   spikes differing from our step loop: {mismatches[k]}")
    missed = []
    for k, (r, target) in ratios.items():
        ok = r <= target
        print(f"  {k:<16} {r:9.3f}    (target <= {target})  {'OK' if ok else 'MISSED'}")
        if not ok:
            missed.append(f"{label} {k} {r:.3f}")
    return missed + [f"{label} {k} spikes differ" for k, n in mismatches.items() if n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="threads for torch and onnxruntime (0: defaults)")
    parser.add_argument("--only", default="mlp1,mlp32,conv16", help="comma-separated subset of the networks")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(1)
    cases = {
        "mlp1": ("784-256-128-10 LIF MLP, batch 1", mlp, (T, 1, 784)),
        "mlp32": ("784-256-128-10 LIF MLP, batch 32", mlp, (T, 32, 784)),
        "conv16": ("conv SNN 2x32x32, batch 16", conv_snn, (T, 16, 2, 32, 32)),
    }
    ort_threads = args.threads or "default"
    print(f"T = {T}, torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {ort_threads} "
          f"threads, wall time, median of {args.repeats} interleaved repeats")
    missed = []
    for key in args.only.split(","):
        label, build, shape = cases[key]
        xs = (torch.rand(shape, generator=gen) < 0.2).float()
        missed += bench(label, build(), xs, args.repeats, args.threads)
    print("\nall targets met, identical spikes" if not missed else "\nMISSED: " + "; ".join(missed))


if __name__ == "__main__":
    main()
