"""`OrtExecutor`: run any ONNX model that uses talon ops in onnxruntime, with the GraphExecutor call convention.

``out = ex(x)``; ``out, state = ex(x, state)`` with ``state[node] = (membrane,)`` (numpy); dicts for
several inputs or outputs; ``ex.run_sequence(xs, state)`` runs T timesteps in one ``session.run``
through a Scan over the leading time axis. Stateful nodes are found by the naming convention of
:mod:`onnx_ops.state`; a state missing from the dict starts at rest (zeros). Inputs and state of any real
numeric or bool dtype are cast to the model's dtype; complex, string and object values are refused.
Errors (all ValueErrors): OrtModelError for a model that cannot be loaded, completed or run (onnxruntime's
own exceptions are wrapped, naming the file or model), OrtInputError and OrtStateError for what is fed.
"""

from __future__ import annotations

import contextlib
import copy
import os
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError
from onnx import helper as h
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state

from talon.errors import require

from .errors import OrtInputError, OrtModelError, OrtStateError
from . import guard
from .functions import attach_functions
from .state import state_pairs
from .tensors import torch_to_numpy

SEQ_PREFIX = "seq."  # prefix of the Scan model's outer input/output names
NUMERIC_KINDS = "biuf"  # numpy dtype kinds cast to the model's dtype: bool, ints, floats
# onnxruntime's exception types, and UnicodeDecodeError: what comes out when its message is not valid UTF-8
_ORT_ERRORS = (
    *(v for v in vars(_ort_state).values() if isinstance(v, type) and issubclass(v, Exception)),
    UnicodeDecodeError,
)


@contextlib.contextmanager
def _ort_errors(label: str, doing: str) -> Iterator[None]:
    """Turn onnxruntime's own exceptions into OrtModelError naming the model and what was being done."""
    try:
        yield
    except _ORT_ERRORS as exc:
        detail = "its message was not valid UTF-8 (a name or text in the model is corrupt)" if isinstance(
            exc, UnicodeDecodeError
        ) else str(exc)
        raise OrtModelError(f"onnxruntime failed {doing} {label}: {detail}") from exc


def _numpy(value: Any, dtype: np.dtype, what: str, error: type[ValueError]) -> np.ndarray:
    """A contiguous numpy array of `dtype` from a numpy array, a torch tensor or a nested list.

    Real numbers and bools are cast; complex numbers, strings and objects are refused with `error` naming `what`
    (casting would drop the imaginary part or parse text)."""
    if hasattr(value, "detach"):
        value = torch_to_numpy(value)
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise error(f"{what} is not an array of numbers: {exc}") from exc
    if dtype.kind in NUMERIC_KINDS and arr.dtype.kind not in NUMERIC_KINDS:
        kind = "complex" if arr.dtype.kind == "c" else "not real numbers"
        raise error(f"{what} is {kind} ({arr.dtype}); the executor computes in {dtype}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _dims(value_info: onnx.ValueInfoProto) -> list:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def _spec(info: onnx.ValueInfoProto, label: str) -> tuple[np.dtype, list]:
    """(numpy dtype, dims with None where symbolic) of a graph input; refuses what cannot be fed."""
    elem_type = info.type.tensor_type.elem_type
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError) as exc:
        raise OrtModelError(
            f"{label}: input {info.name!r} is not a tensor of a known element type (elem_type {elem_type})"
        ) from exc
    dims = _dims(info)
    if any(d is not None and d < 0 for d in dims):
        raise OrtModelError(f"{label}: input {info.name!r} declares a negative dim in its shape {dims}")
    return dtype, dims


