"""The one gate every ONNX model passes before onnx's C++ code or onnxruntime sees it.

`check_model` runs, in order: the external-data check (every tensor, sparse ones in attributes included,
must keep its data in a regular, singly-linked file inside the model's folder), the schema check (each
node's input/output counts and attribute types against its operator schema, and the attribute/output
agreements onnx's C++ shape inference assumes without checking, such as Split's ``num_outputs``), the
inlining bound (model-local functions expand to at most MAX_INLINED_NODES nodes; recursive calls are
refused), and a probe that runs onnx's shape inference in a forked child, so that an abort in native code
becomes an OrtModelError instead of the death of the caller's process. Every refusal is an OrtModelError
naming the model; converters wrap it in their own ConversionError.
"""

from __future__ import annotations

import faulthandler
import os
import stat
import warnings
from typing import Callable, Iterator, TypeVar

import onnx
from onnx import AttributeProto, TensorProto

from .errors import OrtModelError
from .tensors import external_tensors

T = TypeVar("T")
MAX_INLINED_NODES = 1 << 18  # nodes a model may have once its model-local functions are inlined (documented)


# -- external data -----------------------------------------------------------------------------------------
def _entry(tensor: TensorProto, key: str, default: str | None = None) -> str | None:
    return next((e.value for e in tensor.external_data if e.key == key), default)


def _resolve(base_dir: str, tensor: TensorProto) -> str:
    """The checked path of a tensor's external file; OrtModelError names the tensor and the rule it breaks."""
    location = _entry(tensor, "location")

    def refuse(why: str) -> OrtModelError:
        return OrtModelError(f"tensor {tensor.name!r}: external data location {location!r} {why}; external data "
                             f"must be a regular file inside the model's folder {base_dir!r}")

    if not location or "\x00" in location:
        raise refuse("is empty or invalid")
    if os.path.isabs(location) or os.path.splitdrive(location)[0]:
        raise refuse("is an absolute path")
    if os.path.normpath(location).split(os.sep)[0] == os.pardir:
        raise refuse("points outside the folder")
    path = os.path.join(base_dir, location)
    expected = os.path.join(os.path.realpath(base_dir), os.path.normpath(location))
    if os.path.islink(path) or os.path.realpath(path) != expected:
        raise refuse("goes through a symbolic link")
    try:
        info = os.stat(path)
    except OSError:
        raise refuse("is not an existing regular file") from None
    if not stat.S_ISREG(info.st_mode):
        raise refuse("is not an existing regular file")
    if info.st_nlink > 1:  # a hard link may name any file of the file system
        raise refuse(f"is a file with {info.st_nlink} hard links (it may be a file from outside the folder)")
    return path


def _check_extent(tensor: TensorProto, path: str) -> None:
    """The declared (offset, length) must be non-negative integers inside the file."""
    try:
        offset = int(_entry(tensor, "offset", "0"))
        length = _entry(tensor, "length")
        length = None if length is None else int(length)
    except ValueError:
        raise OrtModelError(f"tensor {tensor.name!r}: external data offset/length are not integers") from None
    size = os.path.getsize(path)
    if offset < 0 or (length is not None and length < 0) or offset + (length or 0) > size:
        raise OrtModelError(f"tensor {tensor.name!r}: external data (offset {offset}, length {length}) lies outside "
                            f"its file {path!r} of {size} bytes")


def check_external_data(model: onnx.ModelProto, base_dir: str | os.PathLike | None) -> None:
    """Refuse external data outside `base_dir` (None: a model without a folder may have no external data)."""
    for tensor in external_tensors(model):
        if base_dir is None:
            raise OrtModelError(
                f"tensor {tensor.name!r} keeps its data in the external file {_entry(tensor, 'location')!r} but the "
                "model was given without its folder: pass the model's file path instead, or load the data first "
                "with onnx.load_external_data_for_model(model, folder)")
        _check_extent(tensor, _resolve(os.fspath(base_dir), tensor))


