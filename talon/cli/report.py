"""What `talon inspect` shows about a graph: node rows, totals, a JSON-safe dict and Graphviz DOT text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from talon import ir
from talon.ir.errors import GraphError
from talon.ir.primitives.base import numel


@dataclass
class NodeRow:
    """One node as the inspect table shows it."""

    name: str
    type: str
    input_shapes: list[list[int]]
    output_shapes: list[list[int]]
    params: int
    bytes: int


def _node_bytes(node: ir.Node) -> int:
    return int(sum(v.nbytes for v in node.params().values() if isinstance(v, np.ndarray)))


def output_shapes(graph: ir.Graph) -> dict[str, list[tuple[int, ...]]]:
    """Each node's output shapes (a list, several for multi-output nodes); empty when shapes do not propagate."""
    try:
        inferred = graph.infer_shapes()
    except GraphError:
        return {}
    return {n: list(s) if graph.nodes[n].multi_output else [s] for n, s in inferred.items()}


def node_rows(graph: ir.Graph) -> list[NodeRow]:
    """One row per node in node order, with the shapes flowing into and out of it."""
    shapes = output_shapes(graph)
    rows = []
    for name, node in graph.nodes.items():
        inputs = []
        for src in graph.predecessors(name):
            outs = shapes.get(src, [])
            index = graph.output_index(src, name) if graph.nodes[src].multi_output else 0
            if index < len(outs):
                inputs.append(list(outs[index]))
        outputs = [list(s) for s in shapes.get(name, [])]
        rows.append(NodeRow(name, type(node).__name__, inputs, outputs, node.num_params(), _node_bytes(node)))
    return rows


def neuron_counts(graph: ir.Graph) -> dict[str, int]:
    """Number of neurons per stateful node type (LIF, IF, ...), from the propagated shapes."""
    shapes = output_shapes(graph)
    counts: dict[str, int] = {}
    for name, node in graph.nodes.items():
        if node.stateful:
            shape = shapes[name][0] if name in shapes else node.neuron_shape
            counts[type(node).__name__] = counts.get(type(node).__name__, 0) + numel(shape)
    return counts


def jsonable(value: Any) -> Any:
    """Metadata values as plain JSON types (arrays become lists, bytes become text)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def graph_report(graph: ir.Graph) -> dict[str, Any]:
    """Everything `talon inspect` prints, as a JSON-safe dict."""
    rows = node_rows(graph)
    return {
        "nodes": [row.__dict__ for row in rows],
        "edges": [list(e) for e in graph.edges],
        "back_edges": [list(e) for e in graph.back_edges()],
        "inputs": graph.inputs,
        "outputs": graph.outputs,
        "totals": {
            "nodes": len(graph.nodes),
            "edges": len(graph.edges),
            "params": sum(r.params for r in rows),
            "bytes": sum(r.bytes for r in rows),
            "neurons": neuron_counts(graph),
        },
        "metadata": jsonable(graph.metadata),
    }


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _quote(text: str) -> str:
    return f'"{_escape(text)}"'


def to_dot(graph: ir.Graph) -> str:
    """Graphviz DOT text of the graph; edges that close a cycle are dashed."""
    shapes = output_shapes(graph)
    back = set(graph.back_edges())
    lines = ["digraph talon {", "  rankdir=TB;", '  node [shape=box, style=rounded, fontname="Helvetica"];']
    for name, node in graph.nodes.items():
        shape = " ".join("x".join(map(str, s)) or "scalar" for s in shapes.get(name, []))
        label = "\\n".join(_escape(part) for part in (name, type(node).__name__, shape) if part)
        lines.append(f'  {_quote(name)} [label="{label}"];')
    for src, dst in graph.edges:
        style = " [style=dashed, constraint=false]" if (src, dst) in back else ""
        lines.append(f"  {_quote(src)} -> {_quote(dst)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"
