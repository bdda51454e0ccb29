"""Exact restore of graphs that converters.ir_to_onnx wrote (its convention is documented in
converters/export/__init__.py): nodes from the `talon.*` metadata_props, edges from `talon.edges`."""

from __future__ import annotations

from typing import Mapping

import onnx
from onnx import numpy_helper

from talon.ir import Graph, get_primitive
from talon.ir.primitives import Node

from ..errors import ConversionError
from ..export import ARRAYS, METADATA, PARAMS, PRIMITIVE
from ..export.jsonvalue import decode

FORMAT_KEY, EDGES_KEY = "talon.format", "talon.edges"


def _props(proto) -> dict[str, str]:
    return {p.key: p.value for p in proto.metadata_props}


def is_talon_export(proto: onnx.ModelProto) -> bool:
    """True when the model carries the IR graph as converters.ir_to_onnx records it."""
    props = _props(proto)
    return FORMAT_KEY in props and EDGES_KEY in props


def _node(name: str, props: Mapping[str, str], initializers: Mapping[str, onnx.TensorProto]) -> Node:
    try:
        cls = get_primitive(props[PRIMITIVE])
        fields = decode(props.get(PARAMS, "{}"))
        for field, init in decode(props.get(ARRAYS, "{}")).items():
            fields[field] = numpy_helper.to_array(initializers[init])
        metadata = decode(props[METADATA]) if METADATA in props else {}
        return cls(**fields, metadata=metadata)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConversionError(f"node {name!r}: its talon.* metadata cannot be restored: {exc}") from exc


def restore(proto: onnx.ModelProto) -> Graph:
    """The IR graph recorded in a model written by converters.ir_to_onnx, exactly."""
    graph = proto.graph
    initializers = {t.name: t for t in graph.initializer}
    nodes: dict[str, Node] = {}
    for vi in graph.input:
        props = _props(vi)
        if PRIMITIVE in props:
            nodes[vi.name] = _node(vi.name, props, initializers)
    for n in graph.node:
        props = _props(n)
        if PRIMITIVE in props:
            nodes[n.name] = _node(n.name, props, initializers)
    model_props = _props(proto)
    metadata = decode(model_props[METADATA]) if METADATA in model_props else None
    edges = [tuple(e) for e in decode(model_props[EDGES_KEY])]
    return Graph(nodes, edges, metadata=metadata)
