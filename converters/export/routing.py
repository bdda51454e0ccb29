"""Skip -> Sum / Concat(axis 1) / Identity, Concat -> Concat, ChannelSplit -> talon.ChannelSplit (output i = edge i)."""

from __future__ import annotations

from onnx_ops import DOMAIN
from talon.ir.primitives import ChannelSplit, Concat, Skip

from .context import EmitContext
from .registry import register


@register(Skip)
def emit_skip(ctx: EmitContext, name: str, node: Skip) -> None:
    if node.kind == "concatenate":
        ctx.emit(name, "Concat", ctx.inputs_of(name), axis=1)
    elif node.kind == "residual":
        ctx.emit(name, "Sum", ctx.inputs_of(name))
    else:
        ctx.emit(name, "Identity", [ctx.input(name)])


@register(Concat)
def emit_concat(ctx: EmitContext, name: str, node: Concat) -> None:
    ctx.emit(name, "Concat", ctx.inputs_of(name), axis=node.dim)


@register(ChannelSplit)
def emit_split(ctx: EmitContext, name: str, node: ChannelSplit) -> None:
    outputs = [ctx.output(name, i) for i in range(len(node.split_sections))]
    ctx.emit(
        name,
        "ChannelSplit",
        [ctx.input(name)],
        outputs,
        domain=DOMAIN,
        split_sections=list(node.split_sections),
        axis=node.dim,
    )
