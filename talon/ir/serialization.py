"""Reading and writing .t1c files: the HDF5 layout of the established TALON toolchain.

Layout (see the project's format notes): root dataset ``version``; group ``graph`` with
``type`` = 'Graph', ``nodes/<name>/`` (a ``type`` dataset plus one dataset per non-None field,
and an optional ``metadata/`` group), ``edges/src`` and ``edges/dst`` (vlen UTF-8, edge i is
(src[i], dst[i])), ``metadata/`` when non-empty and ``allow_cycles`` only when true. No
attributes, no compression. Encoding is driven by each primitive's field declarations, so a
primitive registered with ``@register_primitive`` round-trips like a built-in one.

Node names and metadata keys are written verbatim unless they contain '%', '/' or NUL, which
are percent-encoded (``%25``, ``%2F``, ``%00``); the name '.' is written ``%2E``. Edges name the
nodes as their groups do. HDF5 groups do not keep creation order, so :func:`read` returns the
nodes in topological order (ties alphabetical); edge order is kept exactly.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import h5py
import numpy as np
from h5py import h5g

from ._atomic import atomic_h5_file
from ._files import require_regular_file
from ._h5walk import MAX_DEPTH, Refused, SafeFile
from ._h5values import (
    BadValue, Stored, decode_field, decode_metadata_value, encode_field, encode_metadata, encode_str, escape_name,
    unescape_name,
)
from .established import reconcile_input_shapes
from .errors import GraphError, PrimitiveError, TalonFormatError
from .graph import Graph
from .primitives import Node, get_primitive, list_primitives, primitive_fields
from .primitives.base import primitive_for_stored_type, stored_type

FORMAT_VERSION = "0.0.1"  # what the established toolchain writes (its reader does not check it)

MAX_METADATA_DEPTH = MAX_DEPTH  # dicts nested below a metadata dict; the writer refuses deeper ones too

__all__ = ["read", "write", "FORMAT_VERSION"]


# -- writing ---------------------------------------------------------------------------------
def write(path: str | os.PathLike, graph: Graph) -> None:
    """Write `graph` to a .t1c file atomically, creating missing parent folders.

    The graph is validated and fully encoded before the disk is touched; any refusal (an invalid
    graph or node, an unregistered primitive, unstorable metadata) is a TalonFormatError naming
    the file, node and field. An existing file at `path` is replaced only by a complete new one.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TalonFormatError(repr(path), f"write expects a path, got {type(path).__name__}")
    tree = _encode_graph(os.fspath(path), graph)
    with atomic_h5_file(path) as h5:
        _write_tree(h5, tree)


def _encode_graph(path: str, graph: Graph) -> dict[str, Any]:
    """The whole file as nested dicts (groups) of dataset values; nothing is written yet."""
    if not isinstance(graph, Graph):
        raise TalonFormatError(path, f"write expects a talon.ir.Graph, got {type(graph).__name__}")
    try:
        graph.validate()
    except GraphError as exc:
        raise TalonFormatError(path, f"invalid graph: {exc}") from exc
    stored = {name: _stored_name(path, name) for name in graph.nodes}
    tree: dict[str, Any] = {
        "type": encode_str("Graph"),
        "nodes": {stored[name]: _encode_node(path, name, node) for name, node in graph.nodes.items()},
        "edges": {
            "src": encode_str([stored[s] for s, _ in graph.edges]),
            "dst": encode_str([stored[d] for _, d in graph.edges]),
        },
    }
    if graph.metadata:
        tree["metadata"] = _encode_metadata(path, graph.metadata, None)
    if graph.allow_cycles:
        tree["allow_cycles"] = np.bool_(True)
    return {"version": encode_str(FORMAT_VERSION), "graph": tree}


def _stored_name(path: str, name: str) -> str:
    """The group name of a node: escaped, and encodable (vlen strings also refuse NUL, escaped here)."""
    try:
        return escape_name(name)
    except BadValue as exc:
        raise TalonFormatError(path, str(exc), node=name) from exc


