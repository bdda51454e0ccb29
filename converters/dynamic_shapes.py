"""Shapes that exporters compute at run time from the input's shape (the TorchScript exporter with a dynamic
batch writes `x.flatten(2)`, `x.view(b, g, c // g, h, w)` and `interpolate(size=...)` as Shape, Gather,
Slice, arithmetic and Concat feeding Reshape or Resize), resolved where they do not depend on the batch:
the output keeps the input's batch dim and gets the static feature dims, so that ONNX shape inference
can continue downstream. Nothing is changed in the computation."""

from __future__ import annotations

import onnx_ir as ir
import onnx_ir.passes.common as common

from .importers.context import NodeContext, Options, Unsupported, dims
from .importers.shape import BATCH, reshape_target, shape_elements

MAX_ROUNDS = 16  # each round resolves what the previous round's shape inference made known


def _known(value: ir.Value) -> bool:
    shape = dims(value)
    return shape is not None and all(d is not None for d in shape[1:])


def _resize_features(node: ir.Node) -> list[int] | None:
    """The static output feature dims of a Resize whose `sizes` (input 3) are computed from shapes."""
    if len(node.inputs) < 4 or node.inputs[3] is None:
        return None
    elements = shape_elements(node.inputs[3])
    if not elements or elements[0] is not BATCH or any(not isinstance(e, int) or e <= 0 for e in elements[1:]):
        return None
    return list(elements[1:])


def _reshape_features(node: ir.Node) -> list[int] | None:
    """The static output feature dims of a Reshape whose target keeps the batch first and is otherwise static."""
    if not _known(node.inputs[0]):
        return None
    try:
        return list(reshape_target(NodeContext(node, 0, Options())))
    except Unsupported:
        return None


def resolve_batch_shapes(model: ir.Model) -> None:
    """Give Reshape and Resize outputs whose shape is unknown but computable from the input's static feature
    dims that shape (batch dim from the input), re-running shape inference until nothing more resolves."""
    for _ in range(MAX_ROUNDS):
        changed = False
        for node in model.graph:
            if node.domain not in ("", "ai.onnx") or node.op_type not in ("Reshape", "Resize") \
                    or _known(node.outputs[0]) or node.inputs[0] is None or node.inputs[0].shape is None:
                continue
            features = _reshape_features(node) if node.op_type == "Reshape" else _resize_features(node)
            if features is not None:
                node.outputs[0].shape = ir.Shape([node.inputs[0].shape[0], *features])
                changed = True
        if not changed:
            return
        common.ShapeInferencePass(strict_mode=False, data_prop=True)(model)
