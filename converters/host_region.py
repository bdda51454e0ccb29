"""Host fallback for onnx_to_ir: the nodes without a TALON IR equivalent, grouped into maximal connected regions,
each cut out of the model as one ONNX subgraph and kept as one HostRegion node run by onnxruntime.

The regions are found on the cleaned model after a first import pass (which records the refused nodes):
1. the refused nodes, plus every producer of a value they read that TALON does not compute (shape arithmetic
   such as Shape -> Gather -> Concat feeding a Reshape; a whole fused pattern when one of its members is needed);
2. connected components of those nodes are the regions (maximal by construction);
3. regions that would close a cycle through TALON nodes once contracted to one node (R1 -> T -> R2 -> R1)
   are merged with the nodes on the cycle: each strongly connected component of the contracted graph
   becomes one region, so the result is acyclic. Steps 1-3 repeat until nothing changes.
Each region is then replaced in the model by one `talon.host::Region` node, which the second import pass
turns into the HostRegion node made for it (converters.importers.talon_ops.custom_module).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Callable, Iterable, Iterator

import numpy as np
import onnx
import onnx_ir as ir
from onnx import helper as h

from onnx_ops import DOMAIN as TALON_DOMAIN
from onnx_ops import attach_functions
from talon.ir import Graph, HostRegion
from talon.ir.primitives.host import encode_shapes

from .coverage import REPORT_KEY, ConversionReport, RegionReport, count_model
from .errors import ConversionError, UnsupportedOperatorError
from .importers.context import Options, constant
from .importers.naming import sanitize, scope_of
from .importers.registry import importer
from .importers.talon_ops import custom_module

HOST_DOMAIN = "talon.host"
HOST_OP = "Region"  # attribute `key`: the key of its HostRegion in Options.custom_nodes

importer(HOST_OP, domain=HOST_DOMAIN, data_inputs=None)(custom_module)  # every input of a region is data


# -- conversion with host fallback ------------------------------------------------------------------------
def convert_with_fallback(model: ir.Model, options: Options, builder: Callable) -> Graph:
    """Import the cleaned model; regions of refused nodes become HostRegion nodes. The graph's metadata gets the
    conversion report under REPORT_KEY. `builder(model, options)` is onnx_to_ir's importer pass."""
    first = builder(model, options)
    first.lenient = True
    try:
        graph = first.build()
        regions: list[list[ir.Node]] = []
    except UnsupportedOperatorError:
        regions = _Regions(model.graph, first).find()
    carries = first._carries_data
    counted = [n for n in model.graph if n in first.needed or any(n in r for r in regions)]
    totals = count_model(counted)
    region_counts = [count_model(r) for r in regions]
    host = count_model(n for r in regions for n in r)
    made = _isolate(model, regions, _batch(model.graph), carries) if regions else {}
    if regions:
        graph = builder(model, replace(options, custom_nodes={**options.custom_nodes, **made})).build()
    names = {id(node): name for name, node in graph.nodes.items()}
    report = ConversionReport.of(totals, [
        RegionReport(names[id(node)], counts) for node, counts in zip(made.values(), region_counts)], host)
    graph.metadata[REPORT_KEY] = report.to_metadata()
    return graph


def _batch(graph: ir.Graph) -> int:
    """The batch size the model's constants may assume: the graph inputs' static batch, 0 when it is dynamic."""
    sizes = {v.shape[0] if v.shape is not None and len(v.shape) else None for v in graph.inputs}
    return sizes.pop() if len(sizes) == 1 and isinstance(next(iter(sizes)), int) else 0


def _reads(node: ir.Node) -> Iterator[ir.Value]:
    """Every value a node reads: its inputs and the outer values its subgraphs capture."""
    yield from (v for v in node.inputs if v is not None)
    for attr in node.attributes.values():
        graphs = [attr.value] if attr.type == ir.AttributeType.GRAPH else \
            list(attr.value) if attr.type == ir.AttributeType.GRAPHS else []
        for sub in graphs:
            own = {id(v) for n in sub.all_nodes() for v in n.outputs} | {id(v) for v in sub.inputs} | \
                {id(v) for v in sub.initializers.values()}
            yield from (v for n in sub.all_nodes() for v in n.inputs if v is not None and id(v) not in own)


def _data(node: ir.Node) -> Iterator[ir.Value]:
    """The values a node reads that are computed at run time (constants left out)."""
    return (v for v in _reads(node) if constant(v) is None)


def _through_shapes(nodes: Iterable[ir.Node], carries: Callable[[ir.Value], bool]) -> tuple[list[ir.Node], list[ir.Value]]:
    """The shape arithmetic the nodes read (computations of shapes and constants only, which each region copies
    rather than shares), and the data values read by the nodes or by that arithmetic (Shape(x) reads x)."""
    nodes = list(nodes)
    seen, copies, values = set(nodes), [], []
    stack = list(nodes)
    while stack:
        for value in _data(stack.pop()):
            if carries(value):
                values.append(value)
            elif value.producer() is not None and value.producer() not in seen:
                seen.add(value.producer())
                copies.append(value.producer())
                stack.append(value.producer())
    return copies, _unique(values)