def _load(model_or_path: onnx.ModelProto | str | os.PathLike) -> tuple[onnx.ModelProto, str | None, str]:
    """(a private copy of the model, its folder or None, a label naming it in errors), passed through the guard."""
    if isinstance(model_or_path, onnx.ModelProto):
        model, folder, label = copy.deepcopy(model_or_path), None, f"model {model_or_path.graph.name!r}"
    else:
        require(model_or_path, (str, os.PathLike), "OrtExecutor: model_or_path", OrtModelError)
        path = os.fspath(model_or_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no ONNX file at {path!r}")
        try:
            model = onnx.load(path, load_external_data=False)
        except (DecodeError, ValueError) as exc:
            raise OrtModelError(f"{path!r} is not an ONNX model: {exc}") from exc
        folder, label = os.path.dirname(os.path.abspath(path)), repr(path)
    try:
        guard.check_model(model, folder)
    except OrtModelError as exc:
        raise OrtModelError(f"{label}: {exc}") from None
    return model, folder, label


class OrtExecutor:
    """Runs an ONNX model (talon ops allowed) in onnxruntime; state keyed by stateful node name."""

    def __init__(
        self,
        model_or_path: onnx.ModelProto | str | os.PathLike,
        return_state: bool = False,
        intra_op_threads: int | None = None,
        inter_op_threads: int | None = None,
        providers: Sequence[str] | None = None,
    ):
        guard.read_consistently(model_or_path, lambda: self._setup(
            model_or_path, return_state, intra_op_threads, inter_op_threads, providers))

    def _setup(self, model_or_path, return_state, intra_op_threads, inter_op_threads, providers) -> None:
        self.model, self._folder, self._label = _load(model_or_path)
        label = self._label
        try:
            attach_functions(self.model)
        except OrtModelError as exc:
            raise OrtModelError(f"{label}: {exc}") from exc
        self.return_state = return_state
        self._threads = (intra_op_threads, inter_op_threads)
        self._providers = list(providers or ["CPUExecutionProvider"])
        graph = self.model.graph
        inits = {i.name for i in graph.initializer}
        inputs = [i for i in graph.input if i.name not in inits]
        pairs = state_pairs([i.name for i in inputs], [o.name for o in graph.output])
        self.state_nodes: dict[str, list[tuple[str, str]]] = pairs
        self._state_in = [i for items in pairs.values() for i, _ in items]
        self._state_out = [o for items in pairs.values() for _, o in items]
        state_in, state_out = set(self._state_in), set(self._state_out)
        self._specs = {i.name: _spec(i, label) for i in inputs}
        self.input_names = [i.name for i in inputs if i.name not in state_in]
        self.output_names = [o.name for o in graph.output if o.name not in state_out]
        self._check_model()
        self._fetch = self.output_names + self._state_out
        self.session = self._session(self.model)
        self._seq_session: ort.InferenceSession | None = None
        self._zeros: dict[tuple[str, int], np.ndarray] = {}
        # input feature shapes the fast step path accepts (an input of fixed feature dims)
        dims = self._specs[self.input_names[0]][1][1:]
        self._accepted = {tuple(dims)} if len(self.input_names) == 1 and None not in dims else set()
        # per stateful node, the indices of its state outputs after the data outputs
        index = {name: i for i, name in enumerate(self._state_out)}
        self._state_slots = [(node, [index[o] for _, o in items]) for node, items in self.state_nodes.items()]

    def _session(self, model: onnx.ModelProto) -> ort.InferenceSession:
        opts = ort.SessionOptions()
        # not ENABLE_ALL: its layout transforms (NCHWc convs) apply to the main graph but not inside the
        # Scan body, so a step loop and run_sequence would differ in the last bits
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        intra, inter = self._threads
        if intra is not None:
            opts.intra_op_num_threads = intra
        if inter is not None:
            opts.inter_op_num_threads = inter
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if self._folder is not None:
            opts.add_session_config_entry("session.model_external_initializers_file_folder_path", self._folder)
        with _ort_errors(self._label, "to load"):
            return ort.InferenceSession(model.SerializeToString(), opts, providers=self._providers)

    def _check_model(self) -> None:
        """Refuse models the call convention cannot feed: no input or output, or state of unknown feature shape."""
        if not self.input_names or not self.output_names:
            raise OrtModelError(
                f"{self._label} needs at least one input and one output besides state; it has inputs"
                f" {self.input_names} and outputs {self.output_names}"
            )
        for name in self._state_in:
            dims = self._specs[name][1]
            if not dims or None in dims[1:]:
                raise OrtModelError(
                    f"{self._label}: state input {name!r} has shape {dims}; a state input needs a batch dim"
                    " followed by fixed feature dims (its rest value is zeros of that shape)"
                )

    # -- feeds -------------------------------------------------------------------------------
    def _check(self, name: str, arr: np.ndarray, what: str, lead: int = 0) -> None:
        fixed = self._specs[name][1][1:]
        if arr.ndim != len(fixed) + 1 + lead or any(
            d is not None and d != a for d, a in zip(fixed, arr.shape[lead + 1 :])
        ):
            shape = ("T," if lead else "") + "batch," + ",".join(str(d if d is not None else "?") for d in fixed)
            raise OrtInputError(f"{what} expects shape ({shape}), got {tuple(arr.shape)}")

    def _inputs(self, x: Any, lead: int = 0) -> dict[str, np.ndarray]:
        if isinstance(x, Mapping):
            given = dict(x)
        elif len(self.input_names) == 1:
            given = {self.input_names[0]: x}
        else:
            raise OrtInputError(f"model has several inputs {self.input_names}: pass a dict keyed by input name")
        missing = [n for n in self.input_names if n not in given]
        extra = [n for n in given if n not in self.input_names]
        if missing or extra:
            raise OrtInputError(
                f"inputs {sorted(given)} do not match the model's inputs {self.input_names}"
                f" (missing {missing}, unexpected {extra})"
            )
        feeds = {}
        for name in self.input_names:
            arr = _numpy(given[name], self._specs[name][0], f"input {name!r}", OrtInputError)
            self._check(name, arr, f"input {name!r}", lead)
            feeds[name] = arr
        leading = {n: a.shape[: lead + 1] for n, a in feeds.items()}
        if len(set(leading.values())) > 1:
            raise OrtInputError(f"inputs disagree on their {'(T, batch)' if lead else 'batch'} dims: {leading}")
        return feeds

    def _state_feeds(self, state: Mapping | None, batch: int) -> dict[str, np.ndarray]:
        if state is not None and not isinstance(state, Mapping):
            raise OrtStateError(f"state must be a dict keyed by stateful node name (or None), got {type(state).__name__}")
        state = state or {}
        unknown = [k for k in state if k not in self.state_nodes]
        if unknown:
            raise OrtStateError(
                f"state keys {unknown} are not stateful nodes of this model; they are {list(self.state_nodes)}"
            )
        feeds = {}
        for node, items in self.state_nodes.items():
            value = state.get(node)
            values = list(value) if isinstance(value, (tuple, list)) else [value]
            if len(values) > len(items):
                raise OrtStateError(f"state[{node!r}] has {len(values)} items; node {node!r} carries {len(items)}")
            values += [None] * (len(items) - len(values))
            for k, ((name, _), item) in enumerate(zip(items, values)):
                feeds[name] = self._zero(name, batch) if item is None else self._state_array(node, k, name, item, batch)
        return feeds

    def _zero(self, name: str, batch: int) -> np.ndarray:
        """Rest state for graph input `name` (cached per batch size; onnxruntime never writes inputs)."""
        key = (name, batch)
        if key not in self._zeros:
            dtype, dims = self._specs[name]
            self._zeros[key] = np.zeros([batch, *dims[1:]], dtype=dtype)
        return self._zeros[key]

    def _state_array(self, node: str, k: int, name: str, value: Any, batch: int) -> np.ndarray:
        arr = _numpy(value, self._specs[name][0], f"state[{node!r}][{k}]", OrtStateError)
        expected = (batch, *self._specs[name][1][1:])
        if arr.shape != expected:
            raise OrtStateError(f"state[{node!r}][{k}] has shape {tuple(arr.shape)}; node {node!r} expects {expected}")
        return arr

    def _new_state(self, values: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, ...]]:
        return {node: tuple(values[out] for _, out in items) for node, items in self.state_nodes.items()}

    def _result(self, outs: dict[str, np.ndarray], names: Sequence[str], state: dict | None):
        out = outs[names[0]] if len(names) == 1 else {n: outs[n] for n in names}
        return (out, state) if self.return_state else out

    # -- running -----------------------------------------------------------------------------
    def __call__(self, x: Any, state: Mapping | None = None):
        """One timestep: `out` (or `out, state` with return_state=True)."""
        feeds = self._fast_feeds(x, state)
        if feeds is None:
            feeds = self._inputs(x)
            batch = next(iter(feeds.values())).shape[0]
            feeds.update(self._state_feeds(state, batch))
        try:
            outs = self.session.run(self._fetch, feeds)
        except _ORT_ERRORS:
            with _ort_errors(self._label, "to run"):
                raise
        n = len(self.output_names)
        out = outs[0] if n == 1 else dict(zip(self.output_names, outs))
        if not self.return_state:
            return out
        return out, {node: tuple(outs[n + i] for i in items) for node, items in self._state_slots}

    def _fast_feeds(self, x: Any, state: Mapping | None) -> dict[str, np.ndarray] | None:
        """The feeds of the common step call, checked cheaply: one input array of the model's dtype and a
        shape accepted before, and no state or the state dict a previous call returned (every node, numpy
        arrays of the right dtype and shape); None for anything else, which the full checks handle."""
        if type(x) is not np.ndarray or x.ndim == 0 or len(self.input_names) != 1 or x.shape[1:] not in self._accepted:
            return None
        dtype = self._specs[self.input_names[0]][0]
        if x.dtype != dtype or not x.flags.c_contiguous:
            return None
        batch = x.shape[0]
        feeds = {self.input_names[0]: x}
        if not state:
            for name in self._state_in:
                feeds[name] = self._zero(name, batch)
            return feeds
        if type(state) is not dict or len(state) != len(self.state_nodes):
            return None
        for node, items in self.state_nodes.items():
            value = state.get(node)
            if type(value) is not tuple or len(value) != len(items):
                return None
            for (name, _), arr in zip(items, value):
                if type(arr) is not np.ndarray or arr.dtype != dtype or arr.shape != self._state_shape(name, batch):
                    return None
                feeds[name] = arr
        return feeds

    def _state_shape(self, name: str, batch: int) -> tuple:
        """The shape of state input `name` at this batch size (that of its rest value)."""
        return self._zero(name, batch).shape

    def run_sequence(self, xs: Any, state: Mapping | None = None):
        """T timesteps (leading axis of xs) in one session.run; outputs stacked as [T, batch, ...]."""
        feeds = self._inputs(xs, lead=1)
        batch = next(iter(feeds.values())).shape[1]
        feeds.update(self._state_feeds(state, batch))
        if self._seq_session is None:
            self._seq_session = self._session(self.sequence_model())
        seq_feeds = {SEQ_PREFIX + k: v for k, v in feeds.items()}
        fetch = [SEQ_PREFIX + n for n in self._fetch]
        with _ort_errors(self._label, "to run the sequence model of"):
            outs = self._seq_session.run(fetch, seq_feeds)
        values = {n[len(SEQ_PREFIX) :]: v for n, v in zip(fetch, outs)}
        return self._result(values, self.output_names, self._new_state(values))

    def sequence_model(self) -> onnx.ModelProto:
        """The step model run over time: inputs seq.<x> [T, batch, ...] and seq.<state in>, outputs seq.<y>
        [T, batch, ...] and seq.<state out> (the final state).

        Layer by layer where each stateful node is one ONNX node (as ir_to_onnx writes them): the stateless
        nodes run once on [T*batch, ...] and each stateful node in a Scan of its own over [T, batch, ...]. Any
        other model runs its whole step in one Scan."""
        graph = _layered(self.model.graph, self.input_names, self.output_names, self.state_nodes)
        if graph is None:
            graph = _one_scan(self.model.graph, self.input_names, self.output_names, self._state_in, self._state_out)
        model = copy.deepcopy(self.model)
        model.graph.CopyFrom(graph)
        return model

    def __repr__(self) -> str:
        return (
            f"OrtExecutor(inputs={self.input_names}, outputs={self.output_names}, "
            f"stateful={list(self.state_nodes)}, return_state={self.return_state})"
        )


