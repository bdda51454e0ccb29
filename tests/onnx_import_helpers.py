"""Helpers for the ONNX import tests: hand-built one-node models, run by onnxruntime and by the IR executor."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from converters import onnx_to_ir
from talon import bridge

OLD_AND_NEW = (7, 9, 13, onnx.defs.onnx_opset_version())


def model(nodes, x_shape, y_shape=None, inits=None, opset=13, outputs=("y",)) -> onnx.ModelProto:
    """A float32 model with graph input `x` and the given outputs; shapes without names are inferred."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, y_shape) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7 if opset < 15 else 8
    return m


def run_ort(m: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    """The original model's outputs from onnxruntime."""
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def check(m: onnx.ModelProto, x_shape, rtol=1e-5, atol=1e-6, seed=0):
    """Convert, run both sides on a random input, assert they agree; return the IR graph."""
    x = np.random.default_rng(seed).standard_normal(x_shape).astype(np.float32)
    expected = run_ort(m, x)
    graph = onnx_to_ir(m)
    with torch.no_grad():
        got = bridge.ir_to_torch(graph)(torch.from_numpy(x))
    got = list(got.values()) if isinstance(got, dict) else [got]
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.numpy(), e, rtol=rtol, atol=atol)
    return graph


def rand(*shape, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
