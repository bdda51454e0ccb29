"""ReLU -> Relu / LeakyRelu, Clamp -> Clip, Sigmoid, Tanh, Softmax (axis with batch), GELU -> Gelu, ELU -> Elu,
PReLU -> PRelu, Scale -> Mul."""

from __future__ import annotations

import numpy as np

from talon.ir.primitives import ELU, GELU, Clamp, PReLU, ReLU, Scale, Sigmoid, Softmax, Tanh

from .context import EmitContext
from .neurons import neuron_params
from .registry import register


@register(ReLU)
def emit_relu(ctx: EmitContext, name: str, node: ReLU) -> None:
    if node.negative_slope:
        ctx.emit(name, "LeakyRelu", [ctx.input(name)], alpha=node.negative_slope)
    else:
        ctx.emit(name, "Relu", [ctx.input(name)])


@register(Clamp)
def emit_clamp(ctx: EmitContext, name: str, node: Clamp) -> None:
    """Clip with float32 bound inputs; an absent bound is the empty input name."""
    inputs = [ctx.input(name)]
    for suffix, bound in (("min", node.min_value), ("max", node.max_value)):
        inputs.append("" if bound is None else ctx.const(name, suffix, np.float32(bound)))
    ctx.emit(name, "Clip", inputs)


@register(Sigmoid, Tanh)
def emit_elementwise(ctx: EmitContext, name: str, node: Sigmoid | Tanh) -> None:
    ctx.emit(name, type(node).__name__, [ctx.input(name)])


@register(Softmax)
def emit_softmax(ctx: EmitContext, name: str, node: Softmax) -> None:
    ctx.emit(name, "Softmax", [ctx.input(name)], axis=node.feature_axis(len(ctx.input_shape(name))) + 1)


@register(GELU)
def emit_gelu(ctx: EmitContext, name: str, node: GELU) -> None:
    ctx.emit(name, "Gelu", [ctx.input(name)], approximate="tanh" if node.approximate else "none")


@register(ELU)
def emit_elu(ctx: EmitContext, name: str, node: ELU) -> None:
    ctx.emit(name, "Elu", [ctx.input(name)], alpha=node.alpha)


@register(PReLU)
def emit_prelu(ctx: EmitContext, name: str, node: PReLU) -> None:
    shape = ctx.input_shape(name)
    slope_shape = (node.weight.size, *[1] * (len(shape) - 1)) if node.weight.size > 1 else None
    ctx.emit(name, "PRelu", [ctx.input(name), ctx.param(name, "weight", slope_shape)])


@register(Scale)
def emit_scale(ctx: EmitContext, name: str, node: Scale) -> None:
    ctx.emit(name, "Mul", [ctx.input(name), *neuron_params(ctx, name, node, node.param_names)])
