"""Benchmark: ir.write / ir.read of a graph holding ~100 MB of float32 weights against plain h5py
writing and reading the same arrays in the same run (target: at most 1.5x plain h5py).

Writes are timed both into a new file and over an existing one (ir.write replaces it atomically,
plain h5py truncates it in place); runs are interleaved and the medians compared.

Run: python benchmarks/bench_t1c.py [--repeats N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from talon import ir

WIDTH, LAYERS = 2560, 4  # 4 x 2560 x 2560 float32 = 105 MB


def build_graph() -> ir.Graph:
    """Input -> LAYERS x (Affine WIDTH x WIDTH, LIF) -> Output."""
    rng = np.random.default_rng(0)
    nodes: dict[str, ir.Node] = {"input": ir.Input((WIDTH,))}
    edges, prev = [], "input"
    for i in range(LAYERS):
        weight = rng.standard_normal((WIDTH, WIDTH), dtype=np.float32)
        nodes[f"fc{i}"] = ir.Affine(weight=weight, bias=np.zeros(WIDTH, np.float32))
        nodes[f"lif{i}"] = ir.LIF(tau=np.full(WIDTH, 5.0, np.float32), r=np.ones(WIDTH, np.float32),
                                  v_leak=np.zeros(WIDTH, np.float32), v_threshold=np.ones(WIDTH, np.float32))
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = ir.Output((WIDTH,))
    edges.append((prev, "output"))
    return ir.Graph(nodes, edges)


def arrays_of(graph: ir.Graph) -> dict[str, np.ndarray]:
    """Every array field of every node, keyed by 'node/field'."""
    return {f"{n}/{k}": v for n, node in graph.nodes.items() for k, v in node.params().items() if isinstance(v, np.ndarray)}


def h5py_write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)


def h5py_read(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def timed(fn, *args, fresh: Path | None = None) -> float:
    """Seconds one call takes; `fresh` is deleted first (untimed) so the call creates a new file."""
    if fresh is not None and fresh.exists():
        fresh.unlink()
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--dir", default=None, help="folder for the files (default: a temporary one)")
    args = parser.parse_args()
    graph = build_graph()
    arrays = arrays_of(graph)
    megabytes = sum(a.nbytes for a in arrays.values()) / 1e6
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ours, plain = Path(tmp) / "graph.t1c", Path(tmp) / "plain.h5"
        # (label, [ours, plain]): each is (function, args, file to delete first or None)
        cases = {
            "write new file": [(ir.write, (ours, graph), ours), (h5py_write, (plain, arrays), plain)],
            "overwrite file": [(ir.write, (ours, graph), None), (h5py_write, (plain, arrays), None)],
            "read": [(ir.read, (ours,), None), (h5py_read, (plain,), None)],
        }
        times = {label: ([], []) for label in cases}
        for i in range(args.repeats + 2):  # interleaved, alternating which goes first; 2 warm-up rounds
            for label, pair in cases.items():
                for k in ((0, 1) if i % 2 else (1, 0)):
                    fn, fn_args, fresh = pair[k]
                    took = timed(fn, *fn_args, fresh=fresh)
                    if i >= 2:
                        times[label][k].append(took)
        assert ir.read(ours).equals(graph)
    print(f"graph: {len(graph.nodes)} nodes, {megabytes:.1f} MB of float32 arrays; median of {args.repeats} runs")
    for label, (mine, base) in times.items():
        a, b = statistics.median(mine), statistics.median(base)
        print(f"{label:15s} talon.ir {a * 1e3:7.1f} ms   plain h5py {b * 1e3:7.1f} ms   ratio {a / b:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
