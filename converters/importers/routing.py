"""Concat and Split (to ChannelSplit); Add and Sum live with the arithmetic importers."""

from __future__ import annotations

from talon.ir import ChannelSplit, Concat

from .context import Alias, NodeContext, Unsupported, constant, dims
from .registry import importer


def _activations(ctx: NodeContext, what: str) -> None:
    """Refuse constant operands: TALON merges activations only."""
    consts = [i for i, v in enumerate(ctx.node.inputs) if constant(v) is not None]
    if consts:
        raise Unsupported(f"{what} of a constant (input(s) {consts}) has no TALON IR equivalent")


@importer("Concat", data_inputs=None)
def concat(ctx: NodeContext) -> Concat | Alias:
    """Concatenation of activations along a feature axis, in input order."""
    _activations(ctx, "concatenation")
    if len(ctx.node.inputs) == 1:
        return Alias(0)
    rank = len(ctx.shape(0))
    axis = int(ctx.attr("axis", 1))
    ctx.axis(axis, rank)
    return Concat(dim=axis)


@importer("Split")
def split(ctx: NodeContext) -> ChannelSplit:
    """Split along a feature axis into sections read from the inferred output shapes."""
    shape = ctx.shape(0)
    axis = ctx.axis(int(ctx.attr("axis", 0)), len(shape))
    sections = []
    for out in ctx.node.outputs:
        d = dims(out)
        if d is None or len(d) != len(shape) or d[axis] is None:
            raise Unsupported(f"the size of output {out.name!r} along axis {axis} is unknown")
        sections.append(int(d[axis]))
    return ChannelSplit(split_sections=sections, dim=int(ctx.attr("axis", 0)))
