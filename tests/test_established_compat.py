"""Compatibility with the established TALON toolchain: every .t1c we write from converted models carries each
field its reader requires (the table in docs/t1c-format.md), and an Input shape that disagrees with the first
layer's weights is read with a warning and run with the shape the layers imply (as its executor does)."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from converters import onnx_to_ir
from real_blocks import build, export
from talon import bridge, ir
from talon.ir.established import InputShapeWarning

# The fields the established reader reads without a default, per node type (docs/t1c-format.md, "Fields
# the established reader requires"); Upsample needs one of scale_factor and size besides these.
REQUIRED = {
    "Input": {"shape"}, "Output": {"shape"},
    "Affine": {"weight", "bias"},
    "SpikingAffine": {"weight", "bias", "spike_mode", "weight_bits", "accumulator_bits"},
    "Conv2d": {"weight", "bias", "stride", "padding", "dilation", "groups"},
    "SepConv2d": {"depthwise_weight", "pointwise_weight", "depthwise_bias", "pointwise_bias", "stride", "padding",
                  "dilation"},
    "MaxPool2d": {"kernel_size", "stride", "padding", "dilation", "ceil_mode"},
    "AvgPool2d": {"kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"},
    "Upsample": {"mode", "align_corners"},
    "Flatten": {"start_dim", "end_dim"},
    "LIF": {"tau", "r", "v_leak", "v_threshold"},
    "Skip": {"skip_type"},
    "ReLU": {"features"}, "Sigmoid": {"features"}, "Tanh": {"features"}, "Softmax": {"features"},
    "GELU": {"features"}, "ELU": {"features"}, "PReLU": {"features", "weight"}, "Dropout": {"features"},
    "BatchNorm1d": {"num_features", "weight", "bias", "running_mean", "running_var"},
    "BatchNorm2d": {"num_features", "weight", "bias", "running_mean", "running_var"},
    "LayerNorm": {"normalized_shape", "weight", "bias"},
    "HybridRegion": {"mode", "features"},
}


class Head(nn.Module):
    """The README's kind of model: conv features, every activation the established reader knows, a classifier."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Upsample(scale_factor=2), nn.PReLU(4), nn.AvgPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Dropout(), nn.Linear(16, 16),
                                        nn.ELU(), nn.Sigmoid(), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 5),
                                        nn.Softmax(dim=1))

    def forward(self, x):
        return self.classifier(self.features(x))


def _graphs():
    yield "to_ir", bridge.to_ir(Head().eval(), torch.randn(1, 3, 8, 8))
    yield "onnx_to_ir Head", onnx_to_ir(export(Head().eval(), torch.randn(2, 3, 8, 8), "torchscript17"))
    for block in ("se", "inverted_residual_hardswish", "convnext_block"):
        yield f"onnx_to_ir {block}", onnx_to_ir(export(build(block), torch.randn(2, 8, 16, 16), "torchscript11_dynamic"))


def test_written_nodes_carry_every_field_the_established_reader_requires(tmp_path):
    seen = set()
    for label, graph in _graphs():
        path = tmp_path / "g.t1c"
        ir.write(path, graph)
        with h5py.File(path, "r") as f:
            for name, group in f["graph/nodes"].items():
                kind = group["type"][()].decode()
                seen.add(kind)
                missing = REQUIRED.get(kind, set()) - set(group)
                assert not missing, f"{label}: node {name!r} ({kind}) lacks {sorted(missing)}"
                if kind == "Upsample":
                    assert {"scale_factor", "size"} & set(group), f"{label}: {name!r} has neither scale_factor nor size"
    assert {"ReLU", "Sigmoid", "Tanh", "Softmax", "GELU", "ELU", "PReLU", "Upsample", "LayerNorm"} <= seen  # (eval exports drop Dropout)


def test_features_are_the_inferred_input_shapes():
    graph = onnx_to_ir(export(Head().eval(), torch.randn(2, 3, 8, 8), "torchscript17"))
    by_type = {type(n).__name__: n for n in graph.nodes.values()}
    assert by_type["ReLU"].features == (4, 8, 8)  # after the conv: (C, H, W)
    assert by_type["Tanh"].features == 16 and by_type["Softmax"].features == 5


def _write_with_input_shape(path, graph: ir.Graph, shape) -> None:
    """Write the graph, then record another Input shape, as the established toolchain's writer did."""
    ir.write(path, graph)
    with h5py.File(path, "r+") as f:
        del f["graph/nodes/input/shape"]
        f["graph/nodes/input/shape"] = np.array(shape, np.int64)


def test_input_shape_disagreeing_with_an_affine_is_read_as_the_weights_imply(tmp_path):
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((3, 7)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    graph = ir.Graph({"input": ir.Input(shape=(7,)), "fc": ir.Affine(weight=w, bias=b), "output": ir.Output(shape=(3,))},
                     [("input", "fc"), ("fc", "output")])
    _write_with_input_shape(tmp_path / "a.t1c", graph, [5])
    with pytest.warns(InputShapeWarning, match=r"'input'.*\(5,\).*'fc'.*\(7,\)"):
        loaded = ir.read(tmp_path / "a.t1c")
    assert loaded.nodes["input"].shape == (7,)
    x = rng.standard_normal((2, 7)).astype(np.float32)
    with torch.no_grad():
        got = bridge.ir_to_torch(loaded)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, x @ w.T + b, rtol=1e-6, atol=1e-6)


def test_input_shape_disagreeing_with_a_conv_keeps_the_spatial_dims(tmp_path):
    conv = ir.Conv2d(weight=np.ones((2, 3, 3, 3), np.float32), bias=np.zeros(2, np.float32), stride=1, padding=1,
                     dilation=1, groups=1)
    graph = ir.Graph({"input": ir.Input(shape=(3, 6, 6)), "conv": conv, "output": ir.Output(shape=(2, 6, 6))},
                     [("input", "conv"), ("conv", "output")])
    _write_with_input_shape(tmp_path / "c.t1c", graph, [1, 6, 6])
    with pytest.warns(InputShapeWarning, match="'conv'"):
        assert ir.read(tmp_path / "c.t1c") == graph


def test_agreeing_or_unexplained_input_shapes_are_read_unchanged(tmp_path):
    norm = ir.LayerNorm(normalized_shape=(7,))
    graph = ir.Graph({"input": ir.Input(shape=(7,)), "norm": norm, "output": ir.Output(shape=(7,))},
                     [("input", "norm"), ("norm", "output")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ir.write(tmp_path / "ok.t1c", graph)
        assert ir.read(tmp_path / "ok.t1c") == graph
        _write_with_input_shape(tmp_path / "odd.t1c", graph, [5])  # LayerNorm implies no input shape: kept
        assert ir.read(tmp_path / "odd.t1c").nodes["input"].shape == (5,)