def _outer(by_name: Mapping[str, onnx.ValueInfoProto], name: str, timed: bool) -> onnx.ValueInfoProto:
    """The sequence model's graph input or output for step input or output `name` ([T, ...] when timed)."""
    vi = by_name[name]
    dims = [d.dim_value or d.dim_param or None for d in vi.type.tensor_type.shape.dim]
    return h.make_tensor_value_info(SEQ_PREFIX + name, vi.type.tensor_type.elem_type, (["T"] if timed else []) + dims)


def _one_scan(step: onnx.GraphProto, inputs: list[str], outputs: list[str], state_in: list[str],
              state_out: list[str]) -> onnx.GraphProto:
    """The whole step as the body of one Scan over time."""
    by_name = {v.name: v for v in [*step.input, *step.output]}
    body = h.make_graph(list(step.node), "step", [by_name[n] for n in state_in + inputs],
                        [by_name[n] for n in state_out + outputs], value_info=list(step.value_info))
    scan = h.make_node("Scan", [SEQ_PREFIX + n for n in state_in + inputs], [SEQ_PREFIX + n for n in state_out + outputs],
                       name="time_scan", body=body, num_scan_inputs=len(inputs))
    return h.make_graph([scan], f"{step.name}_sequence",
                        [_outer(by_name, n, False) for n in state_in] + [_outer(by_name, n, True) for n in inputs],
                        [_outer(by_name, n, False) for n in state_out] + [_outer(by_name, n, True) for n in outputs],
                        list(step.initializer))


