"""talon-domain nodes written by hand (no IR metadata) import to their primitives and run like onnxruntime."""

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from converters import onnx_to_ir
from onnx_ops import OrtExecutor, attach_functions, state_input_name, state_output_name
from talon import bridge
from talon.ir import ChannelSplit, HybridRegion, SepConv2d, SpikingAffine


def _model(nodes, inputs, outputs, inits, opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("talon", 1)])
    return attach_functions(m)


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


@pytest.mark.parametrize("kind", ["LIF", "IF"])
def test_neuron_with_state_convention_matches_onnxruntime_over_steps(kind):
    rng = np.random.default_rng(0)
    n = 6
    params = {"tau": np.full(n, 4.0, np.float32), "r": np.ones(n, np.float32), "v_leak": np.zeros(n, np.float32),
              "v_threshold": np.full(n, 0.3, np.float32)}
    if kind == "IF":
        params = {k: params[k] for k in ("r", "v_threshold")}
    w = rng.standard_normal((n, 5)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], transB=1, name="fc"),
             helper.make_node(kind, ["h", state_input_name("lif"), *params], ["y", state_output_name("lif")],
                              domain="talon", name="lif")]
    m = _model(nodes, [_vi("x", [1, 5]), _vi(state_input_name("lif"), [1, n])],
               [_vi("y", [1, n]), _vi(state_output_name("lif"), [1, n])], {"W": w, **params})
    graph = onnx_to_ir(m)
    assert [type(v).__name__ for v in graph.nodes.values()] == ["Input", "Affine", kind, "Output"]
    ort_ex = OrtExecutor(m, return_state=True)
    ir_ex = bridge.ir_to_torch(graph, return_state=True)
    s_ort, s_ir, spikes = {}, {}, 0
    for _ in range(8):
        x = rng.standard_normal((1, 5)).astype(np.float32)
        y_ort, s_ort = ort_ex(x, s_ort)
        with torch.no_grad():
            y_ir, s_ir = ir_ex(torch.from_numpy(x), s_ir)
        y_ort = y_ort["y"] if isinstance(y_ort, dict) else y_ort
        np.testing.assert_array_equal(y_ir.numpy(), y_ort)
        spikes += int(y_ort.sum())
    assert spikes > 0


def test_spiking_affine_channel_split_sepconv_hybrid():
    rng = np.random.default_rng(1)
    inits = {"dw": rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "pw": rng.standard_normal((6, 4, 1, 1)).astype(np.float32),
             "db": np.zeros(4, np.float32), "pb": rng.standard_normal(6).astype(np.float32),
             "W": rng.standard_normal((3, 4 * 4 * 4)).astype(np.float32), "B": rng.standard_normal(3).astype(np.float32)}
    nodes = [
        helper.make_node("HybridRegion", ["x"], ["h"], domain="talon", mode="snn"),
        helper.make_node("SepConv2d", ["h", "dw", "pw", "db", "pb"], ["s"], domain="talon", group=4, pads=[1, 1, 1, 1]),
        helper.make_node("ChannelSplit", ["s"], ["a", "b"], domain="talon", split_sections=[4, 2], axis=1),
        helper.make_node("Flatten", ["a"], ["f"], axis=1),
        helper.make_node("SpikingAffine", ["f", "W", "B"], ["y"], domain="talon", weight_bits=6, accumulator_bits=20,
                         spike_mode="rate"),
        helper.make_node("Relu", ["b"], ["z"]),
    ]
    m = _model(nodes, [_vi("x", [1, 4, 4, 4])], [_vi("y", [1, 3]), _vi("z", [1, 2, 4, 4])], inits)
    graph = onnx_to_ir(m)
    types = {type(v) for v in graph.nodes.values()}
    assert {HybridRegion, SepConv2d, ChannelSplit, SpikingAffine} <= types
    sa = next(v for v in graph.nodes.values() if isinstance(v, SpikingAffine))
    assert (sa.weight_bits, sa.accumulator_bits, sa.spike_mode) == (6, 20, "rate")
    x = rng.standard_normal((1, 4, 4, 4)).astype(np.float32)
    expected = OrtExecutor(m)(x)
    with torch.no_grad():
        got = bridge.ir_to_torch(graph)(torch.from_numpy(x))
    for key in ("y", "z"):
        np.testing.assert_allclose(got[key].numpy(), expected[key], rtol=1e-5, atol=1e-5)
