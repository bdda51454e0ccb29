"""Helpers for writing talon function bodies in standard ONNX nodes (used by the op specs)."""

from __future__ import annotations

import onnx
from onnx import helper as h


def one(like: str) -> list[onnx.NodeProto]:
    """Nodes making `one` = 1 in `like`'s element type."""
    return [h.make_node("Constant", [], ["one_f"], value_float=1.0), h.make_node("CastLike", ["one_f", like], ["one"])]


def ref(node: onnx.NodeProto, attr: str, name: str, kind: int) -> onnx.NodeProto:
    """Make `node` take attribute `attr` from the function's attribute `name`."""
    node.attribute.append(h.make_attribute_ref(attr, kind))
    node.attribute[-1].ref_attr_name = name
    return node
