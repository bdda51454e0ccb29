"""The refusal lists exactly the nodes without a TALON form: those feeding non-data inputs too, never shape
arithmetic or knock-on failures; grouped by op type with counts, naming the torch module of each node."""

from __future__ import annotations

import io

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from converters import UnsupportedOperatorError, onnx_to_ir
from onnx_import_helpers import model


def _refused(m) -> list[tuple[str, str]]:
    with pytest.raises(UnsupportedOperatorError) as info:
        onnx_to_ir(m)
    return [(n.op, n.name) for n in info.value.nodes]


def test_nodes_feeding_non_data_inputs_are_listed():
    """x / sqrt(mean(x)) over the last axis: the divisor's producers have no TALON form either."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("ReduceMean", ["r"], ["m"], axes=[-1], name="mean"),
             helper.make_node("Sqrt", ["m"], ["s"], name="sqrt"),
             helper.make_node("Div", ["r", "s"], ["y"], name="div")]
    assert sorted(_refused(model(nodes, [2, 3, 4, 5], opset=11))) == [("Div", "div"), ("ReduceMean", "mean"),
                                                                      ("Sqrt", "sqrt")]


def test_shape_arithmetic_is_never_listed():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Shape", ["r"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "i"], ["g"], name="gather", axis=0),
             helper.make_node("Concat", ["g", "g"], ["t"], name="cat", axis=0),
             helper.make_node("Tile", ["r", "t"], ["y"], name="tile")]
    m = model(nodes, [2, 3], inits={"i": onnx.numpy_helper.to_array(helper.make_tensor("i", TensorProto.INT64, [1], [1]))})
    assert _refused(m) == [("Tile", "tile")]


def test_knock_on_failures_of_unknown_shapes_are_not_listed():
    """An op shape inference does not know leaves the shapes after it unknown; only the op is reported."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Mystery", ["r"], ["q"], name="mystery", domain="vendor"),
             helper.make_node("Flatten", ["q"], ["f"], name="flatten"),
             helper.make_node("Mul", ["f", "f"], ["y"], name="square")]
    m = model(nodes, [2, 3, 4])
    m.opset_import.append(helper.make_opsetid("vendor", 1))
    assert _refused(m) == [("vendor::Mystery", "mystery")]


def test_refusals_are_grouped_by_op_type_with_counts():
    nodes = [helper.make_node("Cos", ["x"], ["a"], name="c1"), helper.make_node("Sin", ["a"], ["b"], name="s1"),
             helper.make_node("Cos", ["b"], ["y"], name="c2")]
    with pytest.raises(UnsupportedOperatorError) as info:
        onnx_to_ir(model(nodes, [2, 3]))
    assert info.value.counts() == {"Cos": 2, "Sin": 1}
    text = str(info.value)
    assert "3 ONNX node(s) cannot be converted to TALON IR (Cos x2, Sin x1)" in text
    assert text.index("'c2'") < text.index("Sin (1)")  # both Cos nodes under one heading


def test_ai_onnx_ml_nodes_are_named():
    nodes = [helper.make_node("Scaler", ["x"], ["s"], domain="ai.onnx.ml", offset=[0.0] * 4, scale=[2.0] * 4,
                              name="scaler"),
             helper.make_node("LinearRegressor", ["s"], ["y"], domain="ai.onnx.ml", coefficients=[1.0] * 4, name="reg")]
    graph = helper.make_graph(nodes, "ml", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", 3)])
    assert _refused(m) == [("ai.onnx.ml::Scaler", "scaler"), ("ai.onnx.ml::LinearRegressor", "reg")]


class Cosine(nn.Module):
    def forward(self, x):
        return torch.cos(x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), Cosine(), nn.ReLU())

    def forward(self, x):
        return torch.sin(self.body(x))


def test_torchscript_refusals_name_the_module_paths():
    f = io.BytesIO()
    torch.onnx.export(Net().eval(), (torch.randn(1, 3, 6, 6),), f, dynamo=False, opset_version=17)
    with pytest.raises(UnsupportedOperatorError) as info:
        onnx_to_ir(onnx.load_from_string(f.getvalue()))
    assert [(n.op_type, n.module) for n in info.value.nodes] == [("Cos", "body.1"), ("Sin", None)]
    assert "module 'body.1'" in str(info.value)


def test_to_ir_refusals_name_the_module_paths():
    from talon import bridge

    with pytest.raises(UnsupportedOperatorError) as info:
        bridge.to_ir(Net().eval(), torch.randn(1, 3, 6, 6))
    assert [(n.op_type, n.module) for n in info.value.nodes] == [("Cos", "body.1"), ("Sin", None)]
