"""BatchNormalization (inference statistics), LayerNormalization, Dropout and Identity."""

from __future__ import annotations

import numpy as np

from talon.ir import BatchNorm1d, BatchNorm2d, Dropout, LayerNorm

from .context import Alias, NodeContext, Unsupported
from .registry import importer


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
