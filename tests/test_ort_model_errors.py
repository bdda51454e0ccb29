"""OrtExecutor refuses models it cannot load or run with OrtModelError (a ValueError) naming the model, and
inputs or state it cannot feed without losing information with OrtInputError / OrtStateError."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx import helper as h
from onnx import numpy_helper as nh
from onnx.external_data_helper import set_external_data

from converters import ir_to_onnx
from onnx_ops import OrtExecutor, OrtModelError, OrtStateError
from talon import ir

F = TensorProto.FLOAT


def _model(nodes, inits=(), outputs=("y",), name: str = "g") -> onnx.ModelProto:
    graph = h.make_graph(nodes, name, [h.make_tensor_value_info("x", F, ["N", 3])],
                         [h.make_tensor_value_info(o, F, None) for o in outputs], list(inits))
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=9)


def test_model_error_is_a_value_error():
    assert issubclass(OrtModelError, ValueError)


def test_a_failure_inside_run_names_the_model():
    shape = nh.from_array(np.array([4], np.int64), "shape")  # fits no batch of 3 features
    ex = OrtExecutor(_model([h.make_node("Reshape", ["x", "shape"], ["y"])], [shape], name="reshaper"))
    with pytest.raises(OrtModelError, match="failed to run model 'reshaper'"):
        ex(np.ones((2, 3), np.float32))


def test_an_in_memory_model_with_external_data_is_refused_naming_the_tensor():
    w = TensorProto(name="W", data_type=F, dims=[3, 3], raw_data=b"")
    set_external_data(w, location="weights.bin", offset=0, length=36)
    w.data_location = TensorProto.EXTERNAL
    with pytest.raises(OrtModelError, match="'W'.*'weights.bin'.*file path"):
        OrtExecutor(_model([h.make_node("MatMul", ["x", "W"], ["y"])], [w]))


def test_a_model_without_outputs_besides_state_is_refused():
    model = _model([h.make_node("Add", ["x", "relu.v_in"], ["relu.v_out"])], outputs=["relu.v_out"])
    model.graph.input.append(h.make_tensor_value_info("relu.v_in", F, ["N", 3]))
    with pytest.raises(OrtModelError, match="at least one input and one output"):
        OrtExecutor(model)


def test_a_negative_input_dim_is_refused_naming_the_input():
    model = _model([h.make_node("Relu", ["x"], ["y"])])
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = -3
    with pytest.raises(OrtModelError, match="'x'.*negative"):
        OrtExecutor(model)


@pytest.mark.parametrize("value", [np.zeros((2, 3), np.complex64), np.full((2, 3), "0.5")], ids=["complex", "str"])
def test_state_that_is_not_real_numbers_is_refused(value):
    lif = ir.LIF(tau=np.full(3, 2.0, np.float32), r=np.ones(3, np.float32), v_leak=np.zeros(3, np.float32),
                 v_threshold=np.ones(3, np.float32))
    ex = OrtExecutor(ir_to_onnx(ir.Graph({"input": ir.Input((3,)), "lif": lif, "output": ir.Output((3,))},
                                         [("input", "lif"), ("lif", "output")])))
    with pytest.raises(OrtStateError, match=r"state\['lif'\]\[0\]"):
        ex(np.ones((2, 3), np.float32), {"lif": (value,)})


def test_an_onnxruntime_error_whose_message_is_not_utf8_is_wrapped(tmp_path):
    # onnxruntime quotes the node name in its message; invalid UTF-8 there made pybind raise UnicodeDecodeError
    data = _model([h.make_node("Bogus", ["x"], ["y"], name="QQQQ")]).SerializeToString()
    path = tmp_path / "bad.onnx"
    path.write_bytes(data.replace(b"QQQQ", b"\xe5QQQ"))
    with pytest.raises(OrtModelError, match="bad.onnx.*not valid UTF-8"):
        OrtExecutor(path)
