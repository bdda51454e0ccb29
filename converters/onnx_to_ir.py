"""ONNX to TALON IR: clean the model with the ecosystem's passes, then convert node by node through the
importer registry (converters/importers), in one linear pass over the graph.

Every node the importers cannot map is collected and reported together in one UnsupportedOperatorError;
no partial or approximate graph is ever returned.
"""

from __future__ import annotations

import math
from dataclasses import replace
import os
from typing import Mapping, Sequence

import numpy as np
import onnx
import onnx_ir as ir

import onnx_ops  # the talon op specs (their schemas are registered, so shape inference knows the talon ops)
from onnx_ops.guard import read_consistently
from talon.ir import Graph, GraphError, Input, Output, PrimitiveError, Skip, SpikingAffine
from talon.ir._files import require_regular_file
from talon.ir.established import with_required_fields
from talon.ir.primitives import Node
from talon.ir.primitives.base import MAX_NUMEL

from .cleanup import clean, upgrade_opset
from .errors import ConversionError, UnsupportedNode, UnsupportedOperatorError
from .host_region import convert_with_fallback
from .safety import check_model
from .importers import Alias, Emit, Fusion, NodeContext, Options, Unsupported, fusion_matchers, lookup
from .importers.context import UnknownShape, constant, dims
from .importers.naming import Namer, sanitize, scope_of
from .importers.registry import Importer, canonical_domain
from .importers.restore import is_talon_export, restore

NEWEST_OPSET = onnx.defs.onnx_opset_version()
ONNX_NAMES = "onnx.names"  # graph metadata: {"inputs": {IR Input: ONNX graph input}, "outputs": {IR Output: ONNX output}}
SourceRef = tuple[str, int]  # (IR node name, output index)


def load_model(model_or_path: onnx.ModelProto | str | os.PathLike) -> tuple[onnx.ModelProto, str | None]:
    """The ModelProto (external data not loaded) and the folder its external data is read from (None for an
    in-memory model), passed through the guard (converters.safety): nothing outside that folder is ever opened
    and nothing in the model can kill the process in onnx's native code."""
    if isinstance(model_or_path, onnx.ModelProto):
        check_model(model_or_path, None, _native)
        return model_or_path, None
    if not isinstance(model_or_path, (str, os.PathLike)):
        raise ConversionError(f"expected an onnx.ModelProto or a path, got {type(model_or_path).__name__}")
    path = os.fspath(model_or_path)
    require_regular_file(path, lambda why: ConversionError(f"{path}: {why}"))
    try:
        proto = onnx.load(path, load_external_data=False)
    except OSError as exc:
        raise ConversionError(f"{path}: cannot read the ONNX model: {exc}") from exc
    except Exception as exc:  # protobuf DecodeError and friends
        raise ConversionError(f"{path}: not an ONNX model: {exc}") from exc
    folder = os.path.dirname(os.path.abspath(path))
    try:
        check_model(proto, folder, _native)
    except ConversionError as exc:
        raise ConversionError(f"{path}: {exc}") from exc
    return proto, folder


def _native(proto: onnx.ModelProto) -> None:
    """The native code clean() runs first: opset conversion, then onnx's shape inference."""
    onnx.shape_inference.infer_shapes(upgrade_opset(proto), strict_mode=False, data_prop=True)


def onnx_to_ir(
    model_or_path: onnx.ModelProto | str | os.PathLike,
    spiking: bool = False,
    weight_bits: int = 8,
    accumulator_bits: int = 16,
    spike_mode: str = "binary",
    *,
    custom_nodes: Mapping[str, Node] | None = None,
    host_fallback: bool = False,
) -> Graph:
    """Convert an ONNX model (or file) to a TALON IR graph; dense layers become SpikingAffine with spiking=True.

    Raises UnsupportedOperatorError listing every node without an exact TALON IR equivalent, unless
    `host_fallback`: then each maximal connected region of such nodes becomes one HostRegion node (an ONNX
    subgraph run by onnxruntime), and graph.metadata["conversion_report"] says how much is TALON-native
    (converters.coverage.ConversionReport.from_metadata reads it).
    """
    if spiking:
        _check_spiking_options(weight_bits, accumulator_bits, spike_mode)
    options = Options(spiking, weight_bits, accumulator_bits, spike_mode, dict(custom_nodes or {}))

    def convert() -> Graph:
        proto, folder = load_model(model_or_path)
        if is_talon_export(proto) and not spiking:
            return restore(proto, folder)
        source = os.fspath(model_or_path) if folder is not None else f"ONNX model {proto.graph.name!r}"
        _strict_shapes(proto, source)
        declared = frozenset(o.name for o in proto.graph.output if _static(o.type))
        options_here = replace(options, declared_outputs=declared)
        model = clean(proto, folder, source)
        if host_fallback:
            return convert_with_fallback(model, options_here, _Builder)
        return _Builder(model, options_here).build()

    return read_consistently(model_or_path, convert)  # again when a writer replaced the file meanwhile


