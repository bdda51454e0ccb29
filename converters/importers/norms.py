"""BatchNormalization (inference statistics), LayerNormalization (and its decomposition before opset 17),
Dropout and Identity."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from talon.ir import BatchNorm1d, BatchNorm2d, Dropout, LayerNorm

from .context import Alias, Fusion, NodeContext, Unsupported, constant, dims
from .registry import fusion, importer


@importer("BatchNormalization")
def batch_norm(ctx: NodeContext) -> BatchNorm1d | BatchNorm2d:
    """Inference-mode batch norm over dim 1, BatchNorm1d for (N, C[, L]) and BatchNorm2d for (N, C, H, W)."""
    if ctx.opset < 9 and not ctx.attr("spatial", 1):
        raise Unsupported("spatial=0 normalises per element, not per channel")
    if ctx.attr("training_mode", 0):
        raise Unsupported("training_mode=1 normalises with batch statistics")
    ctx.refuse_extra_outputs(1)
    rank = len(ctx.shape(0))
    if rank not in (2, 3, 4):
        raise Unsupported(f"expects an input of rank 2, 3 or 4, got rank {rank}")
    scale, bias, mean, var = (ctx.const(i, what) for i, what in enumerate(("scale", "B", "mean", "var"), start=1))
    cls = BatchNorm2d if rank == 4 else BatchNorm1d
    return cls(num_features=int(mean.shape[0]), weight=scale, bias=bias, running_mean=mean, running_var=var,
               eps=float(ctx.attr("epsilon", 1e-5)), momentum=round(1.0 - float(ctx.attr("momentum", 0.9)), 7))


@importer("LayerNormalization", since=17)
def layer_norm(ctx: NodeContext) -> LayerNorm:
    """Layer norm over the dims from `axis` to the end (never the batch)."""
    ctx.refuse_extra_outputs(1)
    shape = ctx.features(0)
    axis = ctx.axis(int(ctx.attr("axis", -1)), len(shape) + 1)
    normalized = shape[axis - 1 :]
    scale = ctx.const(1, "scale")
    bias = ctx.optional_const(2, "bias")
    full = lambda a: None if a is None else np.ascontiguousarray(np.broadcast_to(a, normalized))  # noqa: E731
    return LayerNorm(normalized_shape=normalized, weight=full(scale), bias=full(bias),
                     eps=float(ctx.attr("epsilon", 1e-5)))


@importer("Dropout")
def dropout(ctx: NodeContext) -> Dropout:
    """Dropout (the identity at inference); its ratio is kept as p."""
    ctx.refuse_extra_outputs(1)
    if ctx.opset >= 12:
        training = ctx.optional_const(2, "training_mode")
        if training is not None and bool(training):
            raise Unsupported("training_mode=true makes Dropout random")
        ratio = ctx.optional_const(1, "ratio")
        p = 0.5 if ratio is None else float(ratio)
    else:
        p = float(ctx.attr("ratio", 0.5))
    return Dropout(p=p)


@importer("Identity")
def identity(ctx: NodeContext) -> Alias:
    """Identity: the output is the input."""
    return Alias(0)


def _consumer(value: ir.Value, op_type: str) -> ir.Node | None:
    """The only node reading `value`, when it is a default-domain node of op_type."""
    uses = value.uses()
    node = uses[0].node if len(uses) == 1 and not value.is_graph_output() else None
    return node if node is not None and node.op_type == op_type and node.domain in ("", "ai.onnx") else None


def _const_operand(node: ir.Node, value: ir.Value) -> np.ndarray | None:
    """The constant other input of a binary node one of whose inputs is `value`."""
    if len(node.inputs) != 2 or value not in node.inputs:
        return None
    return constant(node.inputs[1 - list(node.inputs).index(value)])


def _trailing_axes(node: ir.Node, opset: int, rank: int) -> int | None:
    """How many trailing dims a keepdims ReduceMean averages (its axes are the last ones), else None."""
    axes = node.attributes.get("axes")
    axes = (list(axes.value) if axes is not None else None) if opset < 18 else \
        (None if len(node.inputs) < 2 or constant(node.inputs[1]) is None else list(constant(node.inputs[1]).reshape(-1)))
    attr = node.attributes.get("keepdims")
    if axes is None or (attr is not None and attr.value == 0):
        return None
    normalised = sorted(int(a) % rank for a in axes)
    n = len(normalised)
    return n if n and normalised == list(range(rank - n, rank)) and normalised[0] > 0 else None


@fusion("ReduceMean")
def decomposed_layer_norm(mean: ir.Node, ctx: NodeContext) -> Fusion | None:
    """LayerNorm as exporters before opset 17 write it: (x - mean) / sqrt(mean((x - mean)^2) + eps) * w + b."""
    x, shape = mean.inputs[0], dims(mean.inputs[0])
    if shape is None or any(d is None for d in shape[1:]) or mean.domain not in ("", "ai.onnx"):
        return None
    n = _trailing_axes(mean, ctx.opset, len(shape))
    sub = _consumer(mean.outputs[0], "Sub")
    if n is None or sub is None or list(sub.inputs) != [x, mean.outputs[0]]:
        return None
    users = {u.node.op_type: u.node for u in sub.outputs[0].uses()}
    power, div = users.get("Pow"), users.get("Div")
    if len(sub.outputs[0].uses()) != 2 or power is None or div is None or power.inputs[0] is not sub.outputs[0]:
        return None
    exponent = constant(power.inputs[1])
    var = _consumer(power.outputs[0], "ReduceMean")
    if exponent is None or exponent.size != 1 or float(exponent.reshape(-1)[0]) != 2.0 or var is None \
            or _trailing_axes(var, ctx.opset, len(shape)) != n:
        return None
    add_eps = _consumer(var.outputs[0], "Add")
    eps = None if add_eps is None else _const_operand(add_eps, var.outputs[0])
    sqrt = None if add_eps is None else _consumer(add_eps.outputs[0], "Sqrt")
    if eps is None or eps.size != 1 or sqrt is None or list(div.inputs) != [sub.outputs[0], sqrt.outputs[0]]:
        return None
    members, out, normalized = [mean, sub, power, var, add_eps, sqrt, div], div.outputs[0], tuple(shape[-n:])
    weight = bias = None
    scale = _consumer(out, "Mul")
    if scale is not None and _const_operand(scale, out) is not None:
        weight, out = _const_operand(scale, out), scale.outputs[0]
        members.append(scale)
        shift = _consumer(out, "Add")
        if shift is not None and _const_operand(shift, out) is not None:
            bias, out = _const_operand(shift, out), shift.outputs[0]
            members.append(shift)
    for value in (weight, bias):
        if value is not None and np.broadcast_shapes(value.shape, normalized) != normalized:
            return None
    full = lambda a: None if a is None else np.ascontiguousarray(np.broadcast_to(a, normalized))  # noqa: E731
    epsilon = float(eps.reshape(-1)[0])
    return Fusion(members, x, out, lambda: LayerNorm(normalized_shape=normalized, weight=full(weight),
                                                     bias=full(bias), eps=epsilon))