# -- nodes against their schemas -----------------------------------------------------------------------------
def _opsets(entries) -> dict[str, int]:
    return {("" if e.domain == "ai.onnx" else e.domain): int(e.version) for e in entries}


def _graph_nodes(graph: onnx.GraphProto, opsets: dict[str, int]) -> Iterator[tuple[onnx.NodeProto, dict[str, int]]]:
    for node in graph.node:
        yield node, opsets
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == AttributeProto.GRAPH else attr.graphs:
                yield from _graph_nodes(sub, opsets)


def _all_nodes(model: onnx.ModelProto) -> Iterator[tuple[onnx.NodeProto, dict[str, int]]]:
    """Every node (main graph, subgraphs, functions) with the opsets that apply to it."""
    opsets = _opsets(model.opset_import)
    yield from _graph_nodes(model.graph, opsets)
    for function in model.functions:
        scope = {**opsets, **_opsets(function.opset_import)}
        for node in function.node:
            yield node, scope
            for attr in node.attribute:
                for sub in [attr.g] if attr.type == AttributeProto.GRAPH else attr.graphs:
                    yield from _graph_nodes(sub, scope)


def _node_problems(node: onnx.NodeProto, opsets: dict[str, int]) -> list[str]:
    """What is wrong with one node against its operator's schema (empty when it has no known schema)."""
    domain = "" if node.domain == "ai.onnx" else node.domain
    if domain not in opsets:
        return []
    try:
        schema = onnx.defs.get_schema(node.op_type, opsets[domain], domain)
    except onnx.defs.SchemaError:
        return []
    except TypeError:  # a version beyond what onnx's C++ API takes (int32)
        return [f"opset version {opsets[domain]} of domain {domain or 'ai.onnx'!r} is out of range"]
    problems = []
    n_in, n_out = len(node.input), len(node.output)
    if not schema.min_input <= n_in <= schema.max_input:
        problems.append(f"has {n_in} inputs, its schema takes {schema.min_input} to {schema.max_input}")
    if not schema.min_output <= n_out <= schema.max_output:
        problems.append(f"has {n_out} outputs, its schema gives {schema.min_output} to {schema.max_output}")
    given = {a.name: a for a in node.attribute}
    for name, declared in schema.attributes.items():
        attr = given.get(name)
        if attr is None:
            if declared.required:
                problems.append(f"lacks its required attribute {name!r}")
        elif not attr.ref_attr_name and declared.type != AttributeProto.UNDEFINED and attr.type != declared.type:
            problems.append(f"attribute {name!r} must be of type {AttributeProto.AttributeType.Name(declared.type)}, "
                            f"got {AttributeProto.AttributeType.Name(attr.type)}")
    if node.op_type == "Split" and domain == "" and "num_outputs" in given and not given["num_outputs"].ref_attr_name:
        if given["num_outputs"].i != n_out:
            problems.append(f"attribute num_outputs is {given['num_outputs'].i} but the node has {n_out} outputs")
    return problems


def node_problems(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, int, str]]:
    """(node, its opset, what is wrong) for every node whose arity or attributes disagree with its schema."""
    return [(node, opsets.get("" if node.domain == "ai.onnx" else node.domain, 0), p)
            for node, opsets in _all_nodes(model) for p in _node_problems(node, opsets)]


def check_nodes(model: onnx.ModelProto) -> None:
    """Refuse nodes whose arity or attributes disagree with their schema, listing every one."""
    problems = [f"node {node.name!r} ({node.op_type}) {p}" for node, _, p in node_problems(model)]
    if problems:
        shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise OrtModelError(f"{len(problems)} node problem(s): {shown}")


# -- function inlining ---------------------------------------------------------------------------------------
def _graph_size(graph: onnx.GraphProto, size: Callable[[onnx.NodeProto], int]) -> int:
    return sum(size(node) + sum(_graph_size(sub, size) for a in node.attribute
                                for sub in ([a.g] if a.type == AttributeProto.GRAPH else a.graphs))
               for node in graph.node)


