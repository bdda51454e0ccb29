"""Benchmark: graph algorithms grow linearly with nodes and edges.

Times, per node, building a Graph, infer_shapes, ir_to_torch, ir.write, ir.read and `talon inspect`
(the CLI, in process, output discarded) at 1,000, 10,000 and 100,000 nodes, for two shapes of graph:
a chain (input -> Affine -> LIF -> Affine -> ... -> output) and a wide fan-out (one input feeding
every Affine branch, each with its own Output). Linear code keeps the time per node flat as the
size grows; quadratic code multiplies it by ten at each step. The last column is the ratio of the
largest size's time per node to the smallest's (about 1 when linear). Times are this process's CPU time
(time.process_time), which other work on a busy machine does not inflate as it does wall-clock time.

Run: python benchmarks/bench_graph.py [--sizes 1000 10000 100000] [--repeats N] [--ops OP ...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
from click.testing import CliRunner

from talon import bridge, ir
from talon.cli.app import cli

WIDTH = 2


def chain_parts(n: int) -> tuple[dict[str, ir.Node], list[tuple[str, str]]]:
    """n nodes: input, n - 2 alternating Affine and LIF, output."""
    weight, bias = np.eye(WIDTH, dtype=np.float32), np.zeros(WIDTH, np.float32)
    lif = dict(tau=np.full(WIDTH, 5.0, np.float32), r=np.ones(WIDTH, np.float32),
               v_leak=np.zeros(WIDTH, np.float32), v_threshold=np.ones(WIDTH, np.float32))
    nodes: dict[str, ir.Node] = {"input": ir.Input((WIDTH,))}
    edges, prev = [], "input"
    for i in range(n - 2):
        nodes[f"n{i}"] = ir.Affine(weight=weight, bias=bias) if i % 2 == 0 else ir.LIF(**lif)
        edges.append((prev, f"n{i}"))
        prev = f"n{i}"
    nodes["output"] = ir.Output((WIDTH,))
    edges.append((prev, "output"))
    return nodes, edges


def fanout_parts(n: int) -> tuple[dict[str, ir.Node], list[tuple[str, str]]]:
    """About n nodes: one input feeding (n - 1) // 2 Affine branches, each into its own Output."""
    weight, bias = np.eye(WIDTH, dtype=np.float32), np.zeros(WIDTH, np.float32)
    nodes: dict[str, ir.Node] = {"input": ir.Input((WIDTH,))}
    edges = []
    for i in range((n - 1) // 2):
        nodes[f"fc{i}"] = ir.Affine(weight=weight, bias=bias)
        nodes[f"out{i}"] = ir.Output((WIDTH,))
        edges += [("input", f"fc{i}"), (f"fc{i}", f"out{i}")]
    return nodes, edges


def timed(action: Callable[[], object], repeats: int) -> float:
    """Median CPU seconds of `repeats` runs."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        action()
        times.append(time.process_time() - start)
    return statistics.median(times)


def inspect(path: Path) -> None:
    result = CliRunner().invoke(cli, ["inspect", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output


OPERATIONS = ["Graph(...)", "infer_shapes", "ir_to_torch", "ir.write", "ir.read", "talon inspect"]


def measure(parts: Callable, n: int, folder: Path, repeats: int, ops: list[str]) -> tuple[dict[str, float], int]:
    """Seconds per operation for one graph of about n nodes, and its exact node count."""
    nodes, edges = parts(n)
    graph = ir.Graph(nodes, edges)
    path = folder / f"{parts.__name__}_{n}.t1c"
    if {"ir.read", "talon inspect"} & set(ops):
        ir.write(path, graph)
    actions = {
        "Graph(...)": lambda: ir.Graph(nodes, edges),
        "infer_shapes": graph.infer_shapes,
        "ir_to_torch": lambda: bridge.ir_to_torch(graph),
        "ir.write": lambda: ir.write(path, graph),
        "ir.read": lambda: ir.read(path),
        "talon inspect": lambda: inspect(path),
    }
    return {op: timed(actions[op], repeats) for op in ops}, len(graph.nodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeats", type=int, default=3, help="median over this many runs (1 at 100,000 nodes)")
    parser.add_argument("--ops", nargs="+", choices=OPERATIONS, default=OPERATIONS, metavar="OP",
                        help=f"operations to time (default all: {', '.join(OPERATIONS)})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for parts in (chain_parts, fanout_parts):
            results = {}
            for n in args.sizes:
                seconds, count = measure(parts, n, Path(tmp), args.repeats if n < 100000 else 1, args.ops)
                results[count] = seconds
            counts = sorted(results)
            print(f"\n{parts.__name__.removesuffix('_parts')}: CPU microseconds per node (total seconds at the largest)")
            print(f"  {'operation':<14}" + "".join(f"{c:>12,}" for c in counts) + f"{'total s':>10}{'ratio':>8}")
            for op in results[counts[0]]:
                per_node = [results[c][op] / c * 1e6 for c in counts]
                print(f"  {op:<14}" + "".join(f"{p:>12.1f}" for p in per_node)
                      + f"{results[counts[-1]][op]:>10.2f}{per_node[-1] / per_node[0]:>8.2f}")


if __name__ == "__main__":
    main()
