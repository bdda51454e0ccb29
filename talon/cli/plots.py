"""Spike raster plots (matplotlib is an optional extra: `pip install 'talon-ir-bridge[plot]'`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from talon import ir

from . import report
from .files import CliError


def pyplot(purpose: str = "--raster") -> Any:
    """matplotlib.pyplot on the file-only Agg backend; CliError naming the extra to install when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CliError(f"{purpose} needs matplotlib, which is not installed: pip install 'talon-ir-bridge[plot]'") from None
    return plt


def check_raster_path(path: str | Path) -> None:
    """CliError unless matplotlib is installed and can write the image format `path`'s extension names."""
    formats = pyplot().figure().canvas.get_supported_filetypes()
    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix not in formats:
        raise CliError(f"--raster {path}: unknown image format {suffix!r}; use one of {', '.join(sorted(formats))}")


def save_raster(path: str | Path, trains: Mapping[str, np.ndarray], batch_index: int = 0, title: str = "") -> None:
    """One panel per spiking layer: a dot at (timestep, neuron) for each spike of one batch item, under a title."""

    plt = pyplot()
    if not trains:
        raise CliError("--raster: no layer of the model output spikes in this run; nothing to plot")
    fig, axes = plt.subplots(len(trains), 1, figsize=(8, 1.2 + 1.8 * len(trains)), squeeze=False, sharex=True)
    for ax, (layer, spikes) in zip(axes[:, 0], trains.items()):
        flat = spikes[:, batch_index].reshape(spikes.shape[0], -1)
        steps, neurons = np.nonzero(flat)
        ax.scatter(steps, neurons, s=4, marker="|", color="black")
        ax.set_ylabel(f"{layer}\nneuron")
        ax.set_ylim(-0.5, flat.shape[1] - 0.5)
        ax.set_title(f"{layer}: {len(steps)} spikes", fontsize="small", loc="left")
    fig.suptitle(f"{title + ': ' if title else ''}spike raster, batch item {batch_index}")
    axes[-1, 0].set_xlabel("timestep")
    axes[-1, 0].set_xlim(-0.5, max(spikes.shape[0] for spikes in trains.values()) - 0.5)
    fig.tight_layout()
    _save(fig, path)


def _save(fig: Any, path: str | Path) -> None:
    """Save a figure (SVG text stays text, so the picture is searchable) and close it."""
    import matplotlib

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(path)
    matplotlib.pyplot.close(fig)


def save_graph_picture(path: str | Path, graph: ir.Graph, title: str) -> None:
    """Draw the graph without Graphviz: nodes in layers by longest path from the inputs, edges as arrows, edges
    that close a cycle dashed; text stays text in SVG."""
    plt = pyplot("drawing a graph without Graphviz")
    shapes = report.output_shapes(graph)
    layers = layered(graph)
    rows: dict[int, list[str]] = {}
    for name in graph.topological_order():
        rows.setdefault(layers[name], []).append(name)
    width = max(len(r) for r in rows.values()) if rows else 1
    pos = {name: ((i - (len(names) - 1) / 2) * 3.0, -layer * 1.4)
           for layer, names in rows.items() for i, name in enumerate(names)}
    fig, ax = plt.subplots(figsize=(max(4.0, 2.6 * width), max(3.0, 1.1 * (len(rows) + 1))))
    back = set(graph.back_edges())
    for src, dst in graph.edges:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        dashed = (src, dst) in back
        ax.annotate("", xy=(x1, y1 + (0.35 if y1 < y0 else -0.35)), xytext=(x0, y0 - (0.35 if y1 < y0 else -0.35)),
                    arrowprops={"arrowstyle": "->", "linestyle": "--" if dashed else "-", "color": "0.3",
                                "connectionstyle": "arc3,rad=0.35" if dashed or src == dst else "arc3"})
    for name, (x, y) in pos.items():
        shape = " ".join("x".join(map(str, s)) or "scalar" for s in shapes.get(name, []))
        ax.text(x, y, f"{name}\n{type(graph.nodes[name]).__name__}\n{shape}".rstrip(), ha="center", va="center",
                fontsize=8, bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.2"})
    xs, ys = [p[0] for p in pos.values()] or [0], [p[1] for p in pos.values()] or [0]
    ax.set_xlim(min(xs) - 1.8, max(xs) + 1.8)
    ax.set_ylim(min(ys) - 0.9, max(ys) + 0.9)
    ax.set_axis_off()
    ax.set_title(title)
    _save(fig, path)


def layered(graph: ir.Graph) -> dict[str, int]:
    """Each node's layer: the longest path to it from a node without (forward) predecessors; feedback ignored."""
    back = set(graph.back_edges())
    layer: dict[str, int] = {}
    for name in graph.topological_order():
        preds = [s for s in graph.predecessors(name) if (s, name) not in back]
        layer[name] = 1 + max((layer[s] for s in preds), default=-1)
    return layer