def inlined_size(model: onnx.ModelProto) -> int:
    """Nodes of the model once every model-local function call is inlined (computed once per function)."""
    functions = {(f.domain, f.name, getattr(f, "overload", "")): f for f in model.functions}
    sizes: dict[tuple, int] = {}
    active: set[tuple] = set()

    def size(node: onnx.NodeProto) -> int:
        key = (node.domain, node.op_type, getattr(node, "overload", ""))
        function = functions.get(key)
        if function is None:
            return 1
        if key in active:
            raise OrtModelError(f"function {node.domain}::{node.op_type} calls itself; recursion cannot be inlined")
        if key not in sizes:
            active.add(key)
            total = 0
            for inner in function.node:
                total += size(inner) + sum(_graph_size(sub, size) for a in inner.attribute
                                           for sub in ([a.g] if a.type == AttributeProto.GRAPH else a.graphs))
                if total > MAX_INLINED_NODES:
                    break
            active.discard(key)
            sizes[key] = total
        return sizes[key]

    return _graph_size(model.graph, size)


def check_inlined_size(model: onnx.ModelProto) -> None:
    """Refuse models whose function calls expand beyond MAX_INLINED_NODES nodes (or call themselves)."""
    total = inlined_size(model)
    if total > MAX_INLINED_NODES:
        raise OrtModelError(f"inlining its functions gives more than {MAX_INLINED_NODES} nodes ({total} counted "
                            "before stopping); onnx_ops.guard.MAX_INLINED_NODES bounds it")


# -- readers racing a writer ---------------------------------------------------------------------------------
def _identity(path: str) -> tuple | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size


def read_consistently(source: object, action: Callable[[], T], attempts: int = 5) -> T:
    """`action()`, run again when it fails while the file `source` (a path; anything else runs once) is
    replaced (a writer put a new model, and removed the data files of the old one, while it was read)."""
    if not isinstance(source, (str, os.PathLike)):
        return action()
    path = os.fspath(source)
    for attempt in range(attempts):
        before = _identity(path)
        try:
            return action()
        except Exception:
            if attempt == attempts - 1 or _identity(path) == before:
                raise
    raise AssertionError("unreachable")


# -- native code in a child process --------------------------------------------------------------------------
def survives(action: Callable[[], object]) -> int | None:
    """Run `action` in a forked child; the signal that killed it, or None when it ended (raising is fine)."""
    if not hasattr(os, "fork"):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded process": the child runs onnx only
        pid = os.fork()
    if pid == 0:  # pragma: no cover  (the child)
        try:
            faulthandler.disable()  # the abort's message and traceback are the parent's to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
            action()
        except BaseException:  # noqa: BLE001  (the parent sees every exception itself)
            pass
        os._exit(0)
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # SIGCHLD ignored by the embedding process: the child was reaped unseen
        return None
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else None


def _infer(model: onnx.ModelProto) -> None:
    onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)


def check_model(model: onnx.ModelProto, base_dir: str | os.PathLike | None,
                native: Callable[[onnx.ModelProto], object] = _infer) -> None:
    """Everything above: OrtModelError unless the model is safe to hand to onnx's C++ code and onnxruntime.

    `native` is the native work to probe in a child (onnx's shape inference by default)."""
    check_external_data(model, base_dir)
    check_nodes(model)
    check_native(model, native)


def check_native(model: onnx.ModelProto, native: Callable[[onnx.ModelProto], object] = _infer) -> None:
    """The inlining bound, then `native(model)` probed in a forked child: OrtModelError when the child dies."""
    check_inlined_size(model)
    signal = survives(lambda: native(model))
    if signal is not None:
        raise OrtModelError(f"onnx's shape inference kills the process on this model (signal {signal}); a node "
                            "is malformed in a way its schema check does not see")
