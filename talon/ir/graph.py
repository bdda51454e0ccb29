"""The TALON IR graph: named primitive nodes (insertion order kept) and ordered (src, dst) edges.

Edge order is meaningful: merge nodes (Concat, Skip 'concatenate') take their inputs in edge order
and a multi-output node (ChannelSplit) hands output i to its i-th outgoing edge.
"""

from __future__ import annotations

import heapq
from typing import Any, Iterable, Mapping

from ..errors import GraphError, PrimitiveError, require
from .primitives import Input, Node, Output
from .primitives.base import MAX_NUMEL, Shape, numel, values_equal

Edge = tuple[str, str]


class Graph:
    """A validated TALON IR graph. Cycles are refused unless ``allow_cycles=True``."""

    def __init__(
        self,
        nodes: Mapping[str, Node] | None = None,
        edges: Iterable[tuple[str, str]] | None = None,
        metadata: dict[str, Any] | None = None,
        allow_cycles: bool = False,
    ):
        require(nodes, (Mapping, type(None)), "Graph: nodes", GraphError)
        require(edges, (Iterable, type(None)), "Graph: edges", GraphError)
        require(metadata, (dict, type(None)), "Graph: metadata", GraphError)
        self.nodes: dict[str, Node] = dict(nodes or {})
        self.edges: list[Edge] = [e if isinstance(e, str) else tuple(e) for e in (edges or [])]  # type: ignore[misc]
        self.metadata: dict[str, Any] = dict(metadata) if metadata else {}
        self.allow_cycles = bool(allow_cycles)
        self.validate()

    # -- structure -------------------------------------------------------------------------
    def validate(self) -> None:
        """Check names, node types and edges; refuse cycles unless allow_cycles. Raises GraphError."""
        for name, node in self.nodes.items():
            if not isinstance(name, str) or not name:
                raise GraphError(f"node names must be non-empty strings, got {name!r}")
            if not isinstance(node, Node):
                raise GraphError(f"node {name!r} is a {type(node).__name__}, not a talon.ir primitive")
        seen: set[Edge] = set()
        for i, edge in enumerate(self.edges):
            if not isinstance(edge, tuple) or len(edge) != 2 or not all(isinstance(n, str) for n in edge):
                raise GraphError(f"edge {i} must be a (src, dst) pair of node names, got {edge!r}")
            src, dst = edge
            missing = [n for n in edge if n not in self.nodes]
            if missing:
                raise GraphError(f"edge {i} ({src!r} -> {dst!r}) names missing node(s) {missing}")
            if src == dst:
                raise GraphError(f"edge {i} is a self-loop on {src!r}")
            if edge in seen:
                raise GraphError(f"duplicate edge {src!r} -> {dst!r}")
            seen.add(edge)
        for name in self.inputs:
            if self.predecessors(name):
                raise GraphError(f"Input node {name!r} has incoming edges from {self.predecessors(name)}")
        for name in self.outputs:
            if self.successors(name):
                raise GraphError(f"Output node {name!r} has outgoing edges to {self.successors(name)}")
        back = self.back_edges()
        if back and not self.allow_cycles:
            raise GraphError(
                f"graph has cycles (edges closing them: {back}); build it with allow_cycles=True "
                "and run it with bridge.CyclicGraphExecutor"
            )

    @property
    def inputs(self) -> list[str]:
        """Names of Input nodes, in node order."""
        return [n for n, node in self.nodes.items() if isinstance(node, Input)]

    @property
    def outputs(self) -> list[str]:
        """Names of Output nodes, in node order."""
        return [n for n, node in self.nodes.items() if isinstance(node, Output)]

    def predecessors(self, name: str) -> list[str]:
        """Sources of the edges into `name`, in edge order."""
        return [s for s, d in self.edges if d == name]

    def successors(self, name: str) -> list[str]:
        """Targets of the edges out of `name`, in edge order."""
        return [d for s, d in self.edges if s == name]

    def back_edges(self) -> list[Edge]:
        """Edges that close a cycle: depth-first search following edges in edge order, from the Inputs,
        then from the other nodes, each in order of first appearance in the edges (isolated nodes last,
        by name). It depends on the edges only, never on node order, so a file round trip keeps it."""
        succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        for s, d in self.edges:
            succ[s].append(d)
        state: dict[str, int] = {}  # 1 = on the stack, 2 = done
        back: list[Edge] = []
        order = list(dict.fromkeys([n for e in self.edges for n in e] + sorted(self.nodes)))
        roots = [n for n in order if isinstance(self.nodes[n], Input)] + order
        for root in roots:
            if root in state:
                continue
            state[root] = 1
            stack = [(root, iter(succ[root]))]
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[node] = 2
                    stack.pop()
                elif state.get(nxt) == 1:
                    back.append((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
        return [e for e in self.edges if e in set(back)]

    @property
    def is_cyclic(self) -> bool:
        """True when some edge closes a cycle."""
        return bool(self.back_edges())

    def topological_order(self) -> list[str]:
        """Nodes so that every edge (except cycle-closing ones) goes forward; ties keep node order."""
        back = set(self.back_edges())
        rank = {n: i for i, n in enumerate(self.nodes)}
        indeg = {n: 0 for n in self.nodes}
        succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        for e in self.edges:
            if e not in back:
                indeg[e[1]] += 1
                succ[e[0]].append(e[1])
        heap = [(rank[n], n) for n, d in indeg.items() if d == 0]
        heapq.heapify(heap)
        order: list[str] = []
        while heap:
            _, n = heapq.heappop(heap)
            order.append(n)
            for m in succ[n]:
                indeg[m] -= 1
                if indeg[m] == 0:
                    heapq.heappush(heap, (rank[m], m))
        return order

    # -- shapes ----------------------------------------------------------------------------
    def infer_shapes(self) -> dict[str, Shape | list[Shape]]:
        """Output shape of every node without batch, propagated from the Inputs.

        Multi-output nodes map to a list of shapes (one per output). Raises GraphError naming
        the node whose inputs do not fit.
        """
        back = set(self.back_edges())
        result: dict[str, Shape | list[Shape]] = {}
        out_index = output_indices(self.edges)
        for name in self.topological_order():
            node = self.nodes[name]
            in_shapes = []
            for src in self.predecessors(name):
                if (src, name) in back:
                    continue
                shape = result[src]
                if self.nodes[src].multi_output:
                    i = out_index[(src, name)]
                    if i >= len(shape):
                        raise GraphError(f"node {src!r} has {len(shape)} outputs but more outgoing edges (to {name!r})")
                    shape = shape[i]
                in_shapes.append(tuple(shape))
            if not in_shapes and not isinstance(node, Input):
                raise GraphError(f"node {name!r} ({type(node).__name__}) has no input to take its shape from")
            try:
                shapes = node.output_shapes(in_shapes)
            except PrimitiveError as exc:
                raise GraphError(f"node {name!r}: {exc}") from exc
            for shape in shapes:
                if numel(shape) > MAX_NUMEL:
                    raise GraphError(f"node {name!r}: output shape {tuple(shape)} has more than 2**63-1 elements")
            result[name] = list(shapes) if node.multi_output else tuple(shapes[0])
        return result

    # -- comparison and summary --------------------------------------------------------------
    def diff(self, other: "Graph") -> list[str]:
        """Human-readable differences to another graph (empty when exactly equal, dtypes included)."""
        out: list[str] = []
        if list(self.nodes) != list(other.nodes):
            if set(self.nodes) != set(other.nodes):
                out.append(f"node names differ: {sorted(set(self.nodes) ^ set(other.nodes))}")
        for name in self.nodes:
            if name in other.nodes and not _node_equal(self.nodes[name], other.nodes[name]):
                out.append(f"node {name!r} differs: {self.nodes[name]!r} != {other.nodes[name]!r}")
        if self.edges != other.edges:
            out.append(f"edges differ: {self.edges} != {other.edges}")
        if not values_equal(self.metadata, other.metadata):
            out.append("graph metadata differs")
        if self.allow_cycles != other.allow_cycles:
            out.append("allow_cycles differs")
        return out

    def equals(self, other: "Graph") -> bool:
        """Exact equality: node names, types, field values and dtypes, edge order, metadata."""
        return isinstance(other, Graph) and not self.diff(other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return self.equals(other)

    __hash__ = None  # type: ignore[assignment]

    def num_params(self) -> int:
        """Total number of array elements held by the nodes."""
        return sum(node.num_params() for node in self.nodes.values())

    def summary(self) -> str:
        """A short text table: one line per node with type, output shape and parameter count."""
        try:
            shapes: dict[str, Any] = self.infer_shapes()
        except GraphError:
            shapes = {}
        width = max((len(n) for n in self.nodes), default=4)
        lines = [f"Graph: {len(self.nodes)} nodes, {len(self.edges)} edges, {self.num_params()} parameters"]
        for name, node in self.nodes.items():
            shape = shapes.get(name, "?")
            lines.append(f"  {name:<{width}}  {type(node).__name__:<14} {str(shape):<18} {node.num_params()}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Graph(nodes={len(self.nodes)}, edges={len(self.edges)}, inputs={self.inputs}, outputs={self.outputs})"


def output_indices(edges: Iterable[Edge]) -> dict[Edge, int]:
    """For each edge, its position among its source's outgoing edges: the output a multi-output source
    (ChannelSplit) hands to it."""
    seen: dict[str, int] = {}
    index: dict[Edge, int] = {}
    for s, d in edges:
        index[(s, d)] = seen.get(s, 0)
        seen[s] = index[(s, d)] + 1
    return index


def _node_equal(a: Node, b: Node) -> bool:
    return type(a) is type(b) and a == b
