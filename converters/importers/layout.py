"""Transpose (keeping the batch first) to Permute; Reshape, Transpose, Reshape that shuffles channels (as
shufflenet writes it) to one ChannelShuffle; Slice of one feature axis to Slice, and Slices that together
partition an axis to one ChannelSplit."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from talon.ir import ChannelShuffle, ChannelSplit, Permute, Slice

from .activations import _only_use
from .context import Fusion, NodeContext, Unsupported, dims
from .registry import fusion, importer
from .shape import reshape_features, shape_elements

INT64_MAX = 2**63 - 1


@importer("Transpose")
def transpose(ctx: NodeContext) -> Permute:
    """A permutation that keeps the batch dim first."""
    rank = len(ctx.shape(0))
    perm = ctx.attr("perm", kind=ir.AttributeType.INTS)
    perm = list(range(rank))[::-1] if perm is None else [int(p) for p in perm]
    if perm[0] != 0:
        raise Unsupported(f"perm {perm} moves the batch dim")
    return Permute(dims=perm)


def _default(node: ir.Node) -> bool:
    return node.domain in ("", "ai.onnx")


@fusion("Reshape")
def channel_shuffle(first: ir.Node, ctx: NodeContext) -> Fusion | None:
    """(N, C, *S) -> (N, g, C/g, *S) -> swap dims 1 and 2 -> (N, C, *S): ChannelShuffle(g)."""
    transpose_node = _only_use(first.outputs[0])
    if transpose_node is None or transpose_node.op_type != "Transpose" or not _default(transpose_node):
        return None
    second = _only_use(transpose_node.outputs[0])
    if second is None or second.op_type != "Reshape" or not _default(second) or not _default(first):
        return None
    try:
        src = ctx.features(0)
        grouped = reshape_features(ctx)
    except Unsupported:
        return None
    perm = transpose_node.attributes.get("perm")
    perm = None if perm is None else list(perm.value)
    if perm is None or len(perm) != len(grouped) + 1:
        return None
    try:
        back = reshape_features(NodeContext(second, ctx.opset, ctx.options), tuple(grouped[p - 1] for p in perm[1:]))
    except Unsupported:
        return None
    if len(grouped) != len(src) + 1 or back != src or grouped[2:] != src[1:] \
            or grouped[0] * grouped[1] != src[0] or perm != [0, 2, 1, *range(3, len(grouped) + 1)]:
        return None
    groups = int(grouped[0])
    return Fusion([first, transpose_node, second], first.inputs[0], second.outputs[0],
                  lambda: ChannelShuffle(groups=groups))


def _static_ints(value: ir.Value | None) -> np.ndarray | None:
    """A constant int tensor, or one computed from static dims of shapes (bounds from a dynamic-batch
    TorchScript export of x.chunk), as a 1-D array; None otherwise."""
    if value is None:
        return None
    elements = shape_elements(value)
    if elements is None or any(not isinstance(e, int) for e in elements):
        return None
    return np.array(elements, dtype=np.int64)


def _slice_params(node: ir.Node, opset: int, rank: int) -> tuple[int, int, int, int] | None:
    """(axis, start, end, step) of a Slice of one axis with constant bounds, normalised to non-negative indices
    of an axis of known size; None otherwise."""
    if opset < 10:
        attrs = {k: node.attributes.get(k) for k in ("starts", "ends", "axes")}
        if attrs["starts"] is None or attrs["ends"] is None:
            return None
        starts, ends = list(attrs["starts"].value), list(attrs["ends"].value)
        axes = list(attrs["axes"].value) if attrs["axes"] is not None else list(range(len(starts)))
        steps = [1] * len(starts)
    else:
        values = [_static_ints(v) for v in (list(node.inputs[1:5]) + [None] * 4)[:4]]
        if values[0] is None or values[1] is None or (len(node.inputs) > 3 and node.inputs[3] is not None
                                                      and values[2] is None):
            return None
        if len(node.inputs) > 4 and node.inputs[4] is not None and values[3] is None:
            return None
        starts, ends = [int(v) for v in values[0].reshape(-1)], [int(v) for v in values[1].reshape(-1)]
        axes = [int(v) for v in values[2].reshape(-1)] if values[2] is not None else list(range(len(starts)))
        steps = [int(v) for v in values[3].reshape(-1)] if values[3] is not None else [1] * len(starts)
    if len(starts) != 1 or len(ends) != 1 or len(axes) != 1 or len(steps) != 1:
        return None
    shape = dims(node.inputs[0])
    axis = axes[0] + rank if axes[0] < 0 else axes[0]
    if shape is None or not 0 < axis < rank or shape[axis] is None or steps[0] <= 0:
        return None
    start, end, step = slice(starts[0], min(ends[0], INT64_MAX), steps[0]).indices(shape[axis])
    return axis, start, max(end, start), step


@importer("Slice")
def slice_(ctx: NodeContext) -> Slice:
    """A slice of one feature axis with constant bounds and a positive step."""
    found = _slice_params(ctx.node, ctx.opset, len(ctx.shape(0)))
    if found is None:
        raise Unsupported("only a slice of one feature axis with constant bounds and a positive step maps to Slice")
    axis, start, end, step = found
    return Slice(dim=axis, start=start, end=end, step=step)


@fusion("Slice")
def slice_partition(node: ir.Node, ctx: NodeContext) -> Fusion | None:
    """Slices of one value along one axis, step 1, that together cover it exactly once: one ChannelSplit whose
    outputs are the slices in axis order (the matcher fires at the first of them in graph order)."""
    x = node.inputs[0]
    shape = dims(x)
    if shape is None:
        return None
    users = [u.node for u in x.uses()]
    if any(u.op_type != "Slice" or not _default(u) for u in users) or len(set(users)) < 2:
        return None
    found = [(_slice_params(u, ctx.opset, len(shape)), u) for u in dict.fromkeys(users)]
    if any(p is None or p[3] != 1 for p, _ in found) or len({p[0] for p, _ in found}) != 1:
        return None
    found.sort(key=lambda item: item[0][1])
    axis = found[0][0][0]
    bounds = [(p[1], p[2]) for p, _ in found]
    if bounds[0][0] != 0 or bounds[-1][1] != shape[axis] or any(a[1] != b[0] for a, b in zip(bounds, bounds[1:])) \
            or any(e <= s for s, e in bounds):
        return None
    members = [u for _, u in found]
    sections = [e - s for s, e in bounds]
    return Fusion(members, x, members[-1].outputs[0], lambda: ChannelSplit(split_sections=sections, dim=axis),
                  outputs=[u.outputs[0] for u in members])
