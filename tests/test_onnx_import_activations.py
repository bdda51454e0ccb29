"""Activation import vs onnxruntime: Relu, LeakyRelu, PRelu, Sigmoid, Tanh, Softmax per opset, Gelu, Erf-GELU, Elu,
Clip (ReLU, Clamp, identity), and Mul / Div of an activation by a constant (Scale, identity)."""

import math
import warnings

import numpy as np
import pytest
import torch
from onnx import helper

from converters import ApproximationWarning, UnsupportedOperatorError, onnx_to_ir
from onnx_import_helpers import OLD_AND_NEW, check, model, rand, run_ort
from talon import bridge
from talon.ir import GELU, Clamp, Scale


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


def _clip(low, high, opset):
    """A Clip node with the given bounds (None: absent) as attributes before opset 11, constant inputs from 11."""
    if opset < 11:
        bounds = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
        return helper.make_node("Clip", ["x"], ["y"], **bounds), {}
    inits = {k: np.array(v, np.float32) for k, v in (("lo", low), ("hi", high)) if v is not None}
    names = [k if k in inits else "" for k in ("lo", "hi")]
    return helper.make_node("Clip", ["x", *names], ["y"]), inits


@pytest.mark.parametrize("opset", [7, 11, 13, 21])
@pytest.mark.parametrize("low,high", [(0.0, 6.0), (-1.0, 1.0), (-0.375, None), (None, 0.75), (0.25, 0.25)])
def test_clip_to_clamp(opset, low, high):
    node, inits = _clip(low, high, opset)
    g = check(model([node], [3, 4, 5], inits=inits, opset=opset), (3, 4, 5), rtol=0, atol=0)
    assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "Clamp", "Output"]
    clamp = next(n for n in g.nodes.values() if isinstance(n, Clamp))
    assert (clamp.min_value, clamp.max_value) == (low, high)


@pytest.mark.parametrize("opset", [9, 13])
def test_clip_with_reversed_or_nan_bounds_is_refused(opset):
    node, inits = _clip(1.0, -1.0, opset)
    with pytest.raises(UnsupportedOperatorError, match="below min_value"):
        onnx_to_ir(model([node], [2, 5], inits=inits, opset=opset))
    node, inits = _clip(math.nan, None, opset)
    with pytest.raises(UnsupportedOperatorError, match="finite"):
        onnx_to_ir(model([node], [2, 5], inits=inits, opset=opset))


@pytest.mark.parametrize("module,bounds", [(torch.nn.ReLU6(), (0.0, 6.0)), (torch.nn.Hardtanh(), (-1.0, 1.0)),
                                           (torch.nn.Hardtanh(-0.5, 2.0), (-0.5, 2.0))])
def test_relu6_and_hardtanh_through_to_ir_are_exact(module, bounds):
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 6), module).eval()
    x = torch.randn(5, 4) * 5
    g = bridge.to_ir(m, x)
    clamp = next(n for n in g.nodes.values() if isinstance(n, Clamp))
    assert (clamp.min_value, clamp.max_value) == bounds
    with torch.no_grad():
        assert torch.equal(bridge.ir_to_torch(g)(x), m(x))


SHAPE = [2, 3, 4, 5]


@pytest.mark.parametrize("op", ["Mul", "Div"])
@pytest.mark.parametrize("factor,stored", [
    (np.array(2.5, np.float32), (1,)),              # scalar
    (rand(3, 1, 1), (3, 1, 1)),                      # per channel
    (rand(1, 3, 1, 1), (3, 1, 1)),                   # per channel, with the batch dim
    (rand(5), (5,)),                                 # along the last dim
    (rand(1, 1, 4, 5), (4, 5)),                      # per position
])
def test_mul_and_div_by_a_constant_are_scale(op, factor, stored):
    g = check(model([helper.make_node(op, ["x", "k"], ["y"])], SHAPE, inits={"k": factor}), SHAPE, rtol=1e-6)
    assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "Scale", "Output"]
    scale = next(n for n in g.nodes.values() if isinstance(n, Scale)).scale
    assert scale.shape == stored and scale.dtype == np.float32


def test_constant_times_activation_and_power_of_two_division_are_bit_exact():
    k = np.array([0.5, -2.0, 4.0], np.float32).reshape(3, 1, 1)
    for nodes in ([helper.make_node("Mul", ["k", "x"], ["y"])], [helper.make_node("Div", ["x", "k"], ["y"])]):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ApproximationWarning)  # exact: no approximation warning
            check(model(nodes, SHAPE, inits={"k": k}), SHAPE, rtol=0, atol=0)


def test_division_is_within_a_rounding_of_the_quotient_and_says_so():
    m = model([helper.make_node("Div", ["x", "k"], ["y"], name="div3")], SHAPE,
              inits={"k": np.array(3.0, np.float32)})
    x = rand(*SHAPE, seed=5)
    with pytest.warns(ApproximationWarning, match="Div node 'div3'"):
        graph = onnx_to_ir(m)
    with torch.no_grad():
        got = bridge.ir_to_torch(graph)(torch.from_numpy(x)).numpy()
    want = run_ort(m, x)[0]
    assert np.all(np.abs(got - want) <= 2 * np.spacing(np.abs(want)))


@pytest.mark.parametrize("op", ["Mul", "Div"])
def test_times_or_divided_by_one_is_the_identity(op):
    g = check(model([helper.make_node(op, ["x", "one"], ["y"])], SHAPE, inits={"one": np.ones((3, 1, 1), np.float32)}),
              SHAPE, rtol=0, atol=0)
    assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "Output"]


@pytest.mark.parametrize("op,names,k,x_shape,match", [
    ("Div", ["x", "x"], None, SHAPE, "by an activation"),  # (Mul of two activations is a Multiply)
    ("Div", ["k", "x"], np.array(2.0, np.float32), SHAPE, "by an activation"),
    ("Mul", ["x", "k"], rand(2, 3, 1, 1), SHAPE, "batch"),
    ("Mul", ["x", "k"], rand(1, 1, 2, 3, 4, 5), SHAPE, "more dims"),
    ("Div", ["x", "k"], rand(3, 1, 1), [2, 1, 4, 5], "axis 1"),                    # would enlarge the channels
    ("Mul", ["x", "k"], np.ones((1, 1, 1, 4, 1), np.float32), SHAPE, "more dims"),  # ones, but enlarging the rank
])
def test_products_scale_cannot_express_are_refused(op, names, k, x_shape, match):
    inits = {} if k is None else {"k": k}
    with pytest.raises(UnsupportedOperatorError, match=match):
        onnx_to_ir(model([helper.make_node(op, names, ["y"])], x_shape, inits=inits))
