"""NIR graph (or .nir file) to TALON IR, with the simulation's dt (conventions in `common`).

Assumptions, stated once: inputs are held constant over a step (forward Euler); a spiking neuron
resets to zero in TALON, so NIR's ``v_reset`` is handled by shifting the membrane (v_leak and
v_threshold move by -v_reset): spikes match except that the membrane starts at v_reset instead of
0, which is warned about (an error with strict=True). CubaLIF updates its current before the
membrane (snnTorch's order). Nested NIRGraph nodes are inlined with dotted names; graphs with
cycles become ``Graph(allow_cycles=True)`` for ``bridge.CyclicGraphExecutor``.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any, Callable

import h5py
import numpy as np

from talon import ir
from talon.ir._h5values import BadValue
from talon.ir._h5walk import NIR_FILTERS, SafeFile, walk

from ..errors import ConversionError
from .common import (
    DT_KEY,
    behaviour_change,
    check_dt,
    inclusive_threshold,
    load_nir,
    neuron_array,
    to_steps,
)

TALON_KEY = "talon"  # node metadata key under which ir_to_nir keeps what NIR cannot say


@dataclass(frozen=True)
class _Context:
    """Conversion settings handed to every node converter."""

    dt: float
    strict: bool
    exact_threshold: bool


def _shape(types: Any, key: str, name: str) -> tuple[int, ...]:
    """The shape stored in a NIR Input/Output type dict."""
    shape = None if types is None else types.get(key)
    if shape is None:
        raise ConversionError(f"NIR node {name!r} has no {key} shape; build the graph with type inference on")
    return tuple(int(d) for d in np.ravel(shape))


def _spatial(value: Any, n: int) -> tuple[int, ...]:
    """An int or a sequence of ints as an n-tuple."""
    arr = np.ravel(np.asarray(value))
    return tuple(int(v) for v in (np.repeat(arr, n) if arr.size == 1 else arr))


def _reset_shift(node: Any, name: str, ctx: _Context) -> np.ndarray:
    """v_reset as a float64 array, warning when it is non-zero (the membrane is shifted by it)."""
    v_reset = np.zeros(1) if getattr(node, "v_reset", None) is None else np.asarray(node.v_reset, dtype=np.float64)
    if np.any(v_reset != 0):
        behaviour_change(
            name, type(node).__name__,
            "v_reset is non-zero but TALON resets to 0; converted with the membrane shifted by -v_reset "
            "(v_leak and v_threshold moved), so spikes match once the neuron has reset but the membrane "
            "starts at v_reset instead of 0 and reported states are offset by -v_reset",
            ctx.strict,
        )
    return v_reset


def _threshold(value: Any, name: str, kind: str, ctx: _Context) -> np.ndarray:
    """A NIR (fires when v > t) threshold as a TALON (fires when v >= t) one."""
    if ctx.exact_threshold:
        return inclusive_threshold(value)
    behaviour_change(
        name, kind,
        "NIR fires when v > v_threshold, TALON when v >= v_threshold; the threshold is kept "
        "(exact_threshold=False), so a membrane exactly at the threshold spikes here",
        ctx.strict,
    )
    return neuron_array(value)


def _spiking(node: Any, name: str, ctx: _Context) -> dict[str, np.ndarray]:
    """v_threshold, and v_leak where the neuron has one, for TALON's reset to zero and `>=` threshold."""
    shift = _reset_shift(node, name, ctx)
    fields = {"v_threshold": _threshold(np.asarray(node.v_threshold, dtype=np.float64) - shift, name,
                                        type(node).__name__, ctx)}
    if hasattr(node, "v_leak"):
        fields["v_leak"] = neuron_array(np.asarray(node.v_leak, dtype=np.float64) - shift)
    return fields


def _lif(node: Any, name: str, ctx: _Context) -> ir.Node:
    return ir.LIF(tau=to_steps(node.tau, ctx.dt, name), r=neuron_array(node.r), **_spiking(node, name, ctx))


