"""TALON IR graph -> ONNX ModelProto (talon ops with function bodies attached), and writing models to disk."""

from __future__ import annotations

import os
import shutil
import tempfile

import onnx
from onnx import helper as h

from onnx_ops import DEFAULT_OPSET, DOMAIN, VERSION, attach_functions
from talon.ir import Graph, GraphError

from .errors import UnsupportedOperatorError
from .export import EmitContext, emitter_for, jsonvalue

FORMAT_VERSION = "1"
MIN_OPSET = 20  # Gelu; Resize axes (18) and LayerNormalization (17) are older
TWO_GB = 2**31


def ir_to_onnx(graph: Graph, opset: int | None = None) -> onnx.ModelProto:
    """An ONNX model computing one timestep of `graph`; stateful nodes' membranes are inputs and outputs."""
    opset = DEFAULT_OPSET if opset is None else opset
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} is too old: ir_to_onnx needs opset >= {MIN_OPSET}")
    if graph.is_cyclic:
        raise GraphError(f"ONNX graphs are acyclic; this graph has cycles closed by {graph.back_edges()}")
    missing = sorted({type(n).__name__ for n in graph.nodes.values() if emitter_for(n) is None})
    if missing:
        raise UnsupportedOperatorError(f"no ONNX emitter for IR primitive(s) {missing}")
    ctx = EmitContext(graph, opset)
    for name in graph.topological_order():
        node = graph.nodes[name]
        emitter_for(node)(ctx, name, node)
    onnx_graph = h.make_graph(
        ctx.nodes, "talon", ctx.inputs + ctx.state_inputs, ctx.outputs + ctx.state_outputs, ctx.initializers
    )
    model = h.make_model(
        onnx_graph,
        opset_imports=[h.make_opsetid("", opset), h.make_opsetid(DOMAIN, VERSION)],
        producer_name="talon",
        ir_version=10,
    )
    props = {"talon.format": FORMAT_VERSION, "talon.edges": jsonvalue.encode([list(e) for e in graph.edges])}
    if graph.metadata:
        props["talon.metadata"] = jsonvalue.encode(graph.metadata)
    h.set_model_props(model, props)
    return attach_functions(model)


def save_onnx(model: onnx.ModelProto, path: str | os.PathLike, external_data_threshold: int = TWO_GB) -> None:
    """Write `model` atomically (temp file + rename in the same folder, parents created).

    Models of `external_data_threshold` bytes or more keep their tensors in `<file name>.data` beside the file.
    """
    path = os.path.abspath(os.fspath(path))
    folder, base = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{base}.", dir=folder)
    try:
        target = os.path.join(tmp, base)
        if model.ByteSize() >= external_data_threshold:
            data = base + ".data"
            onnx.save_model(
                model.__deepcopy__({}),
                target,
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=data,
                size_threshold=0,
            )
            os.replace(os.path.join(tmp, data), os.path.join(folder, data))
        else:
            onnx.save_model(model, target)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