def _numel(value: ir.Value) -> int:
    """Elements per sample (all dims but the first) of a value whose ONNX shape is static; 0 when unknown."""
    shape = dims(value)
    if not shape or any(not isinstance(d, int) for d in shape):
        return 0
    return math.prod(shape[1:])


def _check_spiking_options(weight_bits: int, accumulator_bits: int, spike_mode: str) -> None:
    """ConversionError, once and before any work, for options SpikingAffine refuses (its own validation)."""
    try:
        SpikingAffine(weight=np.zeros((1, 1), np.float32), bias=np.zeros(1, np.float32), weight_bits=weight_bits,
                      accumulator_bits=accumulator_bits, spike_mode=spike_mode)
    except PrimitiveError as exc:
        raise ConversionError(f"invalid spiking options: {exc}") from None


def _static(t: onnx.TypeProto) -> bool:
    """Whether a value's type declares every dim of its shape."""
    return t.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in t.tensor_type.shape.dim)


def _checked(graph: Graph, declared: frozenset[str] | None) -> Graph:
    """The converted graph, once its shapes propagate and every Output receives the shape the model declares.

    An Output whose shape the source model left to onnx's shape inference takes the shape the graph computes
    (the runtimes' rule where onnx's inference differs, e.g. ceil_mode pooling before opset 19)."""
    try:
        shapes = graph.infer_shapes()
    except GraphError as exc:
        raise ConversionError(f"the converted graph's shapes do not fit together: {exc}") from exc
    for name, node in graph.nodes.items():
        if isinstance(node, Output):
            reached = {tuple(shapes[src]) for src in graph.predecessors(name) if not graph.nodes[src].multi_output}
            if reached and reached != {tuple(int(d) for d in node.shape)}:
                onnx_name = graph.metadata.get(ONNX_NAMES, {}).get("outputs", {}).get(name)
                if declared is not None and onnx_name not in declared and len(reached) == 1:
                    graph.nodes[name] = Output(shape=reached.pop(), metadata=node.metadata)
                    continue
                raise ConversionError(f"graph output {name!r} declares shape {tuple(node.shape)} but the converted "
                                      f"graph gives it {sorted(reached)}")
    return graph


def _strict_shapes(proto: onnx.ModelProto, source: str) -> None:
    """ConversionError when onnx's shape inference (strict) finds the model inconsistent, naming the node."""
    try:
        onnx.shape_inference.infer_shapes(upgrade_opset(proto), strict_mode=True, data_prop=True)
    except onnx.shape_inference.InferenceError as exc:
        raise ConversionError(f"{source}: onnx's shape inference refuses the model: {exc}") from None
    except Exception:  # noqa: BLE001  (other failures are the clean-up stages' to report, with their stage)
        pass


def outputs_of(nodes: Sequence[ir.Node]) -> list[ir.Value]:
    """Every output value of the given nodes."""
    return [v for n in nodes for v in n.outputs if v is not None]