def _encode_node(path: str, name: str, node: Node) -> dict[str, Any]:
    cls = type(node)
    try:
        registered = get_primitive(cls.__name__)
    except KeyError:
        registered = None
    if registered is not cls:
        raise TalonFormatError(
            path, f"type {cls.__name__} is not a registered primitive (decorate it with @register_primitive)",
            node=name, field="type",
        )
    try:  # rebuilding re-checks fields that were changed after construction
        node = cls(**{f.name: getattr(node, f.name) for f in _init_fields(cls)}, metadata=node.metadata)
    except PrimitiveError as exc:
        raise TalonFormatError(path, str(exc), node=name, field=exc.field) from exc
    type_name, implied = stored_type(node)  # e.g. 'IFSubtract' for an IF with reset_mode 'subtract'
    out = {"type": encode_str(type_name)}
    for f in primitive_fields(node):
        value = getattr(node, f.name)
        if value is not None and f.name not in implied:
            try:
                out[f.name] = encode_field(f.metadata["kind"], value)
            except BadValue as exc:
                raise TalonFormatError(path, str(exc), node=name, field=f.name) from exc
    if node.metadata:
        out["metadata"] = _encode_metadata(path, node.metadata, name)
    return out


def _encode_metadata(path: str, metadata: dict, node: str | None) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        message = f"metadata must be a dict, got {type(metadata).__name__}"
        raise TalonFormatError(path, message, node=node, field="metadata")
    try:
        return encode_metadata(metadata, "")
    except BadValue as exc:
        raise TalonFormatError(path, str(exc), node=node, field="metadata") from exc


def _write_tree(group: h5py.Group, tree: dict[str, Any]) -> None:
    for key, value in tree.items():
        if isinstance(value, dict):
            _write_tree(group.create_group(key), value)
        else:
            group.create_dataset(key, data=value)


def _init_fields(cls: type[Node]) -> list[dataclasses.Field]:
    return [f for f in primitive_fields(cls) if f.init]


