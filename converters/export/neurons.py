"""IR primitives that are one talon op of their class name (LIF, IF, LI, Integrator, CubaLIF, Threshold, and any a
user registers with converters.register_talon_op): the op's inputs are the data, then one graph input per state
item its op spec declares (`<node>.<item>_in`, onnx_ops.state; the next values are graph outputs
`<node>.<item>_out`), then the IR node's array fields of the same names; op attributes the IR node has as fields
(reset_mode) are written."""

from __future__ import annotations

import numpy as np

from onnx_ops import DOMAIN, op_spec, state_input_name, state_output_name
from talon.ir.primitives import Node

from .context import EmitContext


def _param_shape(param: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """None when the parameter broadcasts against the input as stored, else the input shape (same size)."""
    try:
        return None if np.broadcast_shapes(param, shape) == shape else shape
    except ValueError:
        return shape


def neuron_params(ctx: EmitContext, name: str, node: Node, fields) -> list[str]:
    """The node's parameter values of `fields`, reshaped to the input when stored flat (neuron-style nodes)."""
    target = _param_shape(node.neuron_shape, ctx.input_shape(name)) if hasattr(node, "neuron_shape") else None
    return [ctx.param(name, f, target) for f in fields]


def op_attributes(node: Node, op: str) -> dict:
    """The talon op's attributes that the IR node holds as fields of the same name."""
    return {a.name: getattr(node, a.name) for a in op_spec(op).attributes if hasattr(node, a.name)}


def emit_talon_op(ctx: EmitContext, name: str, node: Node) -> None:
    """The talon op named like the node's class; neuron parameters stored flat are reshaped to the input."""
    op = type(node).__name__
    spec = op_spec(op)
    shape = ctx.input_shape(name)
    items = spec.state
    ins, outs = [state_input_name(name, i) for i in items], [state_output_name(name, i) for i in items]
    params = neuron_params(ctx, name, node, spec.inputs[1 + len(items):])
    ctx.emit(name, op, [ctx.input(name), *ins, *params], [ctx.output(name), *outs], domain=DOMAIN,
             **op_attributes(node, op))
    ctx.state_inputs += [ctx.value_info(v, shape) for v in ins]
    ctx.state_outputs += [ctx.value_info(v, shape) for v in outs]
