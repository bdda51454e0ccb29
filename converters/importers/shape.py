"""Flatten, Reshape and Squeeze that merge contiguous feature dims (keeping the batch) to Flatten."""

from __future__ import annotations

import math
from typing import Sequence

import onnx_ir as ir

from talon.ir import Flatten

from .context import Alias, NodeContext, Unsupported, constant, dims
from .registry import importer


def flatten_dims(src: Sequence[int], dst: Sequence[int]) -> tuple[int, int] | None:
    """(start, end) such that merging src[start..end] gives dst, or None when dst is not such a merge."""
    for start in range(len(dst)):
        end = len(src) - (len(dst) - start)
        if end >= start and tuple(src[:start]) == tuple(dst[:start]) and tuple(src[end + 1 :]) == tuple(dst[start + 1 :]) \
                and math.prod(src[start : end + 1]) == dst[start]:
            return start, end
    return None


def merge_of(ctx: NodeContext, dst: tuple[int, ...] | None = None) -> Flatten | Alias:
    """The Flatten (or nothing) that turns the input's feature dims into `dst` (default: the inferred output
    feature dims); equal feature sizes mean the batch dim is kept."""
    src = ctx.features(0)
    dst = ctx.features(0, out=True) if dst is None else dst
    if src == dst:
        return Alias(0)
    found = flatten_dims(src, dst)
    if found is None:
        raise Unsupported(f"{ctx.shape(0)} -> (batch, {', '.join(map(str, dst))}) is not a flatten of contiguous feature dims")
    return Flatten(start_dim=found[0], end_dim=found[1])


BATCH = "batch"  # the batch dim, inside a shape computed at run time


def shape_elements(value: ir.Value | None, depth: int = 0) -> list | None:
    """Elements of a 1-D shape tensor that exporters compute from Shape/Gather/Unsqueeze/Concat/Cast and
    constants (`x.view(x.size(0), -1)` with a dynamic batch): ints, BATCH, or None where unknown."""
    arr = constant(value)
    if arr is not None:
        return [int(v) for v in arr.reshape(-1)]
    node = value.producer() if value is not None else None
    if node is None or depth > 32:
        return None
    op, inputs = node.op_type, node.inputs
    if op == "Shape" and not node.attributes:
        shape = dims(inputs[0])
        return None if shape is None else [BATCH, *shape[1:]]
    if op in ("Unsqueeze", "Squeeze", "Cast", "Identity"):
        return shape_elements(inputs[0], depth + 1)
    if op == "Gather":
        src, index = shape_elements(inputs[0], depth + 1), constant(inputs[1])
        return None if src is None or index is None else [src[int(i)] for i in index.reshape(-1)]
    if op == "Concat":
        parts = [shape_elements(v, depth + 1) for v in inputs]
        return None if any(p is None for p in parts) else [e for p in parts for e in p]
    if op == "Slice" and len(inputs) >= 3:  # x.flatten(2): Shape -> Slice(0, 2) -> Concat(-1)
        src = shape_elements(inputs[0], depth + 1)
        bounds = [constant(v) for v in inputs[1:5]]
        if src is None or any(b is None for b in bounds[:2]) or any(b is not None and b.size != 1 for b in bounds):
            return None
        start, end = (int(b.reshape(-1)[0]) for b in bounds[:2])
        step = int(bounds[3].reshape(-1)[0]) if len(bounds) > 3 and bounds[3] is not None else 1
        return src[slice(start, end, step)]
    if op in _ARITHMETIC and len(inputs) == 2:  # channels // groups in a channel shuffle's view
        a, b = (shape_elements(v, depth + 1) for v in inputs)
        if a is None or b is None or (len(a) != len(b) and 1 not in (len(a), len(b))):
            return None
        pairs = zip(a * (len(b) if len(a) == 1 else 1), b * (len(a) if len(b) == 1 else 1))
        return [None if BATCH in (x, y) or None in (x, y) or (op == "Div" and y == 0) else _ARITHMETIC[op](x, y)
                for x, y in pairs]
    return None


_ARITHMETIC = {"Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b,
               "Div": lambda a, b: int(a / b) if a * b < 0 else a // b}  # int64 Div truncates toward zero


def reshape_target(ctx: NodeContext, src: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """Output feature dims of a Reshape whose shape is computed at run time from the batch size, for input
    feature dims `src` (default: the inferred ones)."""
    if not ctx.has_input(1):
        raise Unsupported("the target shape (input 1) is missing")
    elements = shape_elements(ctx.node.inputs[1])
    src = ctx.features(0) if src is None else src
    if elements is None or None in elements or not elements:
        raise Unsupported("the output shape is unknown (neither inferred nor computed from the input's shape)")
    copied = [i for i, e in enumerate(elements[1:], 1) if e == 0 and not ctx.attr("allowzero", 0)]
    if any(i > len(src) for i in copied):
        raise Unsupported(f"shape {elements} copies (0) a dim beyond the input's rank {len(src) + 1}")
    head, rest = elements[0], [src[i - 1] if i in copied else e for i, e in enumerate(elements[1:], 1)]
    if BATCH in rest or (head not in (BATCH, 0, -1)) or (head == -1 and -1 in rest):
        raise Unsupported(f"shape {elements} does not keep the batch dim first")
    total = math.prod(src)
    if -1 in rest:
        known = math.prod(e for e in rest if e != -1)
        rest[rest.index(-1)] = total // known if known and total % known == 0 else -1
    if any(not isinstance(e, int) or e <= 0 for e in rest) or math.prod(rest) != total:
        raise Unsupported(f"shape {elements} does not keep the batch dim and the feature size {total}")
    return tuple(rest)


@importer("Flatten")
def flatten(ctx: NodeContext) -> Flatten | Alias:
    """Flatten with axis 1: everything but the batch into one dim."""
    rank = len(ctx.shape(0))
    axis = int(ctx.attr("axis", 1))
    if (axis + rank if axis < 0 else axis) != 1:
        raise Unsupported(f"axis {axis} mixes the batch dim into the features; only axis 1 keeps the batch")
    return merge_of(ctx)


@importer("Squeeze")
def squeeze(ctx: NodeContext) -> Flatten | Alias:
    """Squeeze of size-1 feature dims (as after global pooling) whose inferred output is a merge."""
    return merge_of(ctx)


@importer("Reshape")
def reshape(ctx: NodeContext) -> Flatten | Alias:
    """Reshape to a merge of contiguous feature dims, from the inferred output shape or, for shapes computed
    from the batch size at run time, from that computation; anything else is refused."""
    return merge_of(ctx, reshape_features(ctx))


def reshape_features(ctx: NodeContext, src: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """A Reshape's output feature dims: inferred, or computed from the input's shape (a dynamic batch) for
    input feature dims `src` (default: the inferred ones)."""
    known = dims(ctx.node.outputs[0])
    if known is not None and len(known) >= 1 and all(d is not None for d in known[1:]):
        return tuple(int(d) for d in known[1:])
    return reshape_target(ctx, src)