class _Builder:
    """Walks the cleaned graph once, in its topological order, and collects IR nodes and edges."""

    def __init__(self, model: ir.Model, options: Options):
        self.graph = model.graph
        self.opsets = {canonical_domain(d): v for d, v in model.opset_imports.items()}
        self.options = options
        self.namer = Namer(self.graph)
        self.nodes: dict[str, Node] = {}
        self.sources: dict[ir.Value, SourceRef] = {}
        self.raw_edges: list[tuple[str, int, str]] = []
        self.unsupported: list[UnsupportedNode] = []
        self.refused: list[ir.Node] = []  # the nodes behind `unsupported` (host_fallback makes regions of them)
        self.lenient = False  # host fallback: an importer's unexpected exception refuses the node instead
        self.output_counts: dict[str, int] = {}  # multi-output IR nodes
        self.onnx_names: dict[str, dict[str, str]] = {"inputs": {}, "outputs": {}}  # IR node -> ONNX value name
        self._data_memo: dict[ir.Value, bool] = {}
        self.refused_values: set[ir.Value] = set()  # outputs of refused nodes and of the nodes they starve

    # -- the walk ---------------------------------------------------------------------------------
    def build(self) -> Graph:
        fusions = self.fusions = self._fusions()
        needed = self.needed = self._needed(fusions)
        inputs = self._inputs(needed)
        last = self._last_members(fusions)
        for node in self.graph:
            fused = fusions.get(node)
            if fused is None and node not in needed:
                continue
            if fused is not None and (last[id(fused)] is not node or not any(m in needed for m in fused.members)):
                continue
            self._convert(node, fused)
        if self.unsupported:
            raise UnsupportedOperatorError(self.unsupported)
        outputs = self._outputs(inputs)
        passthroughs: dict[str, Node] = {}
        edges = self._edges({**inputs, **self.nodes, **outputs}, passthroughs)
        return _checked(with_required_fields(Graph({**inputs, **self.nodes, **passthroughs, **outputs}, edges,
                                                   metadata={ONNX_NAMES: self.onnx_names})),
                        self.options.declared_outputs)

    def _context(self, node: ir.Node) -> NodeContext:
        return NodeContext(node, self.opsets.get(canonical_domain(node.domain), 1), self.options)

    def _fusions(self) -> dict[ir.Node, Fusion]:
        """Every node that belongs to a fused pattern (Erf-GELU, MatMul+Add), mapped to its fusion."""
        found: dict[ir.Node, Fusion] = {}
        for node in self.graph:
            for match in fusion_matchers(node):
                fused = None if node in found else match(node, self._context(node))
                if fused is not None and not any(m in found for m in fused.members):
                    found.update(dict.fromkeys(fused.members, fused))
                    break
        return found

    def _last_members(self, fusions: Mapping[ir.Node, Fusion]) -> dict[int, ir.Node]:
        """For each fusion (by id), its member that comes last in graph order: it is converted there."""
        last: dict[int, ir.Node] = {}
        for node in self.graph:
            if node in fusions:
                last[id(fusions[node])] = node
        return last

    def _needed(self, fusions: Mapping[ir.Node, Fusion]) -> set[ir.Node]:
        """Nodes that carry activations to the graph outputs (shape computations are left out)."""
        needed: set[ir.Node] = set()
        stack = [v.producer() for v in self.graph.outputs if v.producer() is not None]
        while stack:
            node = stack.pop()
            if node in needed:
                continue
            needed.add(node)
            fused = fusions.get(node)
            values = [fused.input, *(v for m in fused.members for v in m.inputs)] if fused is not None else node.inputs
            stack.extend(v.producer() for v in values if v is not None and v.producer() is not None
                         and constant(v) is None and self._carries_data(v))
        return needed

    def _carries_data(self, value: ir.Value) -> bool:
        """True when the value depends on the values of a graph input, not only on shapes and constants (shape
        arithmetic, which importers read through shape_elements, is never converted or reported)."""
        memo = self._data_memo
        stack, visiting = [value], set()  # visiting: values whose inputs are being decided (a cycle ends there)
        while stack:
            v = stack[-1]
            if v in memo:
                stack.pop()
                continue
            producer = v.producer()
            if producer is None or constant(v) is not None or producer.op_type in ("Shape", "Size"):
                memo[v] = producer is None and constant(v) is None  # graph inputs carry data
                stack.pop()
                continue
            pending = [u for u in producer.inputs if u is not None and u not in memo and u not in visiting]
            if pending and v not in visiting:
                visiting.add(v)
                stack.extend(pending)
                continue
            # a value on a cycle (malformed ONNX, refused later) counts as data, which ends the walk
            memo[v] = any(memo.get(u, True) for u in producer.inputs if u is not None)
            visiting.discard(v)
            stack.pop()
        return memo[value]

    @staticmethod
    def _data_values(node: ir.Node, found: Importer | None) -> list[ir.Value]:
        """The node's activation inputs: present, non-constant values in the importer's data slots (all
        inputs when no importer knows the node, so that everything upstream is still visited and reported)."""
        slots = range(len(node.inputs)) if found is None or found.data_inputs is None else found.data_inputs
        return [node.inputs[i] for i in slots if i < len(node.inputs) and node.inputs[i] is not None
                and constant(node.inputs[i]) is None]

    def _importer(self, node: ir.Node) -> Importer | None:
        domain = canonical_domain(node.domain)
        opset = self.opsets.get(domain, 1)
        if domain == "" and opset > NEWEST_OPSET:
            return None
        return lookup(domain, node.op_type, opset)

    def _inputs(self, needed: set[ir.Node]) -> dict[str, Node]:
        """Input nodes for the graph inputs that carry data (state inputs of neurons are left out)."""
        data = [v for v in self.graph.inputs if not v.uses() or self._used_as_data(v, needed)]
        names = ["input"] if len(data) == 1 else [sanitize(v.name) or "input" for v in data]
        result = {}
        for value, name in zip(data, names):
            name = self.namer.unique(name)
            shape = dims(value)
            if not shape or any(d is None for d in shape[1:]):
                raise ConversionError(f"graph input {value.name!r} needs a batch dim and static feature dims, got {shape}")
            result[name] = Input(shape=np.array(shape[1:], dtype=np.int64))
            self.onnx_names["inputs"][name] = value.name
            self.sources[value] = (name, 0)
        return result

    def _used_as_data(self, value: ir.Value, needed: set[ir.Node]) -> bool:
        """True when a converted node reads the value as an activation (or it is a graph output too)."""
        return value.is_graph_output() or any(
            use.node in needed and value in self._data_values(use.node, self._importer(use.node)) for use in value.uses())

    # -- one node ---------------------------------------------------------------------------------
    def _convert(self, node: ir.Node, fused: Fusion | None) -> None:
        oversized = [v for v in node.outputs if _numel(v) > MAX_NUMEL]
        if oversized:  # refused before any importer works on (or allocates) a tensor of that size
            self._refuse(node, f"output {oversized[0].name!r} of shape {dims(oversized[0])} has more than "
                               f"{MAX_NUMEL} elements per sample (talon.ir.primitives.base.MAX_NUMEL)")
            return
        ctx = self._context(node if fused is None else fused.members[0])
        try:
            if fused is not None:
                result, inputs, outputs = fused.build(), [fused.input], fused.outputs or [fused.output]
            else:
                found = self._importer(node)
                if found is None:
                    raise Unsupported(self._missing_reason(node))
                result = found.fn(ctx)
                inputs = self._data_values(node, found)
                outputs = list(node.outputs)
        except Unsupported as exc:
            members = [node] if fused is None else fused.members
            upstream = any(v in self.refused_values for m in members for v in m.inputs)
            self._refuse(node if fused is None else fused.members[0], exc.reason,
                         knock_on=upstream and isinstance(exc, UnknownShape), outputs=outputs_of(members))
            return
        except ValueError as exc:  # a primitive refused the values it was given (PrimitiveError)
            self._refuse(node, str(exc), outputs=outputs_of([node] if fused is None else fused.members))
            return
        except Exception as exc:  # an importer's own failure: with host fallback the node runs on the host
            if not self.lenient:
                raise
            self._refuse(node, f"the importer failed: {type(exc).__name__}: {exc}")
            return
        missing = [v.name for v in inputs if v not in self.sources]
        if any(v not in self.sources and v.producer() not in self.needed for v in inputs):
            self._refuse(node, f"inputs {missing} are computed from constants and shapes only (such as a class "
                               "token expanded to the batch), which no TALON node carries")
            return
        if missing:
            if self.unsupported:
                self.refused_values.update(outputs)  # an upstream node was refused; it is already reported
                return
            raise ConversionError(f"node {node.name!r} ({node.op_type}): inputs {missing} come from no converted node")
        if isinstance(result, Alias):
            self.sources[outputs[0]] = self.sources[node.inputs[result.index]]
            return
        self._emit(ctx.node, result if isinstance(result, Emit) else Emit([("", result)]), inputs, outputs)

    def _missing_reason(self, node: ir.Node) -> str:
        domain = canonical_domain(node.domain)
        opset = self.opsets.get(domain, 1)
        if domain == "" and opset > NEWEST_OPSET:
            return f"opset {opset} is newer than the newest this onnx knows ({NEWEST_OPSET})"
        if any(lookup(domain, node.op_type, v) for v in range(1, NEWEST_OPSET + 1)):
            return f"{node.op_type} is supported at other opsets, not at opset {opset}"
        return "no TALON IR primitive corresponds to this operator"

    def _refuse(self, node: ir.Node, reason: str, knock_on: bool = False, outputs: Sequence[ir.Value] = ()) -> None:
        """Record a refusal (reported unless it is only the knock-on of an upstream one; host fallback takes both);
        its outputs count as refused."""
        self.refused_values.update(v for v in outputs if v is not None)
        self.refused.append(node)
        if knock_on:
            return
        domain = canonical_domain(node.domain)
        scope = scope_of(node)
        self.unsupported.append(UnsupportedNode(node.op_type, node.name or "", domain, self.opsets.get(domain, 1),
                                                reason, module=scope[-1] if scope and scope[-1] else None))

    def _emit(self, naming: ir.Node, emit: Emit, inputs: list[ir.Value], outputs: list[ir.Value]) -> None:
        main = next((n for s, n in emit.nodes if s == ""), emit.nodes[-1][1])
        base = emit.name or self.namer.base(naming, type(main).__name__)
        previous: list[SourceRef] = [self.sources[v] for v in inputs]
        for suffix, ir_node in emit.nodes:
            name = self.namer.unique(f"{base}.{suffix}" if suffix else base)
            self.nodes[name] = ir_node
            self.raw_edges.extend((src, index, name) for src, index in previous)
            previous = [(name, 0)]
        last_name, last = previous[0][0], emit.nodes[-1][1]
        count = len(outputs) if last.multi_output else 1
        for i, value in enumerate(outputs[:count]):
            if value is not None:
                self.sources[value] = (last_name, i)
        if last.multi_output:
            self.output_counts[last_name] = count

    # -- outputs and edges ------------------------------------------------------------------------
    def _outputs(self, inputs: dict[str, Node]) -> dict[str, Node]:
        """Output nodes for the graph outputs that carry data (next membranes of neurons are state)."""
        data = [v for v in self.graph.outputs if v in self.sources]
        stray = [v.name for v in self.graph.outputs if v not in self.sources and not self._is_state(v)]
        if stray:
            raise ConversionError(f"graph output(s) {stray} are not produced by any converted node")
        names = ["output"] if len(data) == 1 else [sanitize(v.name) or "output" for v in data]
        result = {}
        shapes = None
        for value, name in zip(data, names):
            name = self.namer.unique(name)
            shape = dims(value)
            if not shape or any(d is None for d in shape[1:]):
                shapes = shapes or self._ir_shapes(inputs)
                shape = (None, *shapes[self.sources[value][0]])
            result[name] = Output(shape=np.array(shape[1:], dtype=np.int64))
            self.onnx_names["outputs"][name] = value.name
            self.raw_edges.append((*self.sources[value], name))
        return result

    def _is_state(self, value: ir.Value) -> bool:
        """True for a next-state output of a stateful talon node (its op spec declares the state items)."""
        producer = value.producer()
        if producer is None or canonical_domain(producer.domain) != onnx_ops.DOMAIN:
            return False
        spec = onnx_ops.op_spec(producer.op_type)
        return spec is not None and 0 < value.index() <= len(spec.state)

    def _ir_shapes(self, inputs: dict[str, Node]) -> dict:
        """IR shapes of the converted nodes, for outputs whose ONNX shape inference left unknown."""
        edges = [(s, d) for s, _, d in self.raw_edges if d in self.nodes]
        return Graph({**inputs, **self.nodes}, list(dict.fromkeys(edges))).infer_shapes()

    def _edges(self, nodes: Mapping[str, Node], passthroughs: dict[str, Node]) -> list[tuple[str, str]]:
        """Final (src, dst) edges in order. A multi-output node hands output i to its i-th edge: an output that
        feeds several nodes, none, or a merge node goes through a passthrough Skip. A repeated (src, dst)
        pair (Add(x, x)) also goes through a passthrough Skip. New passthrough nodes go into `passthroughs`."""
        fanout: dict[SourceRef, list[str]] = {}
        for src, index, dst in self.raw_edges:
            if src in self.output_counts:
                fanout.setdefault((src, index), []).append(dst)
        via: dict[SourceRef, str] = {}
        for name, count in self.output_counts.items():
            for i in range(count):
                dsts = fanout.get((name, i), [])
                if len(dsts) != 1 or nodes[dsts[0]].merge:
                    via[(name, i)] = self._passthrough(passthroughs, f"{name}.{i}")
        edges: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()

        def add(src: str, dst: str) -> None:
            if (src, dst) in seen:
                hop = self._passthrough(passthroughs, f"{dst}.in")
                add(src, hop)
                src = hop
            seen.add((src, dst))
            edges.append((src, dst))

        started: set[str] = set()
        for src, index, dst in self.raw_edges:
            if src not in self.output_counts:
                add(src, dst)
                continue
            if src not in started:
                started.add(src)
                for i in range(self.output_counts[src]):
                    add(src, via.get((src, i)) or fanout[(src, i)][0])
            if (src, index) in via:
                add(via[(src, index)], dst)
        return edges

    def _passthrough(self, nodes: dict[str, Node], name: str) -> str:
        name = self.namer.unique(name)
        nodes[name] = Skip(skip_type="passthrough")
        return name
