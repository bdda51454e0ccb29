"""`OrtExecutor`: run any ONNX model that uses talon ops in onnxruntime, with the GraphExecutor call convention.

``out = ex(x)``; ``out, state = ex(x, state)`` with ``state[node] = (membrane,)`` (numpy); dicts for
several inputs or outputs; ``ex.run_sequence(xs, state)`` runs T timesteps in one ``session.run``
through a Scan over the leading time axis. Stateful nodes are found by the naming convention of
:mod:`onnx_ops.state`; a state missing from the dict starts at rest (zeros).
"""

from __future__ import annotations

import copy
import os
from typing import Any, Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper as h

from .functions import attach_functions
from .state import state_pairs

SEQ_PREFIX = "seq."  # prefix of the Scan model's outer input/output names


class OrtInputError(ValueError):
    """A missing, unknown or wrongly shaped input given to an OrtExecutor; names the input and expected shape."""


class OrtStateError(ValueError):
    """An unknown state key or a wrongly shaped state item; names the node and the expected shape."""


def _numpy(value: Any, dtype: np.dtype) -> np.ndarray:
    """A contiguous numpy array of `dtype` from a numpy array, a torch tensor or a nested list."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.ascontiguousarray(value, dtype=dtype)


def _dims(value_info: onnx.ValueInfoProto) -> list:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def _load(model_or_path: onnx.ModelProto | str | os.PathLike) -> tuple[onnx.ModelProto, str | None]:
    if isinstance(model_or_path, onnx.ModelProto):
        return copy.deepcopy(model_or_path), None
    path = os.fspath(model_or_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no ONNX file at {path!r}")
    return onnx.load(path, load_external_data=False), os.path.dirname(os.path.abspath(path))


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
        self.model, self._folder = _load(model_or_path)
        attach_functions(self.model)
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
        self._specs = {
            i.name: (onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type), _dims(i)) for i in inputs
        }
        self.input_names = [i.name for i in inputs if i.name not in state_in]
        self.output_names = [o.name for o in graph.output if o.name not in state_out]
        self._fetch = self.output_names + self._state_out
        self.session = self._session(self.model)
        self._seq_session: ort.InferenceSession | None = None
        self._zeros: dict[tuple[str, int], np.ndarray] = {}

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
        return ort.InferenceSession(model.SerializeToString(), opts, providers=self._providers)

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
            arr = _numpy(given[name], self._specs[name][0])
            self._check(name, arr, f"input {name!r}", lead)
            feeds[name] = arr
        leading = {n: a.shape[: lead + 1] for n, a in feeds.items()}
        if len(set(leading.values())) > 1:
            raise OrtInputError(f"inputs disagree on their {'(T, batch)' if lead else 'batch'} dims: {leading}")
        return feeds

    def _state_feeds(self, state: Mapping | None, batch: int) -> dict[str, np.ndarray]:
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
        arr = _numpy(value, self._specs[name][0])
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
        feeds = self._inputs(x)
        batch = next(iter(feeds.values())).shape[0]
        feeds.update(self._state_feeds(state, batch))
        values = dict(zip(self._fetch, self.session.run(self._fetch, feeds)))
        return self._result(values, self.output_names, self._new_state(values))

    def run_sequence(self, xs: Any, state: Mapping | None = None):
        """T timesteps (leading axis of xs) in one session.run; outputs stacked as [T, batch, ...]."""
        feeds = self._inputs(xs, lead=1)
        batch = next(iter(feeds.values())).shape[1]
        feeds.update(self._state_feeds(state, batch))
        if self._seq_session is None:
            self._seq_session = self._session(self.sequence_model())
        seq_feeds = {SEQ_PREFIX + k: v for k, v in feeds.items()}
        fetch = [SEQ_PREFIX + n for n in self._fetch]
        values = {n[len(SEQ_PREFIX) :]: v for n, v in zip(fetch, self._seq_session.run(fetch, seq_feeds))}
        return self._result(values, self.output_names, self._new_state(values))

    def sequence_model(self) -> onnx.ModelProto:
        """The step model wrapped in a Scan over time: inputs seq.<x> [T, batch, ...] and seq.<state in>,
        outputs seq.<y> [T, batch, ...] and seq.<state out> (the final membranes)."""
        step = self.model.graph
        state_in, state_out = self._state_in, self._state_out
        by_name = {v.name: v for v in [*step.input, *step.output]}
        body = h.make_graph(
            list(step.node),
            "step",
            [by_name[n] for n in state_in + self.input_names],
            [by_name[n] for n in state_out + self.output_names],
            value_info=list(step.value_info),
        )

        def outer(name: str, timed: bool) -> onnx.ValueInfoProto:
            vi = by_name[name]
            dims = [d.dim_value or d.dim_param or None for d in vi.type.tensor_type.shape.dim]
            return h.make_tensor_value_info(
                SEQ_PREFIX + name, vi.type.tensor_type.elem_type, (["T"] if timed else []) + dims
            )

        scan = h.make_node(
            "Scan",
            [SEQ_PREFIX + n for n in state_in + self.input_names],
            [SEQ_PREFIX + n for n in state_out + self.output_names],
            name="time_scan",
            body=body,
            num_scan_inputs=len(self.input_names),
        )
        graph = h.make_graph(
            [scan],
            f"{step.name}_sequence",
            [outer(n, False) for n in state_in] + [outer(n, True) for n in self.input_names],
            [outer(n, False) for n in state_out] + [outer(n, True) for n in self.output_names],
            list(step.initializer),
        )
        model = copy.deepcopy(self.model)
        model.graph.CopyFrom(graph)
        return model

    def __repr__(self) -> str:
        return (
            f"OrtExecutor(inputs={self.input_names}, outputs={self.output_names}, "
            f"stateful={list(self.state_nodes)}, return_state={self.return_state})"
        )
