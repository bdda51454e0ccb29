"""Stateful neurons (LIF, IF, LI, Integrator, CubaLIF) -> the talon op of the same name, whose state items
are graph inputs `<node>.<item>_in` and outputs `<node>.<item>_out` (onnx_ops.state); Threshold -> talon.Threshold."""

from __future__ import annotations

import numpy as np

from onnx_ops import DOMAIN, STATE_ITEMS, state_input_name, state_output_name
from talon.ir.primitives import IF, LI, LIF, CubaLIF, Integrator, Threshold

from .context import EmitContext
from .registry import register

STATE_SIZE = {LIF: 1, IF: 1, LI: 1, Integrator: 1, CubaLIF: 2}  # items of the node's state tuple


def _param_shape(param: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """None when the parameter broadcasts against the input as stored, else the input shape (same size)."""
    try:
        return None if np.broadcast_shapes(param, shape) == shape else shape
    except ValueError:
        return shape


def _params(ctx: EmitContext, name: str, node) -> list[str]:
    """The node's parameter values in schema order, reshaped to the input when stored flat."""
    target = _param_shape(node.neuron_shape, ctx.input_shape(name))
    return [ctx.param(name, f, target) for f in node.param_names]


@register(*STATE_SIZE)
def emit_neuron(ctx: EmitContext, name: str, node) -> None:
    shape = ctx.input_shape(name)
    x = ctx.input(name)
    items = STATE_ITEMS[: STATE_SIZE[type(node)]]
    ins, outs = [state_input_name(name, i) for i in items], [state_output_name(name, i) for i in items]
    reset = getattr(node, "reset_mode", "zero")  # LIF, IF: the attribute only when not the default
    attrs = {"reset_mode": reset} if reset != "zero" else {}
    ctx.emit(name, type(node).__name__, [x, *ins, *_params(ctx, name, node)], [ctx.output(name), *outs], domain=DOMAIN,
             **attrs)
    ctx.state_inputs += [ctx.value_info(v, shape) for v in ins]
    ctx.state_outputs += [ctx.value_info(v, shape) for v in outs]


@register(Threshold)
def emit_threshold(ctx: EmitContext, name: str, node: Threshold) -> None:
    x = ctx.input(name)
    ctx.emit(name, "Threshold", [x, *_params(ctx, name, node)], domain=DOMAIN)
