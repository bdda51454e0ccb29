"""Mul and Div by a constant one (exporters' decompositions write x * 1, e.g. ELU's scales): the identity.
Any other product has no TALON IR primitive and is refused."""

from __future__ import annotations

import numpy as np

from .context import Alias, NodeContext, Unsupported, constant, dims
from .registry import importer


def identity_operand(ctx: NodeContext, neutral_slots: tuple[int, ...]) -> Alias:
    """Alias to the activation when the constant operand in one of neutral_slots is all ones and
    does not broadcast the activation to a larger shape."""
    inputs = ctx.node.inputs
    for slot in neutral_slots:
        value = constant(inputs[slot]) if slot < len(inputs) else None
        other = 1 - slot
        if value is not None and constant(inputs[other]) is None and np.all(value == 1) \
                and dims(ctx.node.outputs[0]) == dims(inputs[other]):
            return Alias(other)
    raise Unsupported(f"{ctx.node.op_type} of activations or by a constant other than one has no TALON IR equivalent")


@importer("Mul", data_inputs=None)
def mul(ctx: NodeContext) -> Alias:
    """x * 1 or 1 * x."""
    return identity_operand(ctx, (0, 1))


@importer("Div", data_inputs=(0,))
def div(ctx: NodeContext) -> Alias:
    """x / 1."""
    return identity_operand(ctx, (1,))
