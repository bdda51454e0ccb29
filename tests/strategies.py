"""Hypothesis strategies for random valid TALON IR primitives, metadata and graphs (shared by tests).

Public strategies:

- ``primitive_nodes(types=None)``: one valid node of any built-in primitive (or of the named types).
- ``node_for_shape(type_name, shape)``: a node of that type fitting an input shape (no batch dim).
- ``graphs(...)``: shape-consistent graphs (``graph.infer_shapes()`` succeeds) mixing every
  primitive: chains, ChannelSplit -> branches -> Concat / Skip('concatenate'), residual Skips,
  summed fan-in, passthroughs, optional extra Inputs and Outputs, optional feedback cycles,
  optional tricky names and metadata. Values are small and finite, weights float32 or float64.
- ``node_names()``, ``metadata_dicts()``: names with '/', '.', '%', NUL, non-ASCII; metadata of
  every supported value type (lists excluded: they come back as arrays by design).

Array contents come from a drawn seed (fast; shrinking works on shapes and choices).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from hypothesis import strategies as st

from talon import ir
from talon.ir.primitives.base import numel
from talon.ir.primitives.conv import conv_out_len

Shape = tuple[int, ...]

# Types a graph can hold that keep the shape of their input, used inside branches.
SHAPE_PRESERVING = (
    "ReLU", "Clamp", "Sigmoid", "Tanh", "GELU", "ELU", "Softmax", "PReLU", "LIF", "IF", "Dropout", "HybridRegion",
    "LayerNorm", "BatchNorm1d", "BatchNorm2d", "LI", "Integrator", "CubaLIF", "Threshold", "Scale",
)
# Types built from an input shape (everything except Input/Output and the routing nodes).
LAYER_TYPES = (
    "Affine", "SpikingAffine", "Conv1d", "Conv2d", "SepConv2d", "MaxPool2d", "AvgPool2d", "SumPool2d", "Upsample",
    "Flatten", "Pad", *SHAPE_PRESERVING,
)
# The CNN-family primitives: single nodes only (primitive_nodes), not yet mixed into random graphs.
CNN_TYPES = ("HardSigmoid", "HardSwish", "SiLU", "Bias", "Permute", "ChannelShuffle", "Slice", "ConvTranspose2d")
BUILTIN_TYPES = (*LAYER_TYPES, *CNN_TYPES, "Input", "Output", "Skip", "ChannelSplit", "Concat", "HostRegion",
                 "Multiply", "Subtract")
SKIP_TYPES = ("residual", "add", "concatenate", "concat", "passthrough", "identity")


def _rng(draw) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def _arr(rng: np.random.Generator, shape, dtype, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return rng.uniform(low, high, size=shape).astype(dtype)


def _maybe(draw, value):
    """value or None (the field then takes its default)."""
    return value if draw(st.booleans()) else None


def _features(draw, shape: Shape):
    return draw(st.sampled_from([None, int(shape[0]) if shape else 1, tuple(shape)]))


def _window(draw, size: int, *, max_kernel: int = 3, dilated: bool = True) -> tuple[int, int, int, int]:
    """(kernel, stride, padding, dilation) whose window fits an axis of the given size."""
    kernel = draw(st.integers(1, max(1, min(max_kernel, size))))
    dilation = draw(st.integers(1, 2)) if dilated else 1
    padding = draw(st.integers(0, kernel // 2))
    stride = draw(st.integers(1, 2))
    if conv_out_len(size, kernel, stride, padding, dilation) <= 0:
        dilation = 1
    return kernel, stride, padding, dilation


def _conv(draw, rng, dtype, shape: Shape, cls) -> ir.Node:
    channels, spatial = shape[0], shape[1:]
    groups = draw(st.sampled_from([g for g in (1, 2, channels) if channels % g == 0]))
    out = groups * draw(st.integers(1, 3))
    windows = [_window(draw, s) for s in spatial]
    kernel, stride, padding, dilation = (tuple(w[i] for w in windows) for i in range(4))
    return cls(
        weight=_arr(rng, (out, channels // groups, *kernel), dtype), bias=_maybe(draw, _arr(rng, out, dtype)),
        stride=stride, padding=padding, dilation=dilation, groups=groups,
    )


def _pool(draw, rng, dtype, shape: Shape, cls) -> ir.Node:
    windows = [_window(draw, s, dilated=cls is ir.MaxPool2d) for s in shape[1:]]
    kernel, stride, padding, dilation = (tuple(w[i] for w in windows) for i in range(4))
    extra = {
        ir.MaxPool2d: {"dilation": dilation, "ceil_mode": draw(st.booleans())},
        ir.AvgPool2d: {"count_include_pad": draw(st.booleans()), "ceil_mode": draw(st.booleans())},
    }.get(cls, {})
    return cls(kernel_size=kernel, stride=_maybe(draw, stride), padding=padding, **extra)


def _neuron_shape(draw, shape: Shape) -> Shape:
    return draw(st.sampled_from([tuple(shape), (numel(shape),), (1,)]))


def _affine(draw, rng, dtype, shape, cls=ir.Affine, **extra):
    out = draw(st.integers(1, 6))
    return cls(weight=_arr(rng, (out, shape[-1]), dtype), bias=_maybe(draw, _arr(rng, out, dtype)), **extra)


def _spiking_affine(draw, rng, dtype, shape):
    bits = draw(st.integers(1, 16))
    return _affine(
        draw, rng, dtype, shape, ir.SpikingAffine, spike_mode=draw(st.sampled_from(["binary", "graded", "rate"])),
        weight_bits=bits, accumulator_bits=draw(st.integers(bits, 32)),
    )


def _sep_conv(draw, rng, dtype, shape):
    channels = shape[0]
    windows = [_window(draw, s) for s in shape[1:]]
    kernel, stride, padding, dilation = (tuple(w[i] for w in windows) for i in range(4))
    out = draw(st.integers(1, 4))
    return ir.SepConv2d(
        depthwise_weight=_arr(rng, (channels, 1, *kernel), dtype),
        pointwise_weight=_arr(rng, (out, channels, 1, 1), dtype),
        depthwise_bias=_maybe(draw, _arr(rng, channels, dtype)), pointwise_bias=_maybe(draw, _arr(rng, out, dtype)),
        stride=stride, padding=padding, dilation=dilation,
    )


def _upsample(draw, rng, dtype, shape):
    mode = draw(st.sampled_from(["nearest", "bilinear"]))
    align = mode == "bilinear" and draw(st.booleans())
    if draw(st.booleans()):
        return ir.Upsample(mode=mode, align_corners=align, scale_factor=draw(st.integers(1, 2)))
    return ir.Upsample(mode=mode, align_corners=align, size=(draw(st.integers(1, 8)), draw(st.integers(1, 8))))


def _flatten(draw, rng, dtype, shape):
    rank = len(shape)
    start = draw(st.integers(0, rank - 1))
    end = draw(st.integers(start, rank - 1))
    return ir.Flatten(
        start_dim=draw(st.sampled_from([start, start - rank])), end_dim=draw(st.sampled_from([end, end - rank]))
    )


_NEURON_RANGES = {"tau": (1.0, 10.0), "v_threshold": (0.2, 1.0), "threshold": (0.2, 1.0), "v_leak": (-0.2, 0.2)}


def _neuron(cls) -> Callable:
    """A builder for a neuron-like primitive: one array per `param_names` entry, in a sensible range."""

    def build(draw, rng, dtype, shape):
        n = _neuron_shape(draw, shape)
        ranges = {
            name: _NEURON_RANGES.get("tau" if name.startswith("tau") else name, (0.5, 2.0)) for name in cls.param_names
        }
        return cls(**{name: _arr(rng, n, dtype, *bounds) for name, bounds in ranges.items()})

    return build


def _pad(draw, rng, dtype, shape):
    pairs = draw(st.integers(1, len(shape) - 1))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(2 * pairs))
    return ir.Pad(padding=padding, value=draw(st.sampled_from([0.0, -1.5])))


def _batchnorm(draw, rng, dtype, shape, cls):
    c = shape[0]
    return cls(
        num_features=c, running_mean=_arr(rng, c, dtype), running_var=_arr(rng, c, dtype, 0.5, 2.0),
        weight=_maybe(draw, _arr(rng, c, dtype)), bias=_maybe(draw, _arr(rng, c, dtype)),
        eps=draw(st.sampled_from([1e-5, 1e-3])), momentum=draw(st.sampled_from([0.1, 0.01])),
    )


def _layernorm(draw, rng, dtype, shape):
    k = draw(st.integers(1, len(shape)))
    norm = tuple(shape[-k:])
    return ir.LayerNorm(
        normalized_shape=norm, weight=_arr(rng, norm, dtype), bias=_maybe(draw, _arr(rng, norm, dtype)),
        eps=draw(st.sampled_from([1e-5, 1e-3])),
    )


def _softmax(draw, rng, dtype, shape):
    rank = len(shape)
    return ir.Softmax(features=_features(draw, shape), dim=draw(st.sampled_from([-1, 1, rank, -rank])))


def _prelu(draw, rng, dtype, shape):
    n = draw(st.sampled_from([1, shape[0]]))
    return ir.PReLU(weight=_arr(rng, n, dtype, 0.0, 0.5), features=_features(draw, shape))


def _clamp(draw, rng, dtype, shape):
    low, high = sorted(draw(st.lists(_finite, min_size=2, max_size=2)))
    bounds = draw(st.sampled_from([(low, high), (low, None), (None, high)]))
    return ir.Clamp(*bounds, features=_features(draw, shape))


def _simple(cls, **fields: Callable) -> Callable:
    """A builder for a features-only primitive with extra fields drawn from the given strategies."""

    def build(draw, rng, dtype, shape):
        return cls(features=_features(draw, shape), **{k: draw(v) for k, v in fields.items()})

    return build


_finite = st.floats(-2.0, 2.0, allow_nan=False, width=32).map(float)


def _permute(draw, rng, dtype, shape):
    return ir.Permute(dims=(0, *draw(st.permutations(range(1, len(shape) + 1)))))


def _channel_shuffle(draw, rng, dtype, shape):
    return ir.ChannelShuffle(groups=draw(st.sampled_from([g for g in range(1, shape[0] + 1) if shape[0] % g == 0])))


def _slice(draw, rng, dtype, shape):
    dim = draw(st.integers(1, len(shape)))
    start = draw(st.integers(0, shape[dim - 1] - 1))
    return ir.Slice(dim=dim, start=start, end=draw(st.integers(start + 1, shape[dim - 1])), step=draw(st.integers(1, 2)))


def _conv_transpose(draw, rng, dtype, shape):
    out, k = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return ir.ConvTranspose2d(weight=_arr(rng, (shape[0], out, k, k), dtype), bias=_maybe(draw, _arr(rng, out, dtype)),
                              stride=draw(st.integers(1, 2)), padding=draw(st.integers(0, k - 1)))

# type name -> (input ranks it accepts, builder(draw, rng, dtype, shape) -> node)
BUILDERS: dict[str, tuple[Sequence[int], Callable]] = {
    "Affine": ((1, 2, 3), _affine),
    "SpikingAffine": ((1, 2, 3), _spiking_affine),
    "Conv1d": ((2,), lambda d, r, t, s: _conv(d, r, t, s, ir.Conv1d)),
    "Conv2d": ((3,), lambda d, r, t, s: _conv(d, r, t, s, ir.Conv2d)),
    "SepConv2d": ((3,), _sep_conv),
    "MaxPool2d": ((3,), lambda d, r, t, s: _pool(d, r, t, s, ir.MaxPool2d)),
    "AvgPool2d": ((3,), lambda d, r, t, s: _pool(d, r, t, s, ir.AvgPool2d)),
    "Upsample": ((3,), _upsample),
    "Flatten": ((1, 2, 3), _flatten),
    "LIF": ((1, 2, 3), _neuron(ir.LIF)),
    "IF": ((1, 2, 3), _neuron(ir.IF)),
    "LI": ((1, 2, 3), _neuron(ir.LI)),
    "Integrator": ((1, 2, 3), _neuron(ir.Integrator)),
    "CubaLIF": ((1, 2, 3), _neuron(ir.CubaLIF)),
    "Threshold": ((1, 2, 3), _neuron(ir.Threshold)),
    "Scale": ((1, 2, 3), _neuron(ir.Scale)),
    "SumPool2d": ((3,), lambda d, r, t, s: _pool(d, r, t, s, ir.SumPool2d)),
    "Pad": ((2, 3), _pad),
    "ReLU": ((1, 2, 3), _simple(ir.ReLU, negative_slope=st.sampled_from([0.0, 0.01, 0.2]))),
    "Clamp": ((1, 2, 3), _clamp),
    "Sigmoid": ((1, 2, 3), _simple(ir.Sigmoid)),
    "Tanh": ((1, 2, 3), _simple(ir.Tanh)),
    "GELU": ((1, 2, 3), _simple(ir.GELU, approximate=st.booleans())),
    "ELU": ((1, 2, 3), _simple(ir.ELU, alpha=st.sampled_from([1.0, 0.5]))),
    "Softmax": ((1, 2, 3), _softmax),
    "PReLU": ((1, 2, 3), _prelu),
    "Dropout": ((1, 2, 3), _simple(ir.Dropout, p=st.sampled_from([0.0, 0.25, 0.5]))),
    "HybridRegion": (
        (1, 2, 3),
        _simple(ir.HybridRegion, mode=st.sampled_from(["ann", "snn"]), name=st.none() | st.text("abc_", max_size=5)),
    ),
    "BatchNorm1d": ((1, 2), lambda d, r, t, s: _batchnorm(d, r, t, s, ir.BatchNorm1d)),
    "BatchNorm2d": ((3,), lambda d, r, t, s: _batchnorm(d, r, t, s, ir.BatchNorm2d)),
    "LayerNorm": ((1, 2, 3), _layernorm),
    "HardSigmoid": ((1, 2, 3), _simple(ir.HardSigmoid, alpha=st.sampled_from([1.0 / 6.0, 0.2]))),
    "HardSwish": ((1, 2, 3), _simple(ir.HardSwish)),
    "SiLU": ((1, 2, 3), _simple(ir.SiLU)),
    "Bias": ((1, 2, 3), lambda d, r, t, s: ir.Bias(bias=_arr(r, s[-1:], t))),
    "Permute": ((1, 2, 3), _permute),
    "ChannelShuffle": ((2, 3), _channel_shuffle),
    "Slice": ((1, 2, 3), _slice),
    "ConvTranspose2d": ((3,), _conv_transpose),
}

dtypes = st.sampled_from([np.float32, np.float32, np.float64])


def input_shapes(ranks: Sequence[int] = (1, 2, 3)) -> st.SearchStrategy[Shape]:
    """A feature shape without batch: (n,), (C, L) or (C, H, W), small sizes."""
    by_rank = {
        1: st.tuples(st.integers(1, 8)),
        2: st.tuples(st.integers(1, 4), st.integers(3, 8)),
        3: st.tuples(st.integers(1, 4), st.integers(3, 7), st.integers(3, 7)),
    }
    return st.one_of([by_rank[r] for r in ranks])


@st.composite
def node_for_shape(draw, type_name: str, shape: Shape, dtype=None) -> ir.Node:
    """A node of `type_name` (a key of BUILDERS) whose input can have the given shape."""
    ranks, build = BUILDERS[type_name]
    if len(shape) not in ranks:
        raise ValueError(f"{type_name} does not take inputs of rank {len(shape)}")
    return build(draw, _rng(draw), dtype or draw(dtypes), tuple(shape))


@st.composite
def primitive_nodes(draw, types: Sequence[str] | None = None) -> ir.Node:
    """One valid node of a built-in primitive (any of `types`, default all), without metadata."""
    type_name = draw(st.sampled_from(list(types or BUILTIN_TYPES)))
    if type_name in ("Input", "Output"):
        return getattr(ir, type_name)(draw(input_shapes()))
    if type_name == "Skip":
        return ir.Skip(skip_type=draw(st.sampled_from(SKIP_TYPES)))
    if type_name == "ChannelSplit":
        sections = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
        return ir.ChannelSplit(split_sections=tuple(sections), dim=draw(st.sampled_from([1, 2, -1])))
    if type_name == "Concat":
        return ir.Concat(dim=draw(st.sampled_from([1, 2, -1])))
    if type_name == "HostRegion":
        return draw(host_regions())
    if type_name in ("Multiply", "Subtract"):
        return getattr(ir, type_name)()
    ranks, _ = BUILDERS[type_name]
    return draw(node_for_shape(type_name, draw(input_shapes(ranks))))


@st.composite
def host_regions(draw) -> ir.HostRegion:
    """A HostRegion holding a one-op ONNX model (Relu, Neg or Abs) of a small input shape."""
    import onnx
    from onnx import helper as h

    shape = draw(input_shapes())
    op = draw(st.sampled_from(["Relu", "Neg", "Abs"]))
    batch = draw(st.sampled_from([0, 1, 2]))
    dims = [batch or "batch", *shape]
    graph = h.make_graph([h.make_node(op, ["x"], ["y"])], "region", [h.make_tensor_value_info("x", 1, dims)],
                         [h.make_tensor_value_info("y", 1, dims)])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    text = "[" + ",".join(str(d) for d in shape) + "]"
    return ir.HostRegion(model=np.frombuffer(model.SerializeToString(), np.uint8).copy(), in_shapes=f"[{text}]",
                         out_shapes=f"[{text}]", batch=batch)


def node_names() -> st.SearchStrategy[str]:
    """Node names as converters produce them and worse: dots, '/', '%', NUL, spaces, non-ASCII, '.'."""
    alphabet = st.sampled_from(list("abcxyz019_-. /%:é\x00λ"))
    return st.one_of(st.just("."), st.just(".."), st.just("%2F"), st.text(alphabet, min_size=1, max_size=10))


_texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True), _texts,
)


@st.composite
def _meta_arrays(draw) -> np.ndarray:
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_]))
    shape = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    return _arr(_rng(draw), shape, np.float64, -5, 5).astype(dtype)


def metadata_dicts(max_depth: int = 2) -> st.SearchStrategy[dict]:
    """Metadata dicts of every supported value type, with dicts nested up to max_depth, and keys holding
    '.', '/', '%' and non-ASCII characters."""
    keys = st.text(st.sampled_from(list("ab_./%é")), min_size=1, max_size=6)
    leaves = st.one_of(_scalars, _meta_arrays(), st.lists(_texts, min_size=1, max_size=3).map(np.array))
    values = leaves
    for _ in range(max_depth):
        values = st.one_of(leaves, st.dictionaries(keys, values, max_size=3))
    return st.dictionaries(keys, values, max_size=4)


class _Builder:
    """Accumulates nodes and edges of a graph under construction, naming nodes on the way."""

    def __init__(self, draw, names: st.SearchStrategy[str] | None, metadata: bool):
        self.draw, self.names, self.with_metadata = draw, names, metadata
        self.nodes: dict[str, ir.Node] = {}
        self.edges: list[tuple[str, str]] = []
        self.out_shape: dict[str, Shape] = {}  # output shape of each single-output node

    def add(self, node: ir.Node, inputs: Sequence[str], shape: Shape | None) -> str:
        if self.names is None:
            name = f"{type(node).__name__.lower()}_{len(self.nodes)}"
        else:
            name = self.draw(self.names)
            name = f"{name}~{len(self.nodes)}" if name in self.nodes else name
        if self.with_metadata and self.draw(st.integers(0, 4)) == 0:
            node.metadata = self.draw(metadata_dicts(1))
        self.nodes[name] = node
        self.edges.extend((src, name) for src in inputs)
        if shape is not None:
            self.out_shape[name] = tuple(shape)
        return name

    def layer(self, src: str, types: Sequence[str]) -> str:
        """A node of one of `types` that fits src's output, fed by src."""
        shape = self.out_shape[src]
        fitting = [t for t in types if len(shape) in BUILDERS[t][0]]
        node = self.draw(node_for_shape(self.draw(st.sampled_from(fitting)), shape))
        return self.add(node, [src], node.output_shapes([shape])[0])

    def branch(self, src: str) -> str:
        """src itself, or a short chain of shape-preserving layers after it."""
        for _ in range(self.draw(st.integers(0, 2))):
            src = self.layer(src, SHAPE_PRESERVING)
        return src


