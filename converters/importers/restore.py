"""Exact restore of graphs that converters.ir_to_onnx wrote (its convention is documented in
converters/export/__init__.py): nodes from the `talon.*` metadata_props, edges from `talon.edges`."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import onnx
from onnx import numpy_helper

from talon.ir import Graph, get_primitive
from talon.ir.primitives import Node

from ..errors import ConversionError
from ..export import ARRAYS, METADATA, OWNER, PARAMS, PRIMITIVE
from ..export.jsonvalue import decode

FORMAT_KEY, EDGES_KEY = "talon.format", "talon.edges"


def _props(proto) -> dict[str, str]:
    return {p.key: p.value for p in proto.metadata_props}


def is_talon_export(proto: onnx.ModelProto) -> bool:
    """True when the model carries the IR graph as converters.ir_to_onnx records it."""
    props = _props(proto)
    return FORMAT_KEY in props and EDGES_KEY in props


def _decode(text: str, where: str) -> Any:
    """A talon.* JSON property's value; ConversionError naming where it was found when it is corrupt."""
    try:
        return decode(text)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:  # json, numpy dtype/reshape
        raise ConversionError(f"{where} is not a valid talon JSON value: {type(exc).__name__}: {exc}") from None


def _typed(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        raise ConversionError(f"{where} must be a JSON {kind.__name__}, got {type(value).__name__}")
    return value


def _array(tensor: onnx.TensorProto, folder: str | None) -> np.ndarray:
    try:
        return numpy_helper.to_array(tensor, base_dir=folder or "")
    except Exception as exc:  # onnx ValidationError, ValueError for truncated or mistyped data, OSError
        raise ConversionError(f"initializer {tensor.name!r} cannot be read: {type(exc).__name__}: {exc}") from None


def _node(name: str, props: Mapping[str, str], initializers: Mapping[str, onnx.TensorProto],
          folder: str | None, uses: set[str]) -> Node:
    """The node a holder's talon.* properties describe; its arrays must be initializers the holder or its helper
    nodes read (`uses`): the metadata is trusted only where it agrees with the ONNX nodes."""
    where = f"node {name!r}"
    try:
        cls = get_primitive(props[PRIMITIVE])
    except KeyError as exc:
        raise ConversionError(f"{where}: {PRIMITIVE} names no TALON IR primitive: {exc}") from None
    fields = _typed(_decode(props.get(PARAMS, "{}"), f"{where}: {PARAMS}"), dict, f"{where}: {PARAMS}")
    arrays = _typed(_decode(props.get(ARRAYS, "{}"), f"{where}: {ARRAYS}"), dict, f"{where}: {ARRAYS}")
    for field, init in arrays.items():
        if not isinstance(init, str) or init not in initializers:
            raise ConversionError(f"{where}: {ARRAYS} field {field!r} names no initializer ({init!r})")
        if init not in uses:
            raise ConversionError(f"{where}: {ARRAYS} field {field!r} names initializer {init!r}, which the node "
                                  "does not read; the talon.* metadata disagrees with the graph")
        fields[field] = _array(initializers[init], folder)
    metadata = _typed(_decode(props.get(METADATA, "{}"), f"{where}: {METADATA}"), dict, f"{where}: {METADATA}")
    try:
        return cls(**fields, metadata=metadata)
    except (TypeError, ValueError) as exc:  # unknown field names, PrimitiveError
        raise ConversionError(f"{where}: its talon.* metadata cannot be restored: {exc}") from exc


def _edges(text: str) -> list[tuple[str, str]]:
    """The `talon.edges` property: a JSON list of [source, destination] name pairs."""
    edges = _typed(_decode(text, EDGES_KEY), list, EDGES_KEY)
    bad = [e for e in edges if not (isinstance(e, list) and len(e) == 2 and all(isinstance(n, str) for n in e))]
    if bad:
        raise ConversionError(f"{EDGES_KEY}: every edge must be a [source, destination] pair of names, got {bad[0]!r}")
    return [tuple(e) for e in edges]


def restore(proto: onnx.ModelProto, folder: str | None = None) -> Graph:
    """The IR graph recorded in a model written by converters.ir_to_onnx, exactly (external data, already
    checked, is read from `folder`)."""
    graph = proto.graph
    initializers = {t.name: t for t in graph.initializer}
    nodes: dict[str, Node] = {}
    aux_reads: dict[str, set[str]] = {}  # what each IR node's helper nodes read (casts, reshapes, transposes)
    for node in graph.node:
        owner = _props(node).get(OWNER)
        if owner is not None:
            aux_reads.setdefault(owner, set()).update(node.input)
    for holder in [*graph.input, *graph.node]:
        props = _props(holder)
        if PRIMITIVE in props:
            uses = set(getattr(holder, "input", ())) | aux_reads.get(holder.name, set())
            nodes[holder.name] = _node(holder.name, props, initializers, folder, uses)
    model_props = _props(proto)
    metadata = _typed(_decode(model_props[METADATA], f"model {METADATA}"), dict, f"model {METADATA}") \
        if METADATA in model_props else None
    return Graph(nodes, _edges(model_props[EDGES_KEY]), metadata=metadata)
