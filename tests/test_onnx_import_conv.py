"""Conv import (1-D, 2-D, groups, depthwise, dilations, explicit, asymmetric and automatic pads) vs onnxruntime."""

import pytest
from onnx import helper

from onnx_import_helpers import OLD_AND_NEW, check, model, rand
from talon.ir import Conv1d, Conv2d, Pad


@pytest.mark.parametrize("opset", OLD_AND_NEW)
@pytest.mark.parametrize("attrs,w_shape", [
    (dict(pads=[1, 1, 1, 1]), (6, 4, 3, 3)),
    (dict(strides=[2, 2], dilations=[2, 2], pads=[2, 2, 2, 2]), (6, 4, 3, 3)),
    (dict(group=2), (6, 2, 3, 3)),
    (dict(group=4, pads=[1, 1, 1, 1]), (4, 1, 3, 3)),
])
def test_conv2d(opset, attrs, w_shape):
    node = helper.make_node("Conv", ["x", "W", "B"], ["y"], **attrs)
    g = check(model([node], [2, 4, 9, 9], inits={"W": rand(*w_shape), "B": rand(w_shape[0], seed=2)}, opset=opset),
              (2, 4, 9, 9), rtol=1e-4, atol=1e-5)
    assert [type(n) for n in g.nodes.values()][1] is Conv2d


@pytest.mark.parametrize("opset", (7, 13, 21))
def test_conv1d_without_bias(opset):
    node = helper.make_node("Conv", ["x", "W"], ["y"], pads=[1, 1], strides=[2])
    g = check(model([node], [2, 3, 10], inits={"W": rand(5, 3, 3)}, opset=opset), (2, 3, 10), rtol=1e-4, atol=1e-5)
    assert any(isinstance(n, Conv1d) for n in g.nodes.values())


@pytest.mark.parametrize("attrs", [dict(pads=[0, 1, 2, 0]), dict(auto_pad="SAME_UPPER", strides=[2, 2]),
                                   dict(auto_pad="SAME_LOWER", strides=[2, 2]), dict(auto_pad="VALID")])
def test_asymmetric_and_auto_pads(attrs):
    node = helper.make_node("Conv", ["x", "W"], ["y"], **attrs)
    g = check(model([node], [1, 2, 8, 8], inits={"W": rand(3, 2, 3, 3)}), (1, 2, 8, 8), rtol=1e-4, atol=1e-5)
    pads = [n for n in g.nodes.values() if isinstance(n, Pad)]
    assert len(pads) == (attrs.get("auto_pad") != "VALID")
