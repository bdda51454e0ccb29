"""Concat, Split (to ChannelSplit) and Add/Sum of activations (to Skip) import vs onnxruntime."""

import numpy as np
import pytest
from onnx import helper

from onnx_import_helpers import OLD_AND_NEW, check, model
from talon.ir import ChannelSplit, Concat, Skip


@pytest.mark.parametrize("opset", OLD_AND_NEW)
def test_split_relu_concat_in_swapped_order(opset):
    split = (helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[2, 4]) if opset < 13 else
             helper.make_node("Split", ["x", "sizes"], ["a", "b"], axis=1))
    nodes = [split, helper.make_node("Relu", ["a"], ["ra"]), helper.make_node("Sigmoid", ["b"], ["sb"]),
             helper.make_node("Concat", ["sb", "ra"], ["y"], axis=1)]
    inits = {"sizes": np.array([2, 4], np.int64)} if opset >= 13 else {}
    g = check(model(nodes, [2, 6, 3], inits=inits, opset=opset), (2, 6, 3))
    assert sum(isinstance(n, ChannelSplit) for n in g.nodes.values()) == 1
    assert sum(isinstance(n, Concat) for n in g.nodes.values()) == 1


def test_split_output_used_twice_and_unused():
    nodes = [helper.make_node("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3),
             helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Add", ["r", "a"], ["s"]),
             helper.make_node("Concat", ["s", "b"], ["y"], axis=1)]
    check(model(nodes, [2, 6], opset=18), (2, 6))


@pytest.mark.parametrize("opset", OLD_AND_NEW)
def test_residual_add_and_sum(opset):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "x"], ["a"]),
             helper.make_node("Tanh", ["a"], ["t"]), helper.make_node("Sum", ["t", "a", "x"], ["y"])]
    g = check(model(nodes, [2, 3, 4], opset=opset), (2, 3, 4))
    assert sum(isinstance(n, Skip) and n.kind == "residual" for n in g.nodes.values()) == 2


def test_add_of_the_same_activation_twice():
    check(model([helper.make_node("Add", ["x", "x"], ["y"])], [2, 3]), (2, 3))
    check(model([helper.make_node("Concat", ["x", "x"], ["y"], axis=-1)], [2, 3]), (2, 3))