# -- reading ---------------------------------------------------------------------------------
def read(path: str | os.PathLike) -> Graph:
    """Read a .t1c file into a validated Graph.

    Raises FileNotFoundError for a missing file and TalonFormatError (naming the file and, where
    it applies, the node and field) for anything else that is not a valid .t1c file. Reading never
    executes code and never follows soft or external links or external storage. Filtered datasets and
    ones declaring more bytes than the file are refused unread. The global heap holding vlen strings
    is checked in Python first (libhdf5 can loop forever on a corrupt one), for contiguous string
    datasets only: a corrupt heap behind a compact or chunked one (never written by h5py) can still hang.
    An Input shape its first layer's weights refuse is read as the shape they imply, with an
    InputShapeWarning naming the node (talon.ir.established).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TalonFormatError(repr(path), f"read expects a path, got {type(path).__name__}")
    name = os.fspath(path)
    require_regular_file(name, lambda why: TalonFormatError(name, why))
    try:
        h5 = h5py.File(name, "r")
    except OSError as exc:
        raise TalonFormatError(name, f"not a readable HDF5 file ({exc})") from None
    with h5, open(name, "rb") as raw:
        graph = _Reader(name, SafeFile(h5, raw)).graph(h5)
    return reconcile_input_shapes(graph, source=name)  # lenient, as the established executor


class _Reader:
    """Decodes one open file with HDF5's low-level objects; every failure is a TalonFormatError."""

    def __init__(self, path: str, safe: SafeFile):
        self.path = path
        self.safe = safe  # links, storage, each object once, and the allocation budget (the file's size)

    def fail(self, message: str, node: str | None = None, field: str | None = None) -> TalonFormatError:
        return TalonFormatError(self.path, message, node=node, field=field)

    def members(self, gid: h5g.GroupID, where: str, node: str | None = None) -> dict[str, Any]:
        """A group's members (GroupID or Stored) by link name, opened under the rules of `_h5walk.SafeFile`."""
        try:
            return self.guard(lambda: self.safe.members(gid, where), node)
        except Refused as exc:
            raise self.fail(str(exc), node, exc.key) from None

    def guard(self, action: Callable[[], Any], node: str | None = None, field: str | None = None) -> Any:
        """Run a read, turning HDF5 errors (truncated or corrupt data) and BadValue into TalonFormatError."""
        try:
            return action()
        except Refused:
            raise
        except BadValue as exc:
            raise self.fail(str(exc), node, field) from None
        except (OSError, RuntimeError, KeyError) as exc:
            raise self.fail(f"cannot read ({exc})", node, field) from None

    def value(self, decode: Callable[[Stored], Any], obj: Any, node: str | None, field: str) -> Any:
        if not isinstance(obj, Stored):
            raise self.fail("expected a dataset, got a group", node, field)
        return self.guard(lambda: decode(obj), node, field)

    def group(self, members: dict[str, Any], key: str, where: str, node: str | None = None) -> dict[str, Any]:
        """Members of a required subgroup."""
        obj = members.get(key)
        if not isinstance(obj, h5g.GroupID):
            raise self.fail(f"group {key!r} is {'missing' if obj is None else 'not a group'}", node, key)
        return self.members(obj, f"{where}/{key}", node)

    def graph(self, h5: h5py.File) -> Graph:
        top = self.group(self.members(h5.id, ""), "graph", "")
        if "type" not in top:
            raise self.fail("graph has no 'type' dataset", field="type")
        kind = self.value(lambda ds: decode_field("str", ds), top["type"], None, "type")
        if kind != "Graph":
            raise self.fail(f"graph type is {kind!r}, expected 'Graph'", field="type")
        nodes = {}
        for stored, obj in (self.group(top, "nodes", "/graph") if "nodes" in top else {}).items():
            name = unescape_name(stored)
            if not isinstance(obj, h5g.GroupID):
                raise self.fail("expected a node group, got a dataset", name)
            nodes[name] = self.node(name, self.members(obj, f"/graph/nodes/{stored}", name))
        edges = self.edges(self.group(top, "edges", "/graph") if "edges" in top else {}, nodes)
        metadata = self.metadata(top["metadata"], None) if "metadata" in top else {}
        cycles = "allow_cycles" in top and self.value(
            lambda ds: decode_field("bool", ds), top["allow_cycles"], None, "allow_cycles"
        )
        try:
            graph = Graph(nodes, edges, metadata, allow_cycles=cycles)
            return Graph({n: nodes[n] for n in graph.topological_order()}, edges, metadata, allow_cycles=cycles)
        except GraphError as exc:
            raise self.fail(f"invalid graph: {exc}") from exc

    def node(self, name: str, members: dict[str, Any]) -> Node:
        if "type" not in members:
            raise self.fail("missing the 'type' dataset", name, "type")
        type_name = self.value(lambda ds: decode_field("str", ds), members["type"], name, "type")
        try:
            cls, kwargs = primitive_for_stored_type(type_name)
        except KeyError:
            known = ", ".join(list_primitives())
            raise self.fail(f"unknown node type {type_name!r}; known types: {known}", name, "type") from None
        clash = sorted(set(kwargs) & set(members))
        if clash:
            raise self.fail(f"type {type_name!r} implies {clash[0]} = {kwargs[clash[0]]!r}; the node must not "
                            "store it", name, clash[0])
        for f in _init_fields(cls):
            if f.name in kwargs:
                continue
            if f.name in members:
                kind = f.metadata["kind"]
                kwargs[f.name] = self.value(lambda ds: decode_field(kind, ds), members[f.name], name, f.name)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise self.fail(f"missing required field of {type_name}", name, f.name)
        metadata = self.metadata(members["metadata"], name) if "metadata" in members else {}
        try:
            return cls(**kwargs, metadata=metadata)
        except PrimitiveError as exc:
            raise self.fail(str(exc), name, exc.field) from exc

    def edges(self, members: dict[str, Any], nodes: dict[str, Node]) -> list[tuple[str, str]]:
        ends = {}
        for key in ("src", "dst"):
            if key not in members:
                raise self.fail(f"edges/{key} is missing", field="edges")
            ends[key] = self.value(_decode_names, members[key], None, f"edges/{key}")
        src, dst = ends["src"], ends["dst"]
        if len(src) != len(dst):
            raise self.fail(f"edges/src has {len(src)} entries but edges/dst has {len(dst)}", field="edges")
        for i, edge in enumerate(zip(src, dst)):
            for end in edge:
                if end not in nodes:
                    raise self.fail(f"edge {i} {edge} names a missing node {end!r}", end, "edges")
        return list(zip(src, dst))

    def metadata(self, obj: Any, node: str | None, where: str = "metadata") -> dict[str, Any]:
        if not isinstance(obj, h5g.GroupID):
            raise self.fail("expected a metadata group, got a dataset", node, "metadata")
        out = {}
        for key, item in self.members(obj, where, node).items():
            out[unescape_name(key)] = (
                self.metadata(item, node, f"{where}/{key}") if isinstance(item, h5g.GroupID)
                else self.value(decode_metadata_value, item, node, "metadata")
            )
        return out


def _decode_names(ds: Stored) -> list[str]:
    if not ds.is_str or ds.ndim != 1:
        raise BadValue(f"expected a 1-D array of strings, got {ds.dtype} of shape {ds.shape}")
    return [unescape_name(s) for s in ds.text()]