@st.composite
def graphs(
    draw,
    max_blocks: int = 5,
    names: st.SearchStrategy[str] | None = None,
    metadata: bool = False,
    cycles: bool = False,
    multi_io: bool = True,
    layer_types: Sequence[str] = LAYER_TYPES,
) -> ir.Graph:
    """A random shape-consistent graph (see the module docstring).

    names: a strategy for node names (default: readable unique names like ``conv2d_3``);
    metadata: attach random graph and node metadata; cycles: maybe add a feedback edge (then
    ``allow_cycles=True``); multi_io: maybe add a second Input and extra Outputs.
    """
    b = _Builder(draw, names, metadata)
    first = draw(input_shapes())
    cur = b.add(ir.Input(first), [], first)
    taps: list[str] = []
    for _ in range(draw(st.integers(1, max_blocks))):
        shape = b.out_shape[cur]
        block = draw(st.sampled_from(["layer", "layer", "split", "residual", "sum", "passthrough"]))
        if block == "split" and shape[0] >= 2:
            cut = sorted(draw(st.sets(st.integers(1, shape[0] - 1), min_size=1, max_size=min(3, shape[0] - 1))))
            sections = [hi - lo for lo, hi in zip([0, *cut], [*cut, shape[0]])]
            split = b.add(ir.ChannelSplit(split_sections=tuple(sections)), [cur], None)
            ends = []
            for i, n in enumerate(sections):  # outgoing edge i carries section i
                b.out_shape[split] = (n, *shape[1:])
                direct = i == len(sections) - 1 and draw(st.booleans())  # its edge to the merge comes last
                ends.append(split if direct else b.branch(b.layer(split, SHAPE_PRESERVING)))
            del b.out_shape[split]
            order = draw(st.permutations(range(len(ends))))
            merge = draw(st.sampled_from([ir.Concat(dim=1), ir.Skip(skip_type="concatenate"),
                                          ir.Skip(skip_type="concat")]))
            cur = b.add(merge, [ends[i] for i in order], (shape[0], *shape[1:]))
        elif block == "residual":
            extra = b.add(ir.Input(shape), [], shape) if multi_io and draw(st.integers(0, 3)) == 0 else None
            ends = [b.branch(cur), b.layer(cur, SHAPE_PRESERVING)] + ([extra] if extra else [])
            kind = draw(st.sampled_from(["residual", "add"]))
            cur = b.add(ir.Skip(skip_type=kind), list(dict.fromkeys(ends)), shape)
        elif block == "sum":
            a, c = b.layer(cur, SHAPE_PRESERVING), b.layer(cur, SHAPE_PRESERVING)
            node = draw(node_for_shape(draw(st.sampled_from(["ReLU", "Tanh", "Dropout"])), shape))
            cur = b.add(node, [a, c], shape)
        elif block == "passthrough":
            cur = b.add(ir.Skip(skip_type=draw(st.sampled_from(["passthrough", "identity"]))), [cur], shape)
        else:
            cur = b.layer(cur, layer_types)
        taps.append(cur)
    b.add(ir.Output(b.out_shape[cur]), [cur], None)
    if multi_io and draw(st.integers(0, 3)) == 0:
        tap = draw(st.sampled_from(taps))
        b.add(ir.Output(b.out_shape[tap]), [tap], None)
    allow = False
    if cycles and draw(st.booleans()):
        allow = _add_feedback(draw, b)
    meta = draw(metadata_dicts()) if metadata and draw(st.booleans()) else None
    return ir.Graph(b.nodes, b.edges, metadata=meta, allow_cycles=allow)


def _add_feedback(draw, b: _Builder) -> bool:
    """Add an edge from a later node back to an earlier summing node of the same input shape."""
    order = list(b.nodes)
    candidates = []
    for i, dst in enumerate(order):
        node = b.nodes[dst]
        preds = [s for s, d in b.edges if d == dst]
        if isinstance(node, (ir.Input, ir.Output)) or node.merge or len(preds) != 1 or preds[0] not in b.out_shape:
            continue
        in_shape = b.out_shape[preds[0]]
        for src in order[i + 1 :]:
            fits = b.out_shape.get(src) == in_shape and not isinstance(b.nodes[src], ir.Output)
            if fits and (src, dst) not in b.edges:
                candidates.append((src, dst))
    if not candidates:
        return False
    edge = draw(st.sampled_from(candidates))
    closing = ir.Graph(b.nodes, [*b.edges, edge], allow_cycles=True).back_edges()
    if closing not in ([], [edge]):  # another edge of the cycle would be the delayed one
        return False
    b.edges.append(edge)
    return True