def _layered(step: onnx.GraphProto, inputs: list[str], outputs: list[str],
             state_nodes: Mapping[str, list[tuple[str, str]]]) -> onnx.GraphProto | None:
    """The step with its stateless nodes over [T*batch, ...] and a Scan per stateful node, or None when a
    state input is not read by exactly the one node that writes the matching state outputs."""
    by_name = {v.name: v for v in [*step.input, *step.output]}
    owner: dict[int, list[tuple[str, str]]] = {}
    for items in state_nodes.values():
        readers = {k for k, node in enumerate(step.node) for i, _ in items if i in node.input}
        if len(readers) != 1:
            return None
        k = readers.pop()
        if not all(o in step.node[k].output for _, o in items) or k in owner:
            return None
        owner[k] = items
    timed = set(inputs)
    first = SEQ_PREFIX + inputs[0]
    nodes = [h.make_node("Shape", [first], ["seq.TB"], start=0, end=2)]
    minus_one = h.make_tensor("seq.minus_one", onnx.TensorProto.INT64, [1], [-1])
    made: set[str] = set()

    def flat(src: str, dst: str) -> None:  # [T, batch, ...] -> [T*batch, ...]
        nodes.append(h.make_node("Shape", [src], [f"{dst}.seq_rest"], start=2))
        nodes.append(h.make_node("Concat", ["seq.minus_one", f"{dst}.seq_rest"], [f"{dst}.seq_shape"], axis=0))
        nodes.append(h.make_node("Reshape", [src, f"{dst}.seq_shape"], [dst]))

    def timed_shape(src: str, dst: str) -> None:  # [T*batch, ...] -> [T, batch, ...]
        if dst in made:  # a tensor read by several neurons
            return
        made.add(dst)
        nodes.append(h.make_node("Shape", [src], [f"{dst}.seq_rest"], start=1))
        nodes.append(h.make_node("Concat", ["seq.TB", f"{dst}.seq_rest"], [f"{dst}.seq_shape"], axis=0))
        nodes.append(h.make_node("Reshape", [src, f"{dst}.seq_shape"], [dst]))

    for name in inputs:
        flat(SEQ_PREFIX + name, name)
    for k, node in enumerate(step.node):
        if not any(i in timed for i in node.input):
            nodes.append(node)
            continue
        timed.update(node.output)
        if k not in owner:
            nodes.append(node)
            continue
        items = owner[k]
        ins, outs = [i for i, _ in items], [o for _, o in items]
        xs = [i for i in node.input if i in timed]
        ys = [o for o in node.output if o not in outs]
        rename = {n: f"{node.name or k}.scan.{n}" for n in [*ins, *outs, *xs, *ys]}
        inner = copy.deepcopy(node)
        inner.input[:] = [rename.get(i, i) for i in node.input]
        inner.output[:] = [rename.get(o, o) for o in node.output]
        elem = by_name[ins[0]].type.tensor_type.elem_type
        body = h.make_graph([inner], f"{node.name or k}_scan",
                            [h.make_tensor_value_info(rename[n], elem, None) for n in ins + xs],
                            [h.make_tensor_value_info(rename[n], elem, None) for n in outs + ys])
        for x in xs:
            timed_shape(x, f"{x}.seq_in")
        nodes.append(h.make_node("Scan", [SEQ_PREFIX + i for i in ins] + [f"{x}.seq_in" for x in xs],
                                 [SEQ_PREFIX + o for o in outs] + [f"{y}.seq_out" for y in ys],
                                 name=f"{node.name or k}.time_scan", body=body, num_scan_inputs=len(xs)))
        for y in ys:
            flat(f"{y}.seq_out", y)
    if not all(o in timed for o in outputs):
        return None
    for name in outputs:
        timed_shape(name, SEQ_PREFIX + name)
    state_in = [i for items in owner.values() for i, _ in items]
    state_out = [o for items in owner.values() for _, o in items]
    return h.make_graph(nodes, f"{step.name}_sequence",
                        [_outer(by_name, n, False) for n in state_in] + [_outer(by_name, n, True) for n in inputs],
                        [_outer(by_name, n, False) for n in state_out] + [_outer(by_name, n, True) for n in outputs],
                        [*step.initializer, minus_one])
