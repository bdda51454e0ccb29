"""Structural differences between two graphs for `talon compare`: nodes, fields (largest difference per array),
edges and metadata. Nodes are matched by name; node and (non-merge) edge order do not matter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talon import ir
from talon.ir.primitives.base import values_equal

from .report import jsonable


@dataclass
class FieldDiff:
    """One field of a node that differs: its values (scalars, or array shapes) and the largest difference."""

    node: str
    field: str
    a: Any
    b: Any
    max_diff: float | None  # arrays of one shape; None otherwise
    within_tolerance: bool


@dataclass
class StructuralDiff:
    """Everything that differs between two graphs' structure."""

    added: list[str] = field(default_factory=list)  # nodes only in B
    removed: list[str] = field(default_factory=list)  # nodes only in A
    changed_type: list[dict[str, str]] = field(default_factory=list)
    fields: list[FieldDiff] = field(default_factory=list)
    edges_added: list[list[str]] = field(default_factory=list)
    edges_removed: list[list[str]] = field(default_factory=list)
    edge_order: list[str] = field(default_factory=list)  # merge / multi-output nodes whose edge order differs
    metadata: list[str] = field(default_factory=list)  # graph metadata keys, and "node:<name>", that differ

    @property
    def equal(self) -> bool:
        """True when nothing but metadata differs and every field is within tolerance."""
        return not (self.added or self.removed or self.changed_type or self.edges_added or self.edges_removed
                    or self.edge_order or any(not f.within_tolerance for f in self.fields))

    def as_dict(self) -> dict[str, Any]:
        return jsonable({**{k: v for k, v in self.__dict__.items() if k != "fields"},
                         "fields": [f.__dict__ for f in self.fields], "equal": self.equal})


def _field_diff(node: str, name: str, a: Any, b: Any, atol: float, rtol: float) -> FieldDiff | None:
    """How one field's values differ, or None when they are exactly equal."""
    if values_equal(a, b):
        return None
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if a.shape != b.shape:
            return FieldDiff(node, name, list(a.shape), list(b.shape), None, False)
        x, y = a.astype(np.float64), b.astype(np.float64)
        diff = float(np.nanmax(np.abs(x - y))) if a.size else 0.0
        close = bool(np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True))
        return FieldDiff(node, name, str(a.dtype), str(b.dtype), diff, close)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return FieldDiff(node, name, a, b, abs(float(a) - float(b)), bool(np.isclose(a, b, rtol=rtol, atol=atol)))
    return FieldDiff(node, name, a, b, None, False)


def _ordered_edges(graph: ir.Graph, name: str) -> list[str] | None:
    """The neighbours whose order means something: a merge node's inputs, a multi-output node's outputs."""
    node = graph.nodes[name]
    if node.merge:
        return graph.predecessors(name)
    if node.multi_output:
        return graph.successors(name)
    return None


def structural_diff(a: ir.Graph, b: ir.Graph, atol: float = 0.0, rtol: float = 0.0) -> StructuralDiff:
    """What differs between graphs a and b, nodes matched by name."""
    result = StructuralDiff(added=[n for n in b.nodes if n not in a.nodes],
                            removed=[n for n in a.nodes if n not in b.nodes])
    for name, node in a.nodes.items():
        other = b.nodes.get(name)
        if other is None:
            continue
        if type(node) is not type(other):
            result.changed_type.append({"node": name, "a": type(node).__name__, "b": type(other).__name__})
            continue
        theirs = other.params()
        result.fields += [d for key, value in node.params().items()
                          if (d := _field_diff(name, key, value, theirs[key], atol, rtol)) is not None]
        if not values_equal(node.metadata, other.metadata):
            result.metadata.append(f"node:{name}")
        mine, yours = _ordered_edges(a, name), _ordered_edges(b, name)
        if mine is not None and yours is not None and mine != yours and sorted(mine) == sorted(yours):
            result.edge_order.append(name)
    edges_a, edges_b = set(a.edges), set(b.edges)
    result.edges_removed = [list(e) for e in a.edges if e not in edges_b]
    result.edges_added = [list(e) for e in b.edges if e not in edges_a]
    keys = list(dict.fromkeys([*a.metadata, *b.metadata]))
    result.metadata = [k for k in keys if not values_equal(a.metadata.get(k), b.metadata.get(k))] + result.metadata
    return result
