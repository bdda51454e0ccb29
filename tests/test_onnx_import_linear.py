"""Gemm and MatMul(+Add) import against onnxruntime, every Gemm form, several opsets."""

import numpy as np
import pytest
from onnx import helper

from converters import UnsupportedOperatorError, onnx_to_ir
from onnx_import_helpers import OLD_AND_NEW, check, model, rand
from talon.ir import Affine, SpikingAffine


@pytest.mark.parametrize("opset", OLD_AND_NEW)
@pytest.mark.parametrize("trans_b,alpha,beta,c_shape", [(0, 1.0, 1.0, (5,)), (1, 0.5, 2.0, (1, 5)), (1, 1.0, 1.0, None), (0, 2.0, 0.25, (1,))])
def test_gemm_forms(opset, trans_b, alpha, beta, c_shape):
    w = rand(5, 7) if trans_b else rand(7, 5)
    inits = {"W": w}
    inputs = ["x", "W"]
    if c_shape is not None:
        inits["C"] = rand(*c_shape, seed=2)
        inputs.append("C")
    elif opset < 11:
        pytest.skip("C is required before opset 11")
    node = helper.make_node("Gemm", inputs, ["y"], transB=trans_b, alpha=alpha, beta=beta)
    g = check(model([node], [3, 7], inits=inits, opset=opset), (3, 7))
    assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "Affine", "Output"]


@pytest.mark.parametrize("opset", OLD_AND_NEW)
def test_matmul_add_fuses_to_one_affine(opset):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"), helper.make_node("Add", ["h", "B"], ["y"])]
    g = check(model(nodes, [2, 4, 6], inits={"W": rand(6, 3), "B": rand(3, seed=3)}, opset=opset), (2, 4, 6))
    (name, node), = [(k, v) for k, v in g.nodes.items() if isinstance(v, Affine)]
    assert name == "mm" and np.array_equal(node.weight, rand(6, 3).T)


def test_matmul_without_bias_and_spiking_options():
    m = model([helper.make_node("MatMul", ["x", "W"], ["y"])], [2, 6], inits={"W": rand(6, 3)})
    check(m, (2, 6))
    g = onnx_to_ir(m, spiking=True, weight_bits=4, accumulator_bits=12, spike_mode="graded")
    (node,) = [v for v in g.nodes.values() if isinstance(v, SpikingAffine)]
    assert (node.weight_bits, node.accumulator_bits, node.spike_mode) == (4, 12, "graded")


def test_gemm_trans_a_and_non_constant_weight_are_refused():
    nodes = [helper.make_node("Gemm", ["x", "W"], ["y"], transA=1, name="ta")]
    with pytest.raises(UnsupportedOperatorError, match="transA"):
        onnx_to_ir(model(nodes, [7, 3], inits={"W": rand(7, 5)}))
    nodes = [helper.make_node("MatMul", ["x", "x"], ["y"], name="xx")]
    with pytest.raises(UnsupportedOperatorError, match="must be a constant"):
        onnx_to_ir(model(nodes, [4, 4]))
