"""Round trips: ONNX -> IR -> ONNX runs in onnxruntime with the same outputs; IR -> ONNX -> IR is equal;
converters.convert by extension in both directions."""

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings

from converters import convert, ir_to_onnx, onnx_to_ir
from onnx_import_helpers import run_ort
from talon import bridge, ir
from test_real_models import VGG, Dense, Residual, _export, _random_bn

strategies = pytest.importorskip("strategies")


@pytest.mark.parametrize("net", [Residual, Dense, VGG])
def test_onnx_to_ir_to_onnx_runs_the_same(net):
    torch.manual_seed(0)
    m = _random_bn(net())
    x = torch.randn(1, 3, 16, 16)
    proto = _export(m, x, 13, False)
    back = ir_to_onnx(onnx_to_ir(proto))
    expected = run_ort(proto, x.numpy())[0]
    got = run_ort(back, x.numpy())[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(strategies.graphs())
def test_ir_to_onnx_to_ir_is_equal(graph):
    if graph.is_cyclic:
        return
    back = onnx_to_ir(ir_to_onnx(graph))
    assert back.equals(graph), back.diff(graph)


def test_convert_by_extension_both_ways(tmp_path):
    torch.manual_seed(1)
    m = _random_bn(VGG())
    x = torch.randn(1, 3, 16, 16)
    src = tmp_path / "vgg.onnx"
    src.write_bytes(_export(m, x, 13, False).SerializeToString())
    graph = convert(src, tmp_path / "vgg.t1c")
    assert ir.read(tmp_path / "vgg.t1c").equals(graph)
    convert(tmp_path / "vgg.t1c", tmp_path / "back.onnx")
    assert onnx_to_ir(tmp_path / "back.onnx").equals(graph)
    with torch.no_grad():
        got = bridge.ir_to_torch(graph)(x).numpy()
    np.testing.assert_allclose(got, run_ort(onnx.load(src), x.numpy())[0], rtol=1e-4, atol=1e-5)
