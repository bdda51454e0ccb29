"""Input -> a graph input (ValueInfo with the IR props); Output -> an Identity node feeding a graph output."""

from __future__ import annotations

from talon.ir.primitives import Input, Output

from .context import EmitContext, ir_props, set_props
from .registry import register


@register(Input)
def emit_input(ctx: EmitContext, name: str, node: Input) -> None:
    vi = ctx.value_info(name, node.shape)
    set_props(vi, ir_props(node, {}))
    ctx.inputs.append(vi)


@register(Output)
def emit_output(ctx: EmitContext, name: str, node: Output) -> None:
    ctx.emit(name, "Identity", [ctx.input(name)])
    vi = ctx.value_info(name, ctx.shapes[name])
    set_props(vi, ir_props(node, {}))
    ctx.outputs.append(vi)
