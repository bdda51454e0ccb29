"""MaxPool, AveragePool, global pooling and spatial ReduceMean import vs onnxruntime."""

import pytest
from onnx import helper

from onnx_import_helpers import OLD_AND_NEW, check, model
from talon.ir import Pad


@pytest.mark.parametrize("opset", OLD_AND_NEW)
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("attrs", [dict(kernel_shape=[2, 2], strides=[2, 2]), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
                                   dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
                                   dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
                                   dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)])
def test_pools(opset, op, attrs):
    if attrs.get("ceil_mode") and opset < 10:
        pytest.skip("ceil_mode exists from opset 10")
    if op == "AveragePool" and "pads" in attrs:
        attrs = {**attrs, "count_include_pad": 1}
    check(model([helper.make_node(op, ["x"], ["y"], **attrs)], [2, 3, 9, 9], opset=opset), (2, 3, 9, 9), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_asymmetric_pool_pads_go_through_pad(op):
    attrs = dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")
    if op == "AveragePool":
        attrs = dict(kernel_shape=[2, 2], pads=[0, 0, 1, 1], count_include_pad=1)
    g = check(model([helper.make_node(op, ["x"], ["y"], **attrs)], [1, 2, 8, 8]), (1, 2, 8, 8))
    assert any(isinstance(n, Pad) for n in g.nodes.values())


def test_max_pool_dilation_and_count_exclude_pad():
    check(model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2])], [1, 2, 8, 8], opset=12), (1, 2, 8, 8))
    check(model([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], [1, 2, 7, 7]), (1, 2, 7, 7))


@pytest.mark.parametrize("opset", OLD_AND_NEW)
@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pools(opset, op):
    check(model([helper.make_node(op, ["x"], ["y"])], [2, 3, 5, 6], opset=opset), (2, 3, 5, 6))


@pytest.mark.parametrize("opset,keepdims", [(13, 1), (13, 0), (18, 0), (21, 1)])
def test_reduce_mean_over_space(opset, keepdims):
    if opset < 18:
        node = helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=keepdims)
        m = model([node], [2, 3, 4, 4], opset=opset)
    else:
        import numpy as np
        node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=keepdims)
        m = model([node], [2, 3, 4, 4], inits={"axes": np.array([-2, -1], np.int64)}, opset=opset)
    check(m, (2, 3, 4, 4))
