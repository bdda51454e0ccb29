"""onnxruntime execution (OrtExecutor) against the torch GraphExecutor, interleaved in one process.

Ratios use the calling thread's CPU time with one thread (both runtimes then compute on the calling
thread, so other processes on the cores disturb the measure little), wall time otherwise.

784-256-128-10 LIF MLP at batch 1. Prints the median wall time per timestep of:
  - the step call ``out, state = ex(x, state)`` (OrtExecutor vs GraphExecutor under no_grad), target ratio <= 0.6;
  - 100 timesteps: ``OrtExecutor.run_sequence(xs)`` (one session.run over a Scan) vs the torch executor's
    100-call step loop, target ratio <= 0.35.

    python benchmarks/bench_ort.py [--repeats 30] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from bench_executor import mlp_graph

import converters
from onnx_ops import OrtExecutor
from talon import bridge

T = 100


def _torch_loop(ex, xs: torch.Tensor) -> None:
    state = None
    with torch.no_grad():
        for x in xs:
            _, state = ex(x, state)


def _ort_loop(ex: OrtExecutor, xs: np.ndarray) -> None:
    state = None
    for x in xs:
        _, state = ex(x, state)


def _timed(fn, *args) -> tuple[float, float]:
    """(thread CPU time, wall time) of one call."""
    cpu, wall = time.thread_time(), time.perf_counter()
    fn(*args)
    return time.thread_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads for both runtimes (0: each library's default, as a user runs them)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    graph = mlp_graph(np.random.default_rng(0))
    torch_ex = bridge.ir_to_torch(graph, return_state=True)
    ort_ex = OrtExecutor(converters.ir_to_onnx(graph), return_state=True, intra_op_threads=args.threads or None)
    xs = (np.random.default_rng(1).random((T, 1, 784)) < 0.2).astype(np.float32)
    xs_t = torch.from_numpy(xs)
    # same results first, then warm-up of every path (the Scan session is built on first use)
    ys, _ = ort_ex.run_sequence(xs)
    with torch.no_grad():
        ref, _ = torch_ex.run_sequence(xs_t)
    assert np.array_equal(ys, ref.numpy()), "onnxruntime and torch disagree"
    for _ in range(3):
        _torch_loop(torch_ex, xs_t), _ort_loop(ort_ex, xs), ort_ex.run_sequence(xs)
    runs = {"torch step": (_torch_loop, torch_ex, xs_t), "ort step": (_ort_loop, ort_ex, xs),
            "ort sequence": (ort_ex.run_sequence, xs)}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    for _ in range(args.repeats):  # interleaved
        for name, (fn, *fn_args) in runs.items():
            times[name].append(_timed(fn, *fn_args))
    cpu = {k: statistics.median(t[0] for t in v) / T for k, v in times.items()}
    wall = {k: statistics.median(t[1] for t in v) / T for k, v in times.items()}
    print(f"784-256-128-10 LIF MLP, batch 1, {T} steps, median of {args.repeats}, {args.threads or 'default'} thread(s)")
    for k in runs:
        print(f"  {k:<13} {cpu[k] * 1e6:8.1f} us/step thread CPU   {wall[k] * 1e6:8.1f} us/step wall")
    med = cpu if args.threads == 1 else wall
    step, seq = med["ort step"] / med["torch step"], med["ort sequence"] / med["torch step"]
    print(f"  ort step / torch step:              {step:.3f}  (target <= 0.6)  {'OK' if step <= 0.6 else 'MISSED'}")
    print(f"  ort sequence / torch 100-step loop: {seq:.3f}  (target <= 0.35) {'OK' if seq <= 0.35 else 'MISSED'}")


if __name__ == "__main__":
    main()
