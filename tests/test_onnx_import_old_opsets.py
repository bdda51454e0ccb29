"""Published models of opset 6 to 9 list their initializers as graph inputs (IR version 3) and use
attributes later opsets dropped (BatchNormalization is_test, Gemm broadcast). They convert, and the IR
computes what onnxruntime computes on the model (opset 6, which onnxruntime cannot run, is compared
against onnx's own conversion of the file to opset 7)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper, version_converter

from converters import onnx_to_ir
from talon import bridge


def old_style_cnn(opset: int, rng: np.random.Generator):
    arrays = {
        "W": rng.normal(size=(4, 3, 3, 3)), "B": rng.normal(size=4), "scale": rng.uniform(0.5, 1.5, 4),
        "shift": rng.normal(size=4), "mean": rng.normal(size=4), "var": rng.uniform(0.5, 2.0, 4),
        "G": rng.normal(size=(5, 36)), "GB": rng.normal(size=5),
    }
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    old = opset < 7
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["bn"],
                         **({"is_test": 1} if old else {})),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "G", "GB"], ["y"], transB=1, **({"broadcast": 1} if old else {})),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])]
    inputs += [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in arrays.items()]
    graph = helper.make_graph(nodes, "old", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
                              [numpy_helper.from_array(v, k) for k, v in arrays.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 3
    return model


@pytest.mark.parametrize("opset", [6, 7, 8, 9])
def test_old_opset_cnn_with_initializers_as_inputs_converts_exactly(opset):
    rng = np.random.default_rng(opset)
    model = old_style_cnn(opset, rng)
    graph = onnx_to_ir(model)
    assert [type(n).__name__ for n in graph.nodes.values()] == [
        "Input", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten", "Affine", "Output"]
    assert graph.inputs == ["input"]  # the initializers listed as inputs are weights, not Input nodes
    reference = version_converter.convert_version(model, 7) if opset < 7 else model
    x = rng.normal(size=(1, 3, 6, 6)).astype(np.float32)
    want = ort.InferenceSession(reference.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with torch.no_grad():
        got = bridge.ir_to_torch(graph)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
