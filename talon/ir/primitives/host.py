"""HostRegion: a piece of an ONNX model without a TALON IR equivalent, kept as an ONNX subgraph run on the host.

Made by `converters.onnx_to_ir(..., host_fallback=True)` for each maximal connected region of unsupported
nodes. Unlike HybridRegion (a marker around ANN or SNN layers), it computes: the serialized ONNX model in
`model` (its nodes, initializers, opset imports and input/output value infos) maps the node's inputs, in
edge order, to its outputs, one per outgoing edge. This layer stores it and knows its shapes without
parsing it (talon.ir needs numpy only); converters.host_region parses and checks it.
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from .base import Node, Shape, param, register_primitive


def _shapes(node: Node, field: str) -> list[Shape]:
    """A JSON list of shapes (lists of non-negative ints, the batch left out), at least one."""
    text = getattr(node, field)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise node.fail(field, f"is not JSON: {exc}") from None
    if not isinstance(value, list) or not value or not all(
        isinstance(s, list) and all(type(d) is int and d >= 0 for d in s) for s in value
    ):
        raise node.fail(field, f"must be a non-empty JSON list of shapes (lists of non-negative ints), got {text!r}")
    return [tuple(s) for s in value]


def encode_shapes(shapes: Sequence[Sequence[int]]) -> str:
    """The JSON text of `in_shapes` / `out_shapes` for a list of shapes (batch left out)."""
    return json.dumps([[int(d) for d in s] for s in shapes], separators=(",", ":"))


@register_primitive
class HostRegion(Node):
    """An ONNX subgraph run by onnxruntime: inputs in edge order, output i to outgoing edge i.

    `model`: the serialized ONNX ModelProto (uint8); `in_shapes`, `out_shapes`: JSON lists of its
    input and output shapes without the batch; `batch`: the batch size its constants were exported for
    (0: any; otherwise the executor runs it in chunks of that size); `param_count`: elements of its
    floating-point initializers (what num_params reports, since `model` holds bytes, not weights).
    """

    merge = True
    multi_output = True
    model: np.ndarray = param("array")
    in_shapes: str = param("str")
    out_shapes: str = param("str")
    batch: int = param("int", 0)
    param_count: int = param("int", 0)

    def validate(self) -> None:
        if self.model.dtype != np.uint8 or self.model.ndim != 1 or not self.model.size:
            raise self.fail("model", f"must be a non-empty 1-D uint8 array (ONNX bytes), got "
                                     f"{self.model.dtype} of shape {self.model.shape}")
        self._in, self._out = _shapes(self, "in_shapes"), _shapes(self, "out_shapes")
        if self.batch < 0:
            raise self.fail("batch", f"must be 0 (any) or a positive batch size, got {self.batch}")
        if self.param_count < 0:
            raise self.fail("param_count", f"must be non-negative, got {self.param_count}")

    @property
    def region_inputs(self) -> list[Shape]:
        """The region's input shapes (batch left out), in edge order."""
        return list(self._in)

    @property
    def region_outputs(self) -> list[Shape]:
        """The region's output shapes (batch left out), one per outgoing edge."""
        return list(self._out)

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        got = [tuple(s) for s in input_shapes]
        if got != self._in:
            raise self.fail("in_shapes", f"the region takes inputs of shapes {self._in}, got {got}")
        return list(self._out)

    def num_params(self) -> int:
        return self.param_count