class _Regions:
    """Finds the host regions from a failed first import pass (its needed, fused and refused nodes)."""

    def __init__(self, graph: ir.Graph, first):
        self.graph = graph
        self.carries: Callable[[ir.Value], bool] = first._carries_data
        self.needed: set[ir.Node] = first.needed
        self.fusions = first.fusions
        self.host: set[ir.Node] = set()
        self._pending: list[ir.Node] = []
        for node in first.refused:
            self._add(node)

    def find(self) -> list[list[ir.Node]]:
        """The regions, each a list of nodes in graph order, ordered by their first node."""
        while True:
            self._close()
            components = self._components()
            grown = self._merge_cycles(components)
            if not grown:
                order = {n: i for i, n in enumerate(self.graph)}
                regions = [sorted(c, key=order.__getitem__) for c in components]
                return sorted(regions, key=lambda r: order[r[0]])

    def _add(self, node: ir.Node) -> None:
        fused = self.fusions.get(node)
        for member in fused.members if fused is not None else [node]:
            if member not in self.host:
                self.host.add(member)
                self._pending.append(member)

    def _provided(self, value: ir.Value) -> bool:
        """True when TALON computes the value: a floating-point activation whose producer converts on its own
        (or is its fusion's output). Integer tensors are shape arithmetic, which the region computes itself."""
        producer = value.producer()
        if producer is None:
            return True  # a graph input
        fused = self.fusions.get(producer)
        floating = value.dtype is not None and value.dtype.is_floating_point()
        return floating and producer in self.needed and producer not in self.host and (
            fused is None or fused.output is value)

    def _close(self) -> None:
        """Pull in the producers of what the host nodes read that TALON does not compute."""
        while self._pending:
            node = self._pending.pop()
            for value in _through_shapes([node], self.carries)[1]:
                if value.producer() not in self.host and not self._provided(value):
                    self._add(value.producer())

    def _components(self) -> list[set[ir.Node]]:
        parent: dict[ir.Node, ir.Node] = {n: n for n in self.host}

        def root(n: ir.Node) -> ir.Node:
            while parent[n] is not n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        for node in self.host:
            for value in _data(node):
                if value.producer() in self.host and self.carries(value):
                    parent[root(node)] = root(value.producer())
        groups: dict[ir.Node, set[ir.Node]] = {}
        for node in self.host:
            groups.setdefault(root(node), set()).add(node)
        return list(groups.values())

    def _merge_cycles(self, components: list[set[ir.Node]]) -> bool:
        """Add to the host the TALON nodes on any cycle of the contracted graph; True when something was added."""
        unit: dict[ir.Node, object] = {}
        for i, component in enumerate(components):
            unit.update(dict.fromkeys(component, i))
        relevant = [n for n in self.graph if n in self.needed or n in self.host]
        succ: dict[object, set[object]] = {}
        for node in relevant:
            dst = unit.get(node, node)
            succ.setdefault(dst, set())
            reads = _through_shapes([node], self.carries)[1] if node in self.host else \
                [v for v in _data(node) if self.carries(v)]
            for value in reads:
                src = value.producer()
                if src is not None and (src in self.needed or src in self.host):
                    src_unit = unit.get(src, src)
                    if src_unit != dst:
                        succ.setdefault(src_unit, set()).add(dst)
        added = False
        for scc in _strongly_connected(succ):
            if len(scc) > 1:
                for u in scc:
                    if isinstance(u, ir.Node) and u not in self.host:
                        self._add(u)
                        added = True
        return added


