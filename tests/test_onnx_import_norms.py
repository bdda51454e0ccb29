"""BatchNormalization, LayerNormalization, Dropout and Identity import vs onnxruntime."""

import numpy as np
import pytest
from onnx import helper

from onnx_import_helpers import OLD_AND_NEW, check, model, rand
from talon.ir import BatchNorm1d, BatchNorm2d


def _bn_inits(c):
    return {"s": rand(c), "b": rand(c, seed=2), "m": rand(c, seed=3), "v": np.abs(rand(c, seed=4)) + 0.5}


@pytest.mark.parametrize("opset", OLD_AND_NEW)
@pytest.mark.parametrize("shape,cls", [([2, 3, 5, 5], BatchNorm2d), ([2, 3, 7], BatchNorm1d), ([2, 3], BatchNorm1d)])
def test_batch_norm(opset, shape, cls):
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)
    g = check(model([node], shape, inits=_bn_inits(3), opset=opset), tuple(shape), rtol=1e-4, atol=1e-5)
    (bn,) = [n for n in g.nodes.values() if isinstance(n, cls)]
    assert bn.eps == pytest.approx(1e-3)


@pytest.mark.parametrize("opset", (17, 18, 21))
@pytest.mark.parametrize("axis", (-1, 2))
def test_layer_norm(opset, axis):
    node = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=axis)
    check(model([node], [2, 3, 4], inits={"s": rand(4) if axis == -1 else rand(4), "b": rand(4, seed=2)}, opset=opset), (2, 3, 4), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("opset", OLD_AND_NEW)
def test_dropout_and_identity(opset):
    nodes = [helper.make_node("Dropout", ["x"], ["d"], **({"ratio": 0.3} if opset < 12 else {})),
             helper.make_node("Identity", ["d"], ["y"])]
    g = check(model(nodes, [2, 5], opset=opset), (2, 5))
    if opset < 12:
        assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "Dropout", "Output"]
        assert g.nodes["dropout"].p == pytest.approx(0.3)
    else:  # the clean-up folds an inference Dropout away (it is the identity)
        assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "Output"]


def test_opset_6_model_is_brought_up_by_the_version_converter():
    """onnxruntime no longer runs opset 6, so the reference is the batch-norm formula in numpy."""
    import torch

    from converters import onnx_to_ir
    from talon import bridge

    inits = _bn_inits(3)
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], is_test=1, epsilon=1e-3)
    g = onnx_to_ir(model([node], [2, 3, 4, 4], inits=inits, opset=6))
    assert [type(n) for n in g.nodes.values()][1] is BatchNorm2d
    x = rand(2, 3, 4, 4, seed=7)
    c = lambda a: a.reshape(1, 3, 1, 1)  # noqa: E731
    expected = (x - c(inits["m"])) / np.sqrt(c(inits["v"]) + 1e-3) * c(inits["s"]) + c(inits["b"])
    with torch.no_grad():
        np.testing.assert_allclose(bridge.ir_to_torch(g)(torch.from_numpy(x)).numpy(), expected, rtol=1e-5, atol=1e-5)
