"""Activation import vs onnxruntime: Relu, LeakyRelu, PRelu, Sigmoid, Tanh, Softmax per opset, Gelu, Erf-GELU, Elu."""

import math

import numpy as np
import pytest
from onnx import helper

from converters import UnsupportedOperatorError, onnx_to_ir
from onnx_import_helpers import OLD_AND_NEW, check, model, rand
from talon.ir import GELU


@pytest.mark.parametrize("opset", OLD_AND_NEW)
@pytest.mark.parametrize("op,attrs", [("Relu", {}), ("LeakyRelu", {"alpha": 0.2}), ("Sigmoid", {}), ("Tanh", {}),
                                      ("Elu", {"alpha": 0.7})])
def test_elementwise(opset, op, attrs):
    check(model([helper.make_node(op, ["x"], ["y"], **attrs)], [2, 3, 4], opset=opset), (2, 3, 4))


@pytest.mark.parametrize("opset", OLD_AND_NEW)
@pytest.mark.parametrize("slope", [np.array([0.25], np.float32), rand(3, 1, 1)])
def test_prelu(opset, slope):
    check(model([helper.make_node("PRelu", ["x", "s"], ["y"])], [2, 3, 4, 4], inits={"s": slope}, opset=opset), (2, 3, 4, 4))


@pytest.mark.parametrize("opset", OLD_AND_NEW)
def test_softmax_last_axis(opset):
    attrs = {"axis": 2} if opset < 13 else {}
    check(model([helper.make_node("Softmax", ["x"], ["y"], **attrs)], [2, 3, 5], opset=opset), (2, 3, 5))


def test_softmax_axis_semantics_per_opset():
    check(model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [2, 3, 5], opset=13), (2, 3, 5))
    with pytest.raises(UnsupportedOperatorError, match="flattened"):  # opset 11: axis 1 means dims 1 and 2 together
        onnx_to_ir(model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [2, 3, 5], opset=11))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_op(approximate):
    g = check(model([helper.make_node("Gelu", ["x"], ["y"], approximate=approximate)], [2, 6], opset=20), (2, 6))
    assert g.nodes["gelu"].approximate == (approximate == "tanh")


@pytest.mark.parametrize("variant", ["div_then_x_then_half", "half_first", "half_x"])
def test_erf_gelu_pattern_fuses(variant):
    consts = {"s2": np.array(math.sqrt(2), np.float32), "one": np.array(1, np.float32), "half": np.array(0.5, np.float32)}
    nodes = [helper.make_node("Div", ["x", "s2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["a"])]
    if variant == "div_then_x_then_half":
        nodes += [helper.make_node("Mul", ["x", "a"], ["m"]), helper.make_node("Mul", ["m", "half"], ["y"])]
    elif variant == "half_first":
        nodes += [helper.make_node("Mul", ["a", "half"], ["m"]), helper.make_node("Mul", ["m", "x"], ["y"])]
    else:
        nodes = [helper.make_node("Mul", ["x", "half"], ["hx"]), *nodes, helper.make_node("Mul", ["hx", "a"], ["y"])]
    g = check(model(nodes, [2, 6], inits=consts, opset=13), (2, 6))
    assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "GELU", "Output"]
    assert not next(n for n in g.nodes.values() if isinstance(n, GELU)).approximate


@pytest.mark.parametrize("opset", OLD_AND_NEW)
def test_clip_to_relu_and_unbounded(opset):
    if opset < 11:
        relu, free = helper.make_node("Clip", ["x"], ["r"], min=0.0), helper.make_node("Clip", ["r"], ["y"])
        inits = {}
    else:
        relu, free = helper.make_node("Clip", ["x", "zero"], ["r"]), helper.make_node("Clip", ["r"], ["y"])
        inits = {"zero": np.array(0.0, np.float32)}
    g = check(model([relu, free], [2, 5], inits=inits, opset=opset), (2, 5))
    assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "ReLU", "Output"]


def test_relu6_clip_is_refused():
    node = helper.make_node("Clip", ["x"], ["y"], min=0.0, max=6.0, name="relu6")
    with pytest.raises(UnsupportedOperatorError, match=r"\[0.0, 6.0\]"):
        onnx_to_ir(model([node], [2, 5], opset=9))
