"""TALON IR graph -> ONNX ModelProto (talon ops with function bodies attached), and writing models to disk."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from typing import BinaryIO

import onnx
from google.protobuf.message import DecodeError, Message
from onnx import helper as h
from onnx import numpy_helper as nh
from onnx.external_data_helper import set_external_data

from onnx_ops import DEFAULT_OPSET, DOMAIN, VERSION, attach_functions
from talon.ir import Graph, GraphError
from talon.ir._atomic import atomic_file, remove_unless_held

from talon.errors import require

from .errors import EXPORT_HINT, ConversionError, UnsupportedNode, UnsupportedOperatorError
from .export import EmitContext, emitter_for, jsonvalue

FORMAT_VERSION = "1"
MIN_OPSET = 20  # Gelu; Resize axes (18) and LayerNormalization (17) are older
TWO_GB = 2**31
DATA_MARK = b"talon.save_onnx\n"  # the first bytes of every data file save_onnx writes: only those are swept
DATA_ALIGNMENT = 4096  # large external tensors start on a page boundary so onnxruntime can memory-map them
ALIGN_ABOVE = 2**20  # (onnx's own threshold for aligning)
WRITE_CHUNK = 4 << 20
TENSOR_DATA_FIELDS = {"raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data"}


def ir_to_onnx(graph: Graph, opset: int | None = None) -> onnx.ModelProto:
    """An ONNX model computing one timestep of `graph`; stateful nodes' membranes are inputs and outputs."""
    require(graph, Graph, "ir_to_onnx: graph", ConversionError)
    opset = DEFAULT_OPSET if opset is None else opset
    if opset < MIN_OPSET:
        raise ConversionError(f"opset {opset} is too old: ir_to_onnx needs opset >= {MIN_OPSET}")
    if graph.is_cyclic:
        raise GraphError(f"ONNX graphs are acyclic; this graph has cycles closed by {graph.back_edges()}")
    missing = [UnsupportedNode(type(n).__name__, name, "", opset, "no ONNX exporter is registered for this IR primitive")
               for name, n in graph.nodes.items() if emitter_for(n) is None]
    if missing:
        raise UnsupportedOperatorError(missing, EXPORT_HINT, "IR node(s) cannot be exported to ONNX")
    ctx = EmitContext(graph, opset)
    for name in graph.topological_order():
        node = graph.nodes[name]
        emitter_for(node)(ctx, name, node)
    onnx_graph = h.make_graph(
        ctx.nodes, "talon", ctx.inputs + ctx.state_inputs, ctx.outputs + ctx.state_outputs, ctx.initializers
    )
    model = h.make_model(
        onnx_graph,
        opset_imports=[h.make_opsetid("", opset), h.make_opsetid(DOMAIN, VERSION),
                       *(h.make_opsetid(d, v) for d, v in ctx.domains.items() if d != DOMAIN)],
        functions=ctx.functions,
        producer_name="talon",
        ir_version=10,
    )
    props = {"talon.format": FORMAT_VERSION, "talon.edges": jsonvalue.encode([list(e) for e in graph.edges])}
    if graph.metadata:
        props["talon.metadata"] = jsonvalue.encode(graph.metadata)
    h.set_model_props(model, props)
    return attach_functions(model)


def save_onnx(model: onnx.ModelProto, path: str | os.PathLike, external_data_threshold: int = TWO_GB) -> None:
    """Write `model` atomically: a failure or a kill at any point leaves the previous file (and the data it
    reads) intact; parents are created and a replaced file's permissions are kept.

    Models of `external_data_threshold` bytes or more keep their initializers in `<file name>.<random>.data`
    beside the file, under a new name on every write, so the previous model never reads the new weights.
    Each write then removes every such data file (recognised by its first bytes, DATA_MARK) that the model
    now at `path` does not name and that no writer still holds (each holds its data file's lock until its model is in place), so neither kills nor
    concurrent writers leave data files behind; readers that lose a race with a writer read again
    (onnx_ops.guard.read_consistently).
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    try:
        with contextlib.ExitStack() as held:
            if model.ByteSize() >= external_data_threshold:
                head = _write_external_data(model, f"{path}.{secrets.token_hex(6)}.data", held)
            else:
                head = model
            with atomic_file(path) as f:
                _write_chunked(f, head.SerializeToString())
    finally:  # after a failure too: the new data file is then named by no model
        _sweep_data_files(path)


def _sweep_data_files(path: str) -> None:
    """Remove the data files save_onnx wrote for `path` that its current model does not name and no writer holds."""
    folder, base = os.path.split(path)
    ours = re.compile(re.escape(base) + r"\.[0-9a-f]{12}\.data")
    names = [n for n in os.listdir(folder) if ours.fullmatch(n)] if os.path.isdir(folder) else []
    if not names:
        return
    try:
        current = _locations(onnx.load(path, load_external_data=False)) if os.path.isfile(path) else set()
    except (DecodeError, ValueError, OSError):
        return  # not readable as a model (replaced by something else): its data files are not ours to judge
    for name in names:
        if name not in current:
            remove_unless_held(os.path.join(folder, name), starts_with=DATA_MARK)


def _locations(model: onnx.ModelProto) -> set[str]:
    """The external data files the model's initializers refer to."""
    return {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}


def _write_external_data(model: onnx.ModelProto, data_path: str, held: contextlib.ExitStack) -> onnx.ModelProto:
    """Write the model's initializers into the new file `data_path` (its lock held until `held` closes); return
    the model referring to it.

    The weights are neither copied nor modified in `model`: the returned head holds references only."""
    head, graph = onnx.ModelProto(), onnx.GraphProto()
    _copy_fields(model, head, skip={"graph"})
    _copy_fields(model.graph, graph, skip={"initializer"})
    location = os.path.basename(data_path)
    with atomic_file(data_path, hold=held) as f:
        f.write(DATA_MARK)
        for tensor in model.graph.initializer:
            if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.data_type == onnx.TensorProto.STRING:
                graph.initializer.append(tensor)
                continue
            data = tensor.raw_data if tensor.HasField("raw_data") else nh.to_array(tensor).tobytes()
            if len(data) >= ALIGN_ABOVE:
                f.seek(-f.tell() % DATA_ALIGNMENT, os.SEEK_CUR)
            offset = f.tell()
            _write_chunked(f, data)
            ref = graph.initializer.add()
            _copy_fields(tensor, ref, skip=TENSOR_DATA_FIELDS)
            ref.raw_data = b""  # set_external_data insists on the field
            set_external_data(ref, location=location, offset=offset, length=len(data))
            ref.ClearField("raw_data")
            ref.data_location = onnx.TensorProto.EXTERNAL
    head.graph.CopyFrom(graph)
    return head


def _write_chunked(f: BinaryIO, data: bytes) -> None:
    """Write `data` in pieces (no copies), so that progress is visible and a kill lands part way."""
    view = memoryview(data)
    for start in range(0, len(view), WRITE_CHUNK):
        f.write(view[start : start + WRITE_CHUNK])


def _copy_fields(src: Message, dst: Message, skip: set[str]) -> None:
    """Copy every set field of `src` into the empty `dst` except those named in `skip`."""
    for field, value in src.ListFields():
        if field.name in skip:
            continue
        if field.is_repeated:
            getattr(dst, field.name).extend(value)
        elif field.type == field.TYPE_MESSAGE:
            getattr(dst, field.name).CopyFrom(value)
        else:
            setattr(dst, field.name, value)
