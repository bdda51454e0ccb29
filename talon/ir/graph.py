"""The TALON IR graph: named primitive nodes (insertion order kept) and ordered (src, dst) edges.

Edge order is meaningful: merge nodes (Concat, Skip 'concatenate') take their inputs in edge order
and a multi-output node (ChannelSplit) hands output i to its i-th outgoing edge.

The adjacency (predecessors, successors, inputs, outputs, back edges, topological order) is built once
and cached; `nodes` and `edges` count their in-place changes, so a changed graph rebuilds it.
"""

from __future__ import annotations

import functools
import heapq
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import GraphError, PrimitiveError, require
from .primitives import Input, Node, Output
from .primitives.base import MAX_NUMEL, Shape, numel, values_equal

Edge = tuple[str, str]


def _counted(method: Callable) -> Callable:
    @functools.wraps(method)
    def changing(self, *args, **kwargs):
        self.changes += 1
        return method(self, *args, **kwargs)

    return changing


class NodeDict(dict):
    """A graph's nodes: a dict that counts its in-place changes (`changes`), so the graph's cache knows."""

    changes = 0


class EdgeList(list):
    """A graph's edges: a list that counts its in-place changes (`changes`), so the graph's cache knows."""

    changes = 0


for _name in ("__setitem__", "__delitem__", "__ior__", "pop", "popitem", "clear", "update", "setdefault"):
    setattr(NodeDict, _name, _counted(getattr(dict, _name)))
for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert", "pop", "remove",
              "clear", "sort", "reverse"):
    setattr(EdgeList, _name, _counted(getattr(list, _name)))


def adjacency(nodes: Iterable[str], edges: Iterable[Edge]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(predecessors, successors) of every node, each list in edge order; one pass over the edges."""
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    succ: dict[str, list[str]] = {n: [] for n in pred}
    for s, d in edges:
        succ.setdefault(s, []).append(d)
        pred.setdefault(d, []).append(s)
        pred.setdefault(s, [])
        succ.setdefault(d, [])
    return pred, succ


def depth_first_back_edges(edges: Sequence[Edge], roots: Iterable[str]) -> list[Edge]:
    """Edges closing a cycle, in edge order: depth-first search from each not yet visited root in turn,
    following every node's edges in edge order. Nodes not reachable from the roots are not searched."""
    _, succ = adjacency((), edges)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    back: set[Edge] = set()
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ.get(root, ())))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ[child])))
    return [e for e in edges if e in back]


def forward_order(nodes: Sequence[str], edges: Iterable[Edge], skip: set[Edge] | frozenset = frozenset()) -> list[str]:
    """Topological order over the edges not in `skip` (Kahn's algorithm); ties keep the order of `nodes`.
    Nodes on a cycle that `skip` does not break are left out."""
    rank = {n: i for i, n in enumerate(nodes)}
    pending = dict.fromkeys(nodes, 0)
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in edges:
        if edge not in skip:
            pending[edge[1]] += 1
            succ[edge[0]].append(edge[1])
    ready = [(rank[n], n) for n, count in pending.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for m in succ[n]:
            pending[m] -= 1
            if pending[m] == 0:
                heapq.heappush(ready, (rank[m], m))
    return order


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
        self.nodes = nodes or {}
        self.edges = edges or []
        self.metadata: dict[str, Any] = dict(metadata) if metadata else {}
        self.allow_cycles = bool(allow_cycles)
        self.validate()

    @property
    def nodes(self) -> NodeDict:
        """Node name -> primitive, in insertion order."""
        return self._nodes

    @nodes.setter
    def nodes(self, value: Mapping[str, Node]) -> None:
        self._nodes = NodeDict(value)
        self._cache_key: tuple[int, int] | None = None

    @property
    def edges(self) -> EdgeList:
        """(src, dst) pairs, in edge order."""
        return self._edges

    @edges.setter
    def edges(self, value: Iterable[tuple[str, str]]) -> None:
        self._edges = EdgeList(e if isinstance(e, str) else tuple(e) for e in value)
        self._cache_key = None

    def _cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """A structural fact computed once per version of nodes and edges."""
        version = (self._nodes.changes, self._edges.changes)
        if self._cache_key != version:
            self._cache: dict[str, Any] = {}
            self._cache_key = version
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _adjacency(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        return self._cached("adjacency", lambda: adjacency(self._nodes, self._edges))

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
            if src == dst and not self.allow_cycles:
                raise GraphError(f"edge {i} is a self-loop on {src!r} (a one-node cycle needs allow_cycles=True)")
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
        return list(self._cached("inputs", lambda: [n for n, node in self._nodes.items() if isinstance(node, Input)]))

    @property
    def outputs(self) -> list[str]:
        """Names of Output nodes, in node order."""
        return list(self._cached("outputs", lambda: [n for n, node in self._nodes.items() if isinstance(node, Output)]))

    def predecessors(self, name: str) -> list[str]:
        """Sources of the edges into `name`, in edge order."""
        return list(self._adjacency()[0].get(name, ()))

    def successors(self, name: str) -> list[str]:
        """Targets of the edges out of `name`, in edge order."""
        return list(self._adjacency()[1].get(name, ()))

    def output_index(self, src: str, dst: str) -> int:
        """Which output of `src` the edge src -> dst carries: its position among src's outgoing edges."""
        return self._cached("output_index", lambda: output_indices(self._edges))[(src, dst)]

    def back_edges(self) -> list[Edge]:
        """Edges that close a cycle: depth-first search following edges in edge order, from the Inputs,
        then from the other nodes, each in order of first appearance in the edges (isolated nodes last,
        by name). It depends on the edges only, never on node order, so a file round trip keeps it."""
        return list(self._cached("back_edges", self._find_back_edges))

    def _find_back_edges(self) -> list[Edge]:
        order = list(dict.fromkeys([n for e in self._edges for n in e] + sorted(self._nodes)))
        inputs = set(self.inputs)
        return depth_first_back_edges(self._edges, [n for n in order if n in inputs] + order)

    @property
    def is_cyclic(self) -> bool:
        """True when some edge closes a cycle."""
        return bool(self.back_edges())

    def topological_order(self) -> list[str]:
        """Nodes so that every edge (except cycle-closing ones) goes forward; ties keep node order."""
        return list(self._cached("order", lambda: forward_order(list(self._nodes), self._edges,
                                                                set(self.back_edges()))))

    # -- shapes ----------------------------------------------------------------------------
    def infer_shapes(self) -> dict[str, Shape | list[Shape]]:
        """Output shape of every node without batch, propagated from the Inputs.

        Multi-output nodes map to a list of shapes (one per output). Raises GraphError naming
        the node whose inputs do not fit.
        """
        back = set(self.back_edges())
        pred = self._adjacency()[0]
        result: dict[str, Shape | list[Shape]] = {}
        for name in self.topological_order():
            node = self.nodes[name]
            in_shapes = []
            for src in pred[name]:
                if (src, name) in back:
                    continue
                shape = result[src]
                if self.nodes[src].multi_output:
                    i = self.output_index(src, name)
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
                    raise GraphError(f"node {name!r}: output shape {tuple(shape)} has more than {MAX_NUMEL} elements "
                                     "per sample (talon.ir.primitives.base.MAX_NUMEL bounds every tensor)")
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
