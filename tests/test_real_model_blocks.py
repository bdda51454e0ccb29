"""The blocks of modern CNN families (tests/real_blocks.py) convert natively through every export path users
take: onnx_to_ir's graph, its .t1c round trip and its ir_to_onnx form each equal onnxruntime on the original
export (max abs difference at most 1e-5 times the output's largest magnitude).

The TorchScript paths run per block (cheap); the dynamo exporter is slow, so it exports the whole `zoo` of
blocks once per path instead."""

from __future__ import annotations

import functools
from collections import Counter

import numpy as np
import onnxruntime as ort
import pytest
import torch

from converters import ir_to_onnx, onnx_to_ir
from real_blocks import BLOCKS, build, export
from talon import bridge, ir

RTOL = 1e-5
SINGLE = [b for b in BLOCKS if b != "zoo"]
# the primitives each block must convert to (so that a silent fallback to something else fails)
EXPECTED = {
    "se": {"Multiply", "Sigmoid", "AvgPool2d"},
    "inverted_residual_hardswish": {"HardSwish", "HardSigmoid", "Multiply"},
    "mbconv_silu_se": {"SiLU", "Multiply"},
    "shuffle_unit": {"ChannelShuffle", "ChannelSplit", "Concat"},
    "ghost_module": {"Slice", "Bias", "Clamp", "Scale", "Multiply"},
    "convnext_block": {"Permute", "LayerNorm", "Affine", "GELU"},  # onnxslim folds the layer scale
    "regnet_y_se": {"Multiply", "Conv2d"},
}
EXPECTED["zoo"] = set().union(*EXPECTED.values())


def _ort(proto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _close(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert got.shape == expected.shape, what
    bound = RTOL * float(np.abs(expected).max())
    diff = float(np.abs(got - expected).max())
    assert diff <= bound, f"{what}: max abs diff {diff:.3g} > {bound:.3g}"


def _run_ir(graph: ir.Graph, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return bridge.ir_to_torch(graph)(torch.from_numpy(x)).numpy()


def check_native(proto, x: np.ndarray, block: str, tmp_path) -> ir.Graph:
    """onnx_to_ir, the .t1c round trip and ir_to_onnx all match onnxruntime on the original export."""
    expected = _ort(proto, x)
    graph = onnx_to_ir(proto)
    types = Counter(type(n).__name__ for n in graph.nodes.values())
    assert EXPECTED[block] <= set(types), f"missing {EXPECTED[block] - set(types)} in {dict(types)}"
    _close(_run_ir(graph, x), expected, "IR")
    path = tmp_path / f"{block}.t1c"
    ir.write(path, graph)
    loaded = ir.read(path)
    assert loaded == graph
    _close(_run_ir(loaded, x), expected, ".t1c round trip")
    _close(_ort(ir_to_onnx(loaded), x), expected, "ir_to_onnx in onnxruntime")
    return graph


@pytest.mark.parametrize("slim", [False, True], ids=["plain", "onnxslim"])
@pytest.mark.parametrize("how", ["torchscript11_dynamic", "torchscript17"])
@pytest.mark.parametrize("block", SINGLE)
def test_block_torchscript_exports_convert_natively(block, how, slim, tmp_path):
    model = build(block)
    proto = export(model, torch.randn(2, 8, 16, 16), how, slim=slim)
    batch = 3 if how.endswith("dynamic") else 2
    x = np.random.default_rng(1).standard_normal((batch, 8, 16, 16)).astype(np.float32)
    check_native(proto, x, block, tmp_path)


@functools.lru_cache(maxsize=None)
def _zoo_export(how: str):
    return export(build("zoo"), torch.randn(2, 8, 16, 16), how)


@pytest.mark.parametrize("how,slim", [("dynamo", False), ("dynamo_dynamic", False), ("dynamo_dynamic", True)])
def test_zoo_dynamo_exports_convert_natively(how, slim, tmp_path):
    proto = _zoo_export(how)
    if slim:
        import onnxslim

        proto = onnxslim.slim(proto)
    batch = 3 if how.endswith("dynamic") else 2
    x = np.random.default_rng(2).standard_normal((batch, 8, 16, 16)).astype(np.float32)
    check_native(proto, x, "zoo", tmp_path)
