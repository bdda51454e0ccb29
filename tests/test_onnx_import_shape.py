"""Flatten, Reshape and Squeeze import: merges of contiguous feature dims map to Flatten, others are refused."""

import numpy as np
import pytest
from onnx import helper

from converters import UnsupportedOperatorError, onnx_to_ir
from converters.importers.shape import flatten_dims
from onnx_import_helpers import OLD_AND_NEW, check, model
from talon.ir import Flatten


@pytest.mark.parametrize("opset", OLD_AND_NEW)
def test_flatten_axis_1(opset):
    g = check(model([helper.make_node("Flatten", ["x"], ["y"], axis=1)], [2, 3, 4, 5], opset=opset), (2, 3, 4, 5))
    assert g.nodes["flatten"] == Flatten(start_dim=0, end_dim=2)


@pytest.mark.parametrize("opset", OLD_AND_NEW)
@pytest.mark.parametrize("shape,target", [((2, 3, 4, 5), [2, -1]), ((2, 3, 4, 5), [0, 3, 20]), ((2, 8, 1, 1), [2, 8])])
def test_reshape_to_flat(opset, shape, target):
    m = model([helper.make_node("Reshape", ["x", "s"], ["y"])], list(shape), inits={"s": np.array(target, np.int64)}, opset=opset)
    check(m, shape)


def test_reshape_that_is_not_a_flatten_is_refused():
    m = model([helper.make_node("Reshape", ["x", "s"], ["y"], name="r")], [2, 6, 4], inits={"s": np.array([2, 4, 6], np.int64)})
    with pytest.raises(UnsupportedOperatorError, match="not a flatten"):
        onnx_to_ir(m)
    m = model([helper.make_node("Flatten", ["x"], ["y"], axis=2, name="f")], [2, 6, 4])
    with pytest.raises(UnsupportedOperatorError, match="axis 2"):
        onnx_to_ir(m)


def test_flatten_dims():
    assert flatten_dims((3, 4, 5), (60,)) == (0, 2)
    assert flatten_dims((3, 4, 5), (3, 20)) == (1, 2)
    assert flatten_dims((3, 4, 5), (12, 5)) == (0, 1)
    assert flatten_dims((3, 4, 5), (4, 15)) is None


def test_reshape_with_a_shape_computed_from_the_batch_size():
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
             helper.make_node("Unsqueeze", ["b", "axes"], ["b1"]), helper.make_node("Concat", ["b1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    inits = {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    g = check(model(nodes, ["N", 3, 4], inits=inits, opset=13), (5, 3, 4))
    assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "Flatten", "Output"]
    nodes[-2] = helper.make_node("Concat", ["minus1", "b1"], ["shape"], axis=0)  # (-1, batch): not a flatten
    with pytest.raises(UnsupportedOperatorError, match="batch dim"):
        onnx_to_ir(model(nodes, ["N", 3, 4], inits=inits, opset=13))
