"""The talon op schemas: shape inference, and the checker refusing wrong arity or attributes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto
from onnx import helper as h

import onnx_ops

F = TensorProto.FLOAT


def _model(node: onnx.NodeProto, inputs: dict[str, list], out_dims: list | None = None) -> onnx.ModelProto:
    vis = [h.make_tensor_value_info(n, F, d) for n, d in inputs.items()]
    outs = [h.make_tensor_value_info(o, F, out_dims) for o in node.output]
    graph = h.make_graph([node], "g", vis, outs)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 21), h.make_opsetid("talon", 1)], ir_version=10)


def _inferred(model: onnx.ModelProto) -> list[list]:
    out = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return [[d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim] for o in out.graph.output]


def _talon(op: str, inputs: list[str], outputs: list[str], **attrs) -> onnx.NodeProto:
    return h.make_node(op, inputs, outputs, domain="talon", **attrs)


@pytest.mark.parametrize("op, params", [("LIF", 4), ("IF", 2), ("LI", 3), ("Integrator", 1)])
def test_neuron_outputs_take_the_input_shape(op: str, params: int) -> None:
    names = ["x", "v"] + [f"p{i}" for i in range(params)]
    dims = {"x": ["batch", 3, 4], "v": ["batch", 3, 4], **{f"p{i}": [3, 4] for i in range(params)}}
    assert _inferred(_model(_talon(op, names, ["s", "vn"]), dims)) == [["batch", 3, 4]] * 2


def test_cuba_lif_has_three_outputs_of_the_input_shape() -> None:
    names = ["x", "v", "i"] + [f"p{i}" for i in range(6)]
    dims = {n: ["batch", 5] if n in ("x", "v", "i") else [5] for n in names}
    assert _inferred(_model(_talon("CubaLIF", names, ["s", "vn", "in"]), dims)) == [["batch", 5]] * 3


def test_spiking_affine_shape() -> None:
    node = _talon("SpikingAffine", ["x", "w", "b"], ["y"], weight_bits=4, accumulator_bits=12, spike_mode="graded")
    assert _inferred(_model(node, {"x": ["batch", 7], "w": [5, 7], "b": [5]})) == [["batch", 5]]


def test_channel_split_shapes_follow_the_sections() -> None:
    node = _talon("ChannelSplit", ["x"], ["a", "b", "c"], split_sections=[1, 2, 3])
    assert _inferred(_model(node, {"x": ["batch", 6, 4]})) == [["batch", 1, 4], ["batch", 2, 4], ["batch", 3, 4]]
    node = _talon("ChannelSplit", ["x"], ["a", "b"], split_sections=[3, 1], axis=-1)
    assert _inferred(_model(node, {"x": ["batch", 6, 4]})) == [["batch", 6, 3], ["batch", 6, 1]]


@pytest.mark.parametrize("stride, pad, dil", [((1, 1), (0, 0), (1, 1)), ((2, 1), (1, 2), (1, 2))])
def test_sepconv_shape_matches_torch(stride, pad, dil) -> None:
    node = _talon(
        "SepConv2d",
        ["x", "dw", "pw", "db", "pb"],
        ["y"],
        group=3,
        strides=list(stride),
        pads=list(pad) * 2,
        dilations=list(dil),
    )
    dims = {"x": ["batch", 3, 9, 8], "dw": [3, 1, 3, 3], "pw": [5, 3, 1, 1], "db": [3], "pb": [5]}
    expected = torch.nn.functional.conv2d(
        torch.zeros(1, 3, 9, 8), torch.zeros(3, 1, 3, 3), stride=stride, padding=pad, dilation=dil, groups=3
    ).shape
    assert _inferred(_model(node, dims)) == [["batch", 5, *expected[2:]]]


def test_sumpool_shape_matches_torch() -> None:
    node = _talon("SumPool2d", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 0])
    expected = torch.nn.functional.avg_pool2d(torch.zeros(1, 2, 7, 6), (3, 2), (2, 2), (1, 0)).shape
    assert _inferred(_model(node, {"x": ["batch", 2, 7, 6]})) == [["batch", 2, *expected[2:]]]


@pytest.mark.parametrize("op", ["HybridRegion", "Threshold"])
def test_identity_shaped_ops(op: str) -> None:
    inputs = ["x"] if op == "HybridRegion" else ["x", "t"]
    assert _inferred(_model(_talon(op, inputs, ["y"]), {"x": ["batch", 2, 3], "t": [2, 3]})) == [["batch", 2, 3]]


def _check(model: onnx.ModelProto) -> None:
    onnx.checker.check_model(model, full_check=True)


def test_checker_refuses_wrong_arity() -> None:
    dims = {n: ["batch", 4] for n in ["x", "v", "tau", "r", "vl"]}
    _check(
        _model(_talon("LI", ["x", "v", "tau", "r", "vl"], ["s", "vn"]), dims, ["batch", 4])
    )  # the right arity passes
    with pytest.raises(onnx.checker.ValidationError, match="LIF"):
        _check(
            _model(_talon("LIF", ["x", "v", "tau", "r", "vl"], ["s", "vn"]), dims, ["batch", 4])
        )  # v_threshold missing
    with pytest.raises(onnx.checker.ValidationError, match="IF"):
        _check(_model(_talon("IF", ["x", "v", "tau", "r", "vl"], ["s", "vn"]), dims, ["batch", 4]))  # one too many
    with pytest.raises(onnx.checker.ValidationError, match="IF"):
        _check(_model(_talon("IF", ["x", "v", "tau", "r"], ["s", "vn", "extra"]), dims, ["batch", 4]))


def test_checker_refuses_unknown_or_missing_attributes() -> None:
    dims = {n: ["batch", 4] for n in ["x", "v", "r", "t"]}
    with pytest.raises(onnx.checker.ValidationError, match="leak"):
        _check(_model(_talon("IF", ["x", "v", "r", "t"], ["s", "vn"], leak=1.0), dims, ["batch", 4]))
    with pytest.raises(onnx.checker.ValidationError, match="split_sections"):
        _check(_model(_talon("ChannelSplit", ["x"], ["a", "b"]), {"x": ["batch", 4]}, ["batch", 2]))


def test_inference_refuses_inconsistent_split_and_affine() -> None:
    split = _talon("ChannelSplit", ["x"], ["a", "b"], split_sections=[1, 2])
    with pytest.raises(onnx.shape_inference.InferenceError, match="sum to 3"):
        _inferred(_model(split, {"x": ["batch", 4]}))
    split = _talon("ChannelSplit", ["x"], ["a", "b"], split_sections=[1, 2, 1])
    with pytest.raises(onnx.shape_inference.InferenceError, match="3 split_sections for 2 outputs"):
        _inferred(_model(split, {"x": ["batch", 4]}))
    affine = _talon("SpikingAffine", ["x", "w", "b"], ["y"])
    with pytest.raises(onnx.shape_inference.InferenceError, match="differs"):
        _inferred(_model(affine, {"x": ["batch", 6], "w": [5, 7], "b": [5]}))


def test_every_schema_is_registered_with_onnx() -> None:
    for name in onnx_ops.SCHEMAS:
        assert onnx.defs.has(name, 1, "talon")
        assert onnx.defs.get_schema(name, 1, "talon").has_type_and_shape_inference_function
    assert np.all([onnx.defs.get_schema(n, 1, "talon").domain == "talon" for n in onnx_ops.SCHEMAS])