def _strongly_connected(succ: dict[object, set[object]]) -> list[list[object]]:
    """Tarjan's strongly connected components, iteratively (graphs of thousands of nodes)."""
    index: dict[object, int] = {}
    low: dict[object, int] = {}
    stack: list[object] = []
    on_stack: set[object] = set()
    result: list[list[object]] = []
    counter = 0
    for start in succ:
        if start in index:
            continue
        work = [(start, iter(succ[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(succ.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                scc = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    scc.append(member)
                    if member is node:
                        break
                result.append(scc)
    return result


# -- cutting regions out of the model ---------------------------------------------------------------------
def _unique(values: Iterable[ir.Value]) -> list[ir.Value]:
    return list({id(v): v for v in values}.values())


def _isolate(model: ir.Model, regions: list[list[ir.Node]], batch: int,
             carries: Callable[[ir.Value], bool]) -> dict[str, HostRegion]:
    """Replace each region by one talon.host::Region node; returns the HostRegion made for each, by key. The
    shape arithmetic a region reads is copied into it and also stays in the model (other nodes may read it)."""
    graph = model.graph
    order = {n: i for i, n in enumerate(graph)}
    cuts = []
    for nodes in regions:
        inside = set(nodes)
        copies, reads = _through_shapes(nodes, carries)
        inputs = [v for v in reads if v.producer() not in inside]
        outputs = _unique(v for n in nodes for v in n.outputs if v.is_graph_output()
                          or any(u.node not in inside for u in v.uses()))
        cuts.append((nodes, sorted([*nodes, *copies], key=order.__getitem__), inputs, outputs))
    unknown = _unique(v for *_, ins, outs in cuts for v in (*ins, *outs) if _features(v) is None)
    if unknown:
        _probe(model, unknown, batch)
    made: dict[str, HostRegion] = {}
    replaced: dict[ir.Value, ir.Value] = {}  # outputs of regions already cut -> their region node's outputs
    for nodes, members, inputs, outputs in cuts:
        key = _key(nodes, made)
        made[key] = _region(model, members, inputs, outputs, batch, key)
        new = ir.Node(HOST_DOMAIN, HOST_OP, [replaced.get(v, v) for v in inputs],
                      attributes=[ir.AttrString("key", key)], num_outputs=len(outputs), name=key)
        ir.convenience.replace_nodes_and_values(graph, nodes[-1], nodes, [new], outputs, list(new.outputs))
        replaced.update(zip(outputs, new.outputs))
    model.opset_imports[HOST_DOMAIN] = 1
    graph.sort()
    return made


def _key(nodes: list[ir.Node], taken: dict) -> str:
    """The region's name: the innermost module scope its nodes share, plus `host` (unique among the regions)."""
    scopes = [s for s in (scope_of(n) for n in nodes) if s]
    common = os.path.commonprefix(scopes)[-1] if scopes and os.path.commonprefix(scopes) else ""
    base = f"{sanitize(common)}.host" if sanitize(common) else "host"
    key, i = base, 1
    while key in taken:
        key, i = f"{base}_{i}", i + 1
    return key


def _region(model: ir.Model, nodes: list[ir.Node], inputs: list[ir.Value], outputs: list[ir.Value], batch: int,
            key: str) -> HostRegion:
    """The HostRegion holding `nodes` as a standalone ONNX model."""
    if not inputs:
        raise ConversionError(f"host region {key!r} ({sorted({n.op_type for n in nodes})}) reads no activation; "
                              "a region computed from constants alone cannot be placed in the graph")
    protos = [ir.serde.serialize_node(n) for n in nodes]
    for i, proto in enumerate(protos):
        proto.name = proto.name or f"{proto.op_type}_{i}"
    consts = _unique(v for n in nodes for v in _reads(n) if constant(v) is not None)
    initializers = []
    for value in consts:
        tensor = ir.serde.serialize_tensor(value.const_value)
        tensor.name = value.name
        initializers.append(tensor)
    onnx_graph = h.make_graph(protos, key, [ir.serde.serialize_value(v) for v in inputs],
                              [ir.serde.serialize_value(v) for v in outputs], initializers)
    domains = {n.domain for n in nodes} | {""}
    opsets = [h.make_opsetid(d, v) for d, v in model.opset_imports.items() if d in domains or d == "ai.onnx"]
    proto = h.make_model(onnx_graph, opset_imports=opsets, ir_version=model.ir_version,
                         functions=[ir.serde.serialize_function(f) for f in model.functions.values()])
    if TALON_DOMAIN in domains:
        proto = attach_functions(proto)
    in_shapes, out_shapes = [_features(v) for v in inputs], [_features(v) for v in outputs]
    params = sum(int(np.prod(t.dims)) for t in initializers
                 if onnx.helper.tensor_dtype_to_np_dtype(t.data_type).kind == "f")
    return HostRegion(model=np.frombuffer(proto.SerializeToString(), np.uint8).copy(),
                      in_shapes=encode_shapes(in_shapes), out_shapes=encode_shapes(out_shapes), batch=batch,
                      param_count=params)


def _features(value: ir.Value) -> tuple[int, ...] | None:
    """A value's static shape without the batch; None when shape inference left part of it unknown."""
    shape = value.shape
    if shape is not None and len(shape) >= 1 and all(isinstance(d, int) for d in list(shape)[1:]):
        return tuple(int(d) for d in list(shape)[1:])
    return None


def _probe(model: ir.Model, values: list[ir.Value], batch: int) -> None:
    """Fill in the shapes that shape inference left unknown (regions' inputs and outputs) from one onnxruntime
    run of the model on zeros, with those values as extra outputs."""
    import onnxruntime as ort

    proto = ir.serde.serialize_model(model)
    known = {o.name for o in proto.graph.output}
    for value in values:
        if value.name not in known:
            elem = value.dtype.value if value.dtype is not None else onnx.TensorProto.FLOAT
            proto.graph.output.append(h.make_tensor_value_info(value.name, elem, None))
    feeds = {}
    for info in proto.graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]
        dims = [batch or 1, *dims[1:]] if dims else dims
        feeds[info.name] = np.zeros(dims, onnx.helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type))
    try:
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        results = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    except Exception as exc:  # onnxruntime's own exception types
        raise ConversionError(f"shape inference left the shapes of {[v.name for v in values]} unknown, and "
                              f"onnxruntime could not run the model to find them: {exc}") from exc
    for value in values:
        found = results[value.name].shape
        if not found:
            raise ConversionError(f"host region boundary {value.name!r} is a scalar: it needs a batch dim")
        first = value.shape[0] if value.shape is not None and len(value.shape) == len(found) else None
        value.shape = ir.Shape([first, *found[1:]])