def _if(node: Any, name: str, ctx: _Context) -> ir.Node:
    return ir.IF(r=neuron_array(np.asarray(node.r, dtype=np.float64) * ctx.dt), **_spiking(node, name, ctx))


def _cuba_lif(node: Any, name: str, ctx: _Context) -> ir.Node:
    return ir.CubaLIF(
        tau_syn=to_steps(node.tau_syn, ctx.dt, name, "tau_syn"), tau_mem=to_steps(node.tau_mem, ctx.dt, name, "tau_mem"), r=neuron_array(node.r),
        w_in=neuron_array(np.broadcast_to(node.w_in, np.shape(node.v_threshold))), **_spiking(node, name, ctx),
    )


def _conv_padding(node: Any, name: str, n: int) -> tuple[int, ...]:
    """NIR padding (ints, 'valid' or 'same') as symmetric ints; 'same' needs stride 1 and an even span."""
    if not isinstance(node.padding, (str, bytes)):
        return _spatial(node.padding, n)
    mode = node.padding.decode() if isinstance(node.padding, bytes) else node.padding
    if mode == "valid":
        return (0,) * n
    spans = [d * (k - 1) for d, k in zip(_spatial(node.dilation, n), node.weight.shape[2:])]
    if any(s != 1 for s in _spatial(node.stride, n)) or any(span % 2 for span in spans):
        raise ConversionError(
            f"NIR node {name!r} (Conv{n}d): padding 'same' with stride {node.stride} and kernel span {spans} "
            "needs asymmetric padding, which TALON convolutions cannot express"
        )
    return tuple(span // 2 for span in spans)


def _conv(node: Any, name: str, ctx: _Context) -> ir.Node:
    n = np.asarray(node.weight).ndim - 2
    cls = ir.Conv1d if n == 1 else ir.Conv2d
    return cls(
        weight=np.asarray(node.weight), bias=np.asarray(node.bias), stride=_spatial(node.stride, n),
        padding=_conv_padding(node, name, n), dilation=_spatial(node.dilation, n), groups=int(node.groups),
    )


def _restored(converted: ir.Node, node: Any) -> ir.Node:
    """The node with the TALON type and fields ir_to_nir kept in the NIR node's metadata (NIR has no field for them)."""
    extra = dict((getattr(node, "metadata", None) or {}).get(TALON_KEY, {}))
    if not extra:
        return converted
    cls = ir.get_primitive(_plain(extra.pop("type", type(converted).__name__)))
    fields = {**converted.params(), **{k: _plain(v) for k, v in extra.items() if k != "shape"}}
    if "shape" in extra:  # parameters were broadcast or reshaped to the input's shape for NIR
        shape = tuple(int(d) for d in np.ravel(extra["shape"]))
        fields.update({f: _unbroadcast(fields[f], shape) for f in cls.param_names})
    return cls(**fields)


def _unbroadcast(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """An array reshaped, or broadcast, to the input's shape, back in its original `shape`."""
    if value.size == int(np.prod(shape, dtype=np.int64)):
        return value.reshape(shape)
    lead = (0,) * (value.ndim - len(shape))
    return value[lead + tuple(slice(0, 1) if s == 1 else slice(None) for s in shape)].reshape(shape)


def _plain(value: Any) -> Any:
    """A value read back from HDF5 as Python types again: bytes to str, numpy scalars to numbers, dicts recursively."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _pool(cls: type[ir.Node]) -> Callable[[Any, str, _Context], ir.Node]:
    def convert(node: Any, name: str, ctx: _Context) -> ir.Node:
        return cls(kernel_size=_spatial(node.kernel_size, 2), stride=_spatial(node.stride, 2),
                   padding=_spatial(node.padding, 2))

    return convert


# NIR type name -> converter(node, name, ctx) returning the TALON IR node.
CONVERTERS: dict[str, Callable[[Any, str, _Context], ir.Node]] = {
    "Input": lambda node, name, ctx: ir.Input(shape=_shape(node.input_type, "input", name)),
    "Output": lambda node, name, ctx: ir.Output(shape=_shape(node.output_type, "output", name)),
    "Affine": lambda node, name, ctx: ir.Affine(weight=np.asarray(node.weight), bias=np.asarray(node.bias)),
    "Linear": lambda node, name, ctx: ir.Affine(weight=np.asarray(node.weight)),
    "Conv1d": _conv,
    "Conv2d": _conv,
    "AvgPool2d": _pool(ir.AvgPool2d),
    "SumPool2d": _pool(ir.SumPool2d),
    "Flatten": lambda node, name, ctx: ir.Flatten(start_dim=int(node.start_dim), end_dim=int(node.end_dim)),
    "LIF": _lif,
    "IF": _if,
    "LI": lambda node, name, ctx: ir.LI(
        tau=to_steps(node.tau, ctx.dt, name), r=neuron_array(node.r), v_leak=neuron_array(node.v_leak)
    ),
    "I": lambda node, name, ctx: ir.Integrator(r=neuron_array(np.asarray(node.r, dtype=np.float64) * ctx.dt)),
    "CubaLIF": _cuba_lif,
    "Threshold": lambda node, name, ctx: ir.Threshold(
        threshold=_threshold(np.asarray(node.threshold, dtype=np.float64), name, "Threshold", ctx)
    ),
    "Scale": lambda node, name, ctx: ir.Scale(scale=np.asarray(node.scale)),
}


def _inline(graph: Any, prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Nodes and edges with every nested NIRGraph replaced by its inner nodes (named `sub.inner`).

    An edge into a subgraph goes to the successors of its Input node (``sub`` when it has one
    Input, ``sub.<input name>`` otherwise); an edge out of it leaves from its Output's predecessors.
    """
    nir = load_nir()
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    ports: dict[str, dict[str, list[str]]] = {}  # subgraph -> port name -> inner nodes it connects to
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.NIRGraph):
            nodes[prefix + name] = node
            continue
        inner_nodes, inner_edges = _inline(node, f"{prefix}{name}.")
        io = {k for k, v in inner_nodes.items() if isinstance(v, (nir.Input, nir.Output))}
        ports[name] = {
            k.rpartition(".")[2]: [d for s, d in inner_edges if s == k] + [s for s, d in inner_edges if d == k]
            for k in io
        }
        nodes.update({k: v for k, v in inner_nodes.items() if k not in io})
        edges += [e for e in inner_edges if not set(e) & io]

    def ends(ref: str, kind: type) -> list[str]:
        if ref in graph.nodes and ref not in ports:
            return [prefix + ref]
        sub, _, port = ref.partition(".")
        if sub not in ports:
            raise ConversionError(f"NIR edge names unknown node {prefix + ref!r}")
        names = [n for n, v in graph.nodes[sub].nodes.items() if isinstance(v, kind)]
        if not port and len(names) == 1:
            port = names[0]
        if port not in names:
            raise ConversionError(
                f"NIR edge names {prefix + ref!r}: subgraph {prefix + sub!r} has {kind.__name__} nodes {names}"
            )
        return ports[sub][port]

    for src, dst in graph.edges:
        edges += [(s, d) for s in ends(src, nir.Output) for d in ends(dst, nir.Input)]
    return nodes, edges


NIR_EXPANSION = 256  # a .nir file (gzip-compressed) may declare this many times its size in values
NIR_MIN_BUDGET = 64 << 20  # ... and at least this many bytes (documented; both can be raised)


def _load(graph_or_path: Any) -> Any:
    """A NIRGraph from a NIRGraph or a path to a .nir file.

    The file is read once into memory and walked with the project's safe HDF5 walk (`talon.ir._h5walk`: no
    links, no external storage, each object once, nesting and a byte budget bounded by the file's size)
    before nir.read sees the same bytes; anything nir.read then raises is a ConversionError."""
    nir = load_nir()
    if isinstance(graph_or_path, (str, os.PathLike)):
        path = os.fspath(graph_or_path)
        if not os.path.isfile(path):
            raise ConversionError(f"{path}: no such NIR file")
        with open(path, "rb") as f:
            data = f.read()
        try:
            _check_h5(io.BytesIO(data), len(data))
            return nir.read(io.BytesIO(data), type_check=False)  # our Graph checks the shapes, naming the node
        except ConversionError as exc:
            raise ConversionError(f"{path}: {exc}") from None
        except Exception as exc:  # noqa: BLE001  (nir.read trusts the file: any failure means a malformed file)
            raise ConversionError(f"{path}: not a readable NIR file: {type(exc).__name__}: {exc}") from None
    if not isinstance(graph_or_path, nir.NIRGraph):
        raise ConversionError(f"nir_to_ir expects a nir.NIRGraph or a path, got {type(graph_or_path).__name__}")
    return graph_or_path


def _check_h5(raw: io.BytesIO, size: int) -> None:
    """Walk the whole file under the safe-walk rules; ConversionError naming what is refused."""
    try:
        h5 = h5py.File(raw, "r")
    except OSError as exc:
        raise ConversionError(f"not a readable NIR file: {exc}") from None
    with h5:
        try:
            walk(SafeFile(h5, raw, max(NIR_MIN_BUDGET, NIR_EXPANSION * size), NIR_FILTERS), h5.id)
        except BadValue as exc:
            raise ConversionError(f"refused: {exc}") from None


def nir_to_ir(
    graph_or_path: Any, *, dt: float | None = None, strict: bool = False, exact_threshold: bool = True
) -> ir.Graph:
    """A TALON IR graph from a NIR graph or .nir file simulated with timestep `dt` (seconds per step), which the
    graph keeps in metadata["nir.dt"] for a later ir_to_nir. A self-loop (an Affine feeding itself) is a one-node cycle.

    Behaviour changes TALON cannot avoid (non-zero v_reset, and with exact_threshold=False the
    `>` threshold) warn with NIRConversionWarning naming the node, or raise with strict=True.
    """
    dt = check_dt(dt)
    ctx = _Context(dt=dt, strict=strict, exact_threshold=exact_threshold)
    source = _load(graph_or_path)
    try:
        nodes, edges = _inline(source)
    except (TypeError, KeyError, IndexError, AttributeError, ValueError) as exc:
        if isinstance(exc, ConversionError):
            raise
        raise ConversionError(f"the NIR graph's nodes or edges are malformed: {type(exc).__name__}: {exc}") from None
    unsupported = [f"{name!r} ({type(n).__name__})" for name, n in nodes.items() if type(n).__name__ not in CONVERTERS]
    if unsupported:
        raise ConversionError(
            f"NIR node(s) with no TALON IR equivalent: {', '.join(unsupported)}; "
            f"supported NIR types: {sorted(CONVERTERS)}"
        )
    converted, problems = {}, []
    for name, node in nodes.items():
        try:
            converted[name] = _restored(CONVERTERS[type(node).__name__](node, name, ctx), node)
            converted[name].metadata = _metadata(node)
        except ConversionError as exc:
            problems.append(str(exc))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            problems.append(f"NIR node {name!r} ({type(node).__name__}): {type(exc).__name__}: {exc}")
    if problems:
        raise ConversionError(f"{len(problems)} NIR node(s) cannot be converted: " + "; ".join(problems))
    graph = ir.Graph(converted, edges, metadata={**_metadata(source), DT_KEY: dt}, allow_cycles=True)
    graph.allow_cycles = graph.is_cyclic
    graph.infer_shapes()
    return graph


def _metadata(node: Any) -> dict:
    """A NIR node's metadata as TALON node metadata (without the keys ir_to_nir added)."""
    meta = getattr(node, "metadata", None) or {}
    return {k: _plain(v) for k, v in meta.items() if k != TALON_KEY}
