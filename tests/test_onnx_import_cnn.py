"""Small ONNX patterns of modern CNN families convert exactly (onnxruntime on the original vs the IR run by
the torch executor): constant biases and differences, BatchNorm written as Mul + Add, global max pooling,
ConvTranspose, PRelu with a (C,) slope, HardSigmoid, slices, transposes, and run-time shapes of dynamic-batch
TorchScript exports."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import helper
from torch import nn

from onnx_import_helpers import check, model, rand

SHAPE = [2, 4, 5, 6]


def _types(graph):
    return [type(n).__name__ for n in graph.nodes.values()]


@pytest.mark.parametrize("nodes,inits,types", [
    ([helper.make_node("Add", ["x", "c"], ["y"])], {"c": rand(4, 1, 1)}, ["Bias"]),
    ([helper.make_node("Add", ["c", "x"], ["y"])], {"c": np.float32(3.0)}, ["Bias"]),
    ([helper.make_node("Sub", ["x", "c"], ["y"])], {"c": rand(6)}, ["Bias"]),
    ([helper.make_node("Sub", ["c", "x"], ["y"])], {"c": rand(4, 1, 1)}, ["Scale", "Bias"]),
    ([helper.make_node("Mul", ["x", "s"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])],  # BatchNorm, old files
     {"s": rand(1, 4, 1, 1), "b": rand(1, 4, 1, 1, seed=2)}, ["Scale", "Bias"]),
    ([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Sigmoid", ["x"], ["s"]),
      helper.make_node("Sub", ["r", "s"], ["y"])], {}, ["ReLU", "Sigmoid", "Subtract"]),
    ([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("ReduceMean", ["r"], ["m"], axes=[2, 3]),
      helper.make_node("Mul", ["x", "m"], ["y"])], {}, ["ReLU", "AvgPool2d", "Multiply"]),
    ([helper.make_node("ReduceMax", ["x"], ["y"], axes=[2, 3], keepdims=1)], {}, ["MaxPool2d"]),
    ([helper.make_node("ReduceMax", ["x"], ["y"], axes=[-1, -2], keepdims=0)], {}, ["MaxPool2d", "Flatten"]),
    ([helper.make_node("HardSigmoid", ["x"], ["y"])], {}, ["HardSigmoid"]),  # ONNX's alpha 0.2
    ([helper.make_node("HardSigmoid", ["x"], ["h"], alpha=1 / 6), helper.make_node("Mul", ["h", "x"], ["y"])], {},
     ["HardSwish"]),
    ([helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])], {}, ["SiLU"]),
    ([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], {}, ["Permute"]),
    ([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"])],
     {"s": np.array([1]), "e": np.array([3]), "a": np.array([1])}, ["Slice"]),
    ([helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])],
     {"s": np.array([1]), "e": np.array([2**63 - 1]), "a": np.array([-1]), "st": np.array([2])}, ["Slice"]),
])
def test_patterns_convert_exactly(nodes, inits, types):
    graph = check(model(nodes, SHAPE, inits=inits, opset=13), SHAPE)
    assert _types(graph)[1:-1] == types


def test_reduce_max_with_axes_as_input_at_opset_18():
    nodes = [helper.make_node("ReduceMax", ["x", "axes"], ["y"], keepdims=1)]
    graph = check(model(nodes, SHAPE, inits={"axes": np.array([2, 3])}, opset=18), SHAPE)
    assert _types(graph)[1:-1] == ["MaxPool2d"]


def test_slices_that_partition_the_channels_are_one_channel_split():
    bounds = {"s0": np.array([0]), "e0": np.array([1]), "s1": np.array([1]), "e1": np.array([4]), "a": np.array([1])}
    nodes = [helper.make_node("Slice", ["x", "s1", "e1", "a"], ["b"]), helper.make_node("Slice", ["x", "s0", "e0", "a"], ["a0"]),
             helper.make_node("Relu", ["b"], ["rb"]), helper.make_node("Concat", ["rb", "a0"], ["y"], axis=1)]
    graph = check(model(nodes, SHAPE, inits=bounds), SHAPE)
    split = [n for n in graph.nodes.values() if type(n).__name__ == "ChannelSplit"]
    assert len(split) == 1 and split[0].split_sections == (1, 3) and "Slice" not in _types(graph)


@pytest.mark.parametrize("groups,stride,pads,output_padding,dilation", [(1, 2, 1, 1, 1), (2, 1, 0, 0, 2), (4, 3, 2, 2, 1)])
def test_conv_transpose(groups, stride, pads, output_padding, dilation):
    w, b = rand(4, 8 // groups, 3, 3), rand(8, seed=3)
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[stride] * 2, pads=[pads] * 4,
                            output_padding=[output_padding] * 2, dilations=[dilation] * 2, group=groups)
    graph = check(model([node], SHAPE, inits={"w": w, "b": b}), SHAPE, rtol=1e-5, atol=1e-5)
    assert _types(graph)[1:-1] == ["ConvTranspose2d"]


def test_prelu_with_a_per_channel_slope_stored_flat():
    graph = check(model([helper.make_node("PRelu", ["x", "slope"], ["y"])], [3, 5], inits={"slope": rand(5)}), [3, 5])
    assert _types(graph)[1:-1] == ["PReLU"]


def test_layer_norm_decomposed_before_opset_17():
    x, mean, d = "x", "mean", "d"
    nodes = [helper.make_node("ReduceMean", [x], [mean], axes=[-1]), helper.make_node("Sub", [x, mean], [d]),
             helper.make_node("Pow", [d, "two"], ["p"]), helper.make_node("ReduceMean", ["p"], ["v"], axes=[-1]),
             helper.make_node("Add", ["v", "eps"], ["e"]), helper.make_node("Sqrt", ["e"], ["s"]),
             helper.make_node("Div", [d, "s"], ["n"]), helper.make_node("Mul", ["n", "g"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["y"])]
    inits = {"two": np.float32(2.0), "eps": np.float32(1e-6), "g": rand(6), "b": rand(6, seed=4)}
    graph = check(model(nodes, SHAPE, inits=inits, opset=11), SHAPE)
    assert _types(graph)[1:-1] == ["LayerNorm"]
    assert graph.nodes[list(graph.nodes)[1]].eps == pytest.approx(1e-6)


class FlattenInterpolate(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = F.interpolate(self.conv(x), size=(8, 12), mode="nearest")
        return torch.relu(y).flatten(2)


def test_run_time_shapes_of_a_dynamic_batch_torchscript_export_are_resolved():
    """flatten(2) and interpolate(size=...) at opset 11 with a dynamic batch compute their shapes at run time."""
    f = io.BytesIO()
    torch.onnx.export(FlattenInterpolate().eval(), (torch.randn(2, 3, 4, 6),), f, dynamo=False, opset_version=11,
                      input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    proto = onnx.load_from_string(f.getvalue())
    assert {"Shape", "Concat"} <= {n.op_type for n in proto.graph.node}
    graph = check(proto, (3, 3, 4, 6))
    assert _types(graph)[1:-1] == ["Conv2d", "Upsample", "ReLU", "Flatten"]
