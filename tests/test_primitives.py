"""Primitives: construction as the tutorial writes it, field validation errors, output shapes, registry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from talon import ir
from talon.ir import PrimitiveError
from talon.ir import primitives as prims

from strategies import BUILTIN_TYPES, primitive_nodes

f32 = lambda *shape: np.ones(shape, np.float32)  # noqa: E731


def test_tutorial_constructions():
    assert ir.Input(np.array([128])).shape == (128,)
    lif = ir.LIF(tau=f32(64) * 5, r=f32(64), v_leak=np.zeros(64, np.float32), v_threshold=f32(64) * 0.5)
    assert lif.neuron_shape == (64,) and lif.tau.dtype == np.float32 and ir.LIF.stateful
    split = ir.ChannelSplit(split_sections=(16, 16))
    assert split.split_sections == (16, 16) and split.dim == 1 and ir.ChannelSplit.multi_output
    assert ir.Concat(dim=1).dim == 1 and ir.Concat.merge and ir.Skip.merge
    sa = ir.SpikingAffine(weight=f32(4, 3))
    assert (sa.spike_mode, sa.weight_bits, sa.accumulator_bits) == ("binary", 8, 16)
    assert np.array_equal(sa.bias, np.zeros(4)) and sa.bias.dtype == np.float32


def test_documented_defaults():
    assert ir.ReLU().negative_slope == 0.0 and ir.GELU().approximate is True and ir.ELU().alpha == 1.0
    assert ir.Softmax().dim == -1 and ir.Dropout().p == 0.5 and ir.HybridRegion(mode="ann").name is None
    ln = ir.LayerNorm(normalized_shape=(3,))
    assert ln.eps == 1e-5 and np.array_equal(ln.weight, np.ones(3)) and np.array_equal(ln.bias, np.zeros(3))
    bn = ir.BatchNorm2d(num_features=2, running_mean=np.zeros(2), running_var=np.ones(2))
    assert (bn.eps, bn.momentum) == (1e-5, 0.1) and np.array_equal(bn.weight, np.ones(2))
    pool = ir.MaxPool2d(kernel_size=3)
    assert pool.kernel_size == (3, 3) and pool.stride == (3, 3) and pool.padding == (0, 0)
    conv = ir.Conv2d(weight=f32(4, 2, 3, 3), stride=2)
    assert conv.stride == (2, 2) and conv.dilation == (1, 1) and conv.groups == 1 and conv.bias.shape == (4,)


def test_registry_lists_every_builtin_and_strategies_cover_them():
    builtins = [n for n in prims.__all__ if isinstance(getattr(prims, n), type) and issubclass(getattr(prims, n), ir.Node)
                and n != "Node"]
    assert set(builtins) <= set(ir.list_primitives()) and ir.list_primitives() == sorted(ir.list_primitives())
    assert all(ir.get_primitive(n) is getattr(ir, n) for n in builtins)
    assert set(builtins) == set(BUILTIN_TYPES)
    with pytest.raises(KeyError):
        ir.get_primitive("Quantum")


@settings(max_examples=60, deadline=None)
@given(node=primitive_nodes())
def test_every_primitive_rebuilds_equal_from_its_params(node):
    again = type(node)(**node.params())
    assert again == node and repr(again) == repr(node)
    arrays = sum(v.size for v in node.params().values() if isinstance(v, np.ndarray))
    # a HostRegion's array is its serialized ONNX model: its parameters are the count it records
    assert node.num_params() == (node.param_count if isinstance(node, ir.HostRegion) else arrays)


INVALID = [
    # (what, build, primitive, field)
    ("bias vs weight", lambda: ir.Affine(weight=f32(3, 2), bias=f32(4)), "Affine", "bias"),
    ("1-D weight", lambda: ir.Affine(weight=f32(3)), "Affine", "weight"),
    ("string weight", lambda: ir.Affine(weight=np.array(["a"])), "Affine", "weight"),
    ("acc < weight bits", lambda: ir.SpikingAffine(weight=f32(2, 2), weight_bits=8, accumulator_bits=4),
     "SpikingAffine", "accumulator_bits"),
    ("weight bits 0", lambda: ir.SpikingAffine(weight=f32(2, 2), weight_bits=0), "SpikingAffine", "weight_bits"),
    ("weight bits 33", lambda: ir.SpikingAffine(weight=f32(2, 2), weight_bits=33, accumulator_bits=64),
     "SpikingAffine", "weight_bits"),
    ("acc bits 65", lambda: ir.SpikingAffine(weight=f32(2, 2), accumulator_bits=65), "SpikingAffine", "accumulator_bits"),
    ("spike mode", lambda: ir.SpikingAffine(weight=f32(2, 2), spike_mode="burst"), "SpikingAffine", "spike_mode"),
    ("bits as float", lambda: ir.SpikingAffine(weight=f32(2, 2), weight_bits=7.5), "SpikingAffine", "weight_bits"),
    ("bits as 0-d float", lambda: ir.SpikingAffine(weight=f32(2, 2), weight_bits=np.array(7.5)), "SpikingAffine",
     "weight_bits"),
    ("bits as bool", lambda: ir.SpikingAffine(weight=f32(2, 2), weight_bits=np.array(True)), "SpikingAffine",
     "weight_bits"),
    ("features fractional", lambda: ir.ReLU(features=np.array(2.5)), "ReLU", "features"),
    ("conv stride 0", lambda: ir.Conv2d(weight=f32(2, 1, 3, 3), stride=0), "Conv2d", "stride"),
    ("conv negative padding", lambda: ir.Conv2d(weight=f32(2, 1, 3, 3), padding=-1), "Conv2d", "padding"),
    ("conv groups", lambda: ir.Conv2d(weight=f32(3, 1, 3, 3), groups=2), "Conv2d", "groups"),
    ("conv 3-D weight", lambda: ir.Conv2d(weight=f32(2, 1, 3)), "Conv2d", "weight"),
    ("conv empty kernel", lambda: ir.Conv2d(weight=f32(2, 1, 0, 3)), "Conv2d", "weight"),
    ("conv bias", lambda: ir.Conv2d(weight=f32(2, 1, 3, 3), bias=f32(3)), "Conv2d", "bias"),
    ("conv 2-D stride", lambda: ir.Conv2d(weight=f32(2, 1, 3, 3), stride=np.ones((2, 2))), "Conv2d", "stride"),
    ("conv1d stride", lambda: ir.Conv1d(weight=f32(2, 1, 3), stride=(0,)), "Conv1d", "stride"),
    ("conv1d 3 strides", lambda: ir.Conv1d(weight=f32(2, 1, 3), stride=(1, 1, 1)), "Conv1d", "stride"),
    ("sepconv depthwise", lambda: ir.SepConv2d(depthwise_weight=f32(2, 2, 3, 3), pointwise_weight=f32(4, 2, 1, 1)),
     "SepConv2d", "depthwise_weight"),
    ("sepconv pointwise", lambda: ir.SepConv2d(depthwise_weight=f32(2, 1, 3, 3), pointwise_weight=f32(4, 3, 1, 1)),
     "SepConv2d", "pointwise_weight"),
    ("maxpool kernel 0", lambda: ir.MaxPool2d(kernel_size=0), "MaxPool2d", "kernel_size"),
    ("maxpool stride 0", lambda: ir.MaxPool2d(kernel_size=2, stride=0), "MaxPool2d", "stride"),
    ("maxpool padding", lambda: ir.MaxPool2d(kernel_size=2, padding=2), "MaxPool2d", "padding"),
    ("maxpool dilation", lambda: ir.MaxPool2d(kernel_size=2, dilation=0), "MaxPool2d", "dilation"),
    ("avgpool kernel", lambda: ir.AvgPool2d(kernel_size=(2, -1)), "AvgPool2d", "kernel_size"),
    ("avgpool bool", lambda: ir.AvgPool2d(kernel_size=2, ceil_mode="yes"), "AvgPool2d", "ceil_mode"),
    ("upsample mode", lambda: ir.Upsample(mode="cubic", scale_factor=2), "Upsample", "mode"),
    ("upsample both", lambda: ir.Upsample(scale_factor=2, size=(4, 4)), "Upsample", "scale_factor"),
    ("upsample neither", lambda: ir.Upsample(), "Upsample", "scale_factor"),
    ("upsample scale 0", lambda: ir.Upsample(scale_factor=0), "Upsample", "scale_factor"),
    ("upsample align nearest", lambda: ir.Upsample(scale_factor=2, align_corners=True), "Upsample", "align_corners"),
    ("lif shapes", lambda: ir.LIF(tau=f32(3), r=f32(3), v_leak=f32(4), v_threshold=f32(3)), "LIF", "v_leak"),
    ("lif tau", lambda: ir.LIF(tau=np.zeros(3), r=f32(3), v_leak=f32(3), v_threshold=f32(3)), "LIF", "tau"),
    ("lif missing", lambda: ir.LIF(tau=f32(3), r=f32(3), v_leak=f32(3), v_threshold=None), "LIF", "v_threshold"),
    ("if shapes", lambda: ir.IF(r=f32(2, 3), v_threshold=f32(3)), "IF", "v_threshold"),
    ("skip type", lambda: ir.Skip(skip_type="multiply"), "Skip", "skip_type"),
    ("skip type not str", lambda: ir.Skip(skip_type=3), "Skip", "skip_type"),
    ("split empty", lambda: ir.ChannelSplit(split_sections=()), "ChannelSplit", "split_sections"),
    ("split zero", lambda: ir.ChannelSplit(split_sections=(4, 0)), "ChannelSplit", "split_sections"),
    ("split negative", lambda: ir.ChannelSplit(split_sections=(4, -2)), "ChannelSplit", "split_sections"),
    ("split fractional", lambda: ir.ChannelSplit(split_sections=(1.5, 2)), "ChannelSplit", "split_sections"),
    ("concat batch dim", lambda: ir.Concat(dim=0), "Concat", "dim"),
    ("bn features", lambda: ir.BatchNorm1d(num_features=0, running_mean=f32(0), running_var=f32(0)), "BatchNorm1d",
     "num_features"),
    ("bn mean shape", lambda: ir.BatchNorm2d(num_features=3, running_mean=f32(2), running_var=f32(3)), "BatchNorm2d",
     "running_mean"),
    ("bn eps", lambda: ir.BatchNorm2d(num_features=1, running_mean=f32(1), running_var=f32(1), eps=0.0), "BatchNorm2d", "eps"),
    ("layernorm weight", lambda: ir.LayerNorm(normalized_shape=(3,), weight=f32(4)), "LayerNorm", "weight"),
    ("dropout p", lambda: ir.Dropout(p=1.5), "Dropout", "p"),
    ("dropout p not number", lambda: ir.Dropout(p="half"), "Dropout", "p"),
    ("hybrid mode", lambda: ir.HybridRegion(mode="quantum"), "HybridRegion", "mode"),
    ("prelu weight", lambda: ir.PReLU(weight=f32(2, 2)), "PReLU", "weight"),
    ("clamp reversed", lambda: ir.Clamp(1.0, -1.0), "Clamp", "max_value"),
    ("clamp unbounded", lambda: ir.Clamp(), "Clamp", "max_value"),
    ("clamp infinite", lambda: ir.Clamp(None, float("inf")), "Clamp", "max_value"),
    ("clamp nan", lambda: ir.Clamp(float("nan"), 1.0), "Clamp", "min_value"),
    ("clamp not number", lambda: ir.Clamp("low"), "Clamp", "min_value"),
    ("input shape", lambda: ir.Input((3, 0)), "Input", "shape"),
    ("output shape", lambda: ir.Output((-1,)), "Output", "shape"),
    ("metadata", lambda: ir.ReLU(metadata=[1]), "ReLU", "metadata"),
]


@pytest.mark.parametrize("build, primitive, field", [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_fields_raise_naming_primitive_and_field(build, primitive, field):
    with pytest.raises(PrimitiveError) as err:
        build()
    assert isinstance(err.value, ValueError)
    assert (err.value.primitive, err.value.field) == (primitive, field)
    assert str(err.value).startswith(f"{primitive}.{field}: ")


@pytest.mark.parametrize("node, inputs, field", [
    (ir.Affine(weight=f32(2, 3)), [(4,)], "weight"),
    (ir.Conv2d(weight=f32(2, 3, 3, 3)), [(2, 8, 8)], "weight"),
    (ir.Conv2d(weight=f32(2, 1, 5, 5)), [(1, 3, 3)], "kernel_size"),
    (ir.LIF(tau=f32(5), r=f32(5), v_leak=f32(5), v_threshold=f32(5)), [(4,)], "tau"),
    (ir.ChannelSplit(split_sections=(2, 2)), [(5, 3)], "split_sections"),
    (ir.Concat(dim=1), [(2, 3), (2, 4)], "dim"),
    (ir.Concat(dim=3), [(2, 3), (2, 3)], "dim"),
    (ir.ReLU(), [(2,), (3,)], "inputs"),
    (ir.BatchNorm2d(num_features=3, running_mean=f32(3), running_var=f32(3)), [(4, 2, 2)], "num_features"),
    (ir.LayerNorm(normalized_shape=(3,)), [(2, 4)], "normalized_shape"),
    (ir.PReLU(weight=f32(3)), [(4, 2)], "weight"),
    (ir.Flatten(start_dim=2), [(3, 4)], "start_dim"),
    (ir.Softmax(dim=4), [(3, 4)], "dim"),
])
def test_output_shapes_refuse_inputs_that_do_not_fit(node, inputs, field):
    with pytest.raises(PrimitiveError) as err:
        node.output_shapes(inputs)
    assert err.value.field == field


def test_output_shapes_of_routing_and_shape_changing_nodes():
    assert ir.ChannelSplit(split_sections=(1, 3)).output_shapes([(4, 5)]) == [(1, 5), (3, 5)]
    assert ir.ChannelSplit(split_sections=(2, 3), dim=-1).output_shapes([(4, 5)]) == [(4, 2), (4, 3)]
    assert ir.Concat(dim=1).output_shapes([(2, 5), (3, 5), (1, 5)]) == [(6, 5)]
    assert ir.Concat(dim=-1).output_shapes([(2, 5), (2, 1)]) == [(2, 6)]
    assert ir.Skip(skip_type="concat").output_shapes([(2, 4), (3, 4)]) == [(5, 4)]
    assert ir.Skip(skip_type="add").output_shapes([(2, 4), (2, 4)]) == [(2, 4)]
    assert ir.Skip(skip_type="identity").kind == "passthrough"
    assert ir.Upsample(size=(7, 9)).output_shapes([(3, 2, 2)]) == [(3, 7, 9)]
    assert ir.Flatten(start_dim=1).output_shapes([(2, 3, 4)]) == [(2, 12)]
    assert ir.LIF(tau=f32(48), r=f32(48), v_leak=f32(48), v_threshold=f32(48)).output_shapes([(3, 4, 4)]) == [(3, 4, 4)]


def test_node_equality_compares_dtypes_and_types():
    a = ir.PReLU(weight=np.array([0.25], np.float32))
    assert a == ir.PReLU(weight=np.array([0.25], np.float32))
    assert a != ir.PReLU(weight=np.array([0.25], np.float64))
    assert a != ir.PReLU(weight=np.array([0.25], np.float32), metadata={"k": 1})
    assert ir.ReLU() != ir.Tanh()
