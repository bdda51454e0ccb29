"""talon function bodies (run by onnxruntime) against the torch kernels, the numpy ReferenceEvaluator ops against
onnxruntime, and attach_functions on models written without bodies."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto
from onnx import helper as h
from onnx.reference import ReferenceEvaluator

import onnx_ops
from onnx_ops import attach_functions, neuron_kernels as nk, nir_kernels as nirk, reference_evaluator


def _single(
    op: str, inputs: dict[str, np.ndarray], outputs: list[str], consts: dict[str, np.ndarray], **attrs
) -> onnx.ModelProto:
    """A model with one talon node and no function bodies; `consts` become initializers."""
    node = h.make_node(op, [*inputs, *consts], outputs, domain="talon", **attrs)
    graph = h.make_graph(
        [node],
        "g",
        [h.make_tensor_value_info(n, TensorProto.FLOAT, v.shape) for n, v in inputs.items()],
        [h.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [onnx.numpy_helper.from_array(v, n) for n, v in consts.items()],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 21), h.make_opsetid("talon", 1)], ir_version=10)
    if op in onnx_ops.SCHEMAS:  # typed outputs from the schema's inference, so the checker accepts the model
        model.graph.ClearField("output")
        model.graph.output.extend(onnx.shape_inference.infer_shapes(model).graph.value_info)
        model.graph.ClearField("value_info")
    return model


def _ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def _run_all(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """onnxruntime's result after attach_functions, checked equal to both ReferenceEvaluator paths."""
    attach_functions(model)
    onnx.checker.check_model(model, full_check=True)
    got = _ort(model, feeds)
    for other in (reference_evaluator(model).run(None, feeds), ReferenceEvaluator(model).run(None, feeds)):
        for a, b in zip(got, other):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    return got


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)


def _f32(rng: np.random.Generator, *shape: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return rng.uniform(low, high, shape).astype(np.float32)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_lif_and_if_bodies_equal_the_torch_kernels_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, v = _f32(rng, 3, 8, low=-2, high=2), _f32(rng, 3, 8)
    tau, r, vl, th = (
        _f32(rng, 8, low=1, high=20),
        _f32(rng, 8, low=0.5, high=2),
        _f32(rng, 8, low=-0.2, high=0.2),
        _f32(rng, 8, low=0.1, high=1),
    )
    s, vn = _run_all(
        _single("LIF", {"x": x, "v": v}, ["s", "vn"], {"tau": tau, "r": r, "vl": vl, "th": th}), {"x": x, "v": v}
    )
    beta, omb = nk.lif_coefficients(_t(tau))
    es, ev = nk.lif_step(_t(x), _t(v), beta, omb, _t(r), _t(vl), _t(th))
    np.testing.assert_array_equal(s, es.numpy())
    np.testing.assert_array_equal(vn, ev.numpy())
    s, vn = _run_all(_single("IF", {"x": x, "v": v}, ["s", "vn"], {"r": r, "th": th}), {"x": x, "v": v})
    es, ev = nk.if_step(_t(x), _t(v), _t(r), _t(th))
    np.testing.assert_array_equal(s, es.numpy())
    np.testing.assert_array_equal(vn, ev.numpy())


def test_li_integrator_cubalif_threshold_bodies_equal_the_torch_kernels() -> None:
    rng = np.random.default_rng(1)
    x, v, i = _f32(rng, 2, 6, low=-2, high=2), _f32(rng, 2, 6), _f32(rng, 2, 6)
    tau, tau2, r, vl, th, w = (
        _f32(rng, 6, low=1, high=9),
        _f32(rng, 6, low=1, high=9),
        _f32(rng, 6, low=0.5, high=2),
        _f32(rng, 6, low=-0.2, high=0.2),
        _f32(rng, 6, low=0.1, high=0.5),
        _f32(rng, 6, low=0.5, high=2),
    )
    beta, omb = nk.lif_coefficients(_t(tau))
    y, vn = _run_all(_single("LI", {"x": x, "v": v}, ["y", "vn"], {"tau": tau, "r": r, "vl": vl}), {"x": x, "v": v})
    np.testing.assert_array_equal(y, nirk.li_step(_t(x), _t(v), beta, omb, _t(r), _t(vl)).numpy())
    np.testing.assert_array_equal(vn, y)
    y, vn = _run_all(_single("Integrator", {"x": x, "v": v}, ["y", "vn"], {"r": r}), {"x": x, "v": v})
    np.testing.assert_array_equal(y, nirk.integrator_step(_t(x), _t(v), _t(r)).numpy())
    consts = {"ts": tau, "tm": tau2, "r": r, "vl": vl, "th": th, "w": w}
    got = _run_all(_single("CubaLIF", {"x": x, "v": v, "i": i}, ["s", "vn", "in"], consts), {"x": x, "v": v, "i": i})
    alpha, oma = nk.lif_coefficients(_t(tau))
    beta2, omb2 = nk.lif_coefficients(_t(tau2))
    expected = nirk.cuba_lif_step(_t(x), _t(v), _t(i), alpha, oma, _t(w), beta2, omb2, _t(r), _t(vl), _t(th))
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b.numpy())
    (y,) = _run_all(_single("Threshold", {"x": x}, ["y"], {"th": th}), {"x": x})
    np.testing.assert_array_equal(y, nirk.threshold(_t(x), _t(th)).numpy())


def test_spiking_affine_split_hybrid_bodies() -> None:
    rng = np.random.default_rng(2)
    x, w, b = _f32(rng, 4, 7), _f32(rng, 5, 7), _f32(rng, 5)
    (y,) = _run_all(
        _single("SpikingAffine", {"x": x}, ["y"], {"w": w, "b": b}, weight_bits=4, accumulator_bits=8), {"x": x}
    )
    np.testing.assert_allclose(y, x @ w.T + b, rtol=1e-5, atol=1e-6)
    x3 = _f32(rng, 2, 6, 3)
    parts = _run_all(_single("ChannelSplit", {"x": x3}, ["a", "b", "c"], {}, split_sections=[1, 3, 2]), {"x": x3})
    for got, want in zip(parts, np.split(x3, [1, 4], axis=1)):
        np.testing.assert_array_equal(got, want)
    parts = _run_all(_single("ChannelSplit", {"x": x3}, ["a", "b"], {}, split_sections=[2, 1], axis=-1), {"x": x3})
    for got, want in zip(parts, np.split(x3, [2], axis=2)):
        np.testing.assert_array_equal(got, want)
    (y,) = _run_all(_single("HybridRegion", {"x": x3}, ["y"], {}, mode="ann", region_name="r0"), {"x": x3})
    np.testing.assert_array_equal(y, x3)


@pytest.mark.parametrize("stride, pad, dil", [((1, 1), (0, 0), (1, 1)), ((2, 1), (1, 2), (2, 1))])
def test_sepconv_body_equals_torch(stride, pad, dil) -> None:
    rng = np.random.default_rng(3)
    x, dw, pw, db, pb = _f32(rng, 2, 3, 9, 8), _f32(rng, 3, 1, 3, 3), _f32(rng, 4, 3, 1, 1), _f32(rng, 3), _f32(rng, 4)
    (y,) = _run_all(
        _single(
            "SepConv2d",
            {"x": x},
            ["y"],
            {"dw": dw, "pw": pw, "db": db, "pb": pb},
            group=3,
            strides=list(stride),
            pads=list(pad) * 2,
            dilations=list(dil),
        ),
        {"x": x},
    )
    d = F.conv2d(_t(x), _t(dw), _t(db), stride=stride, padding=pad, dilation=dil, groups=3)
    np.testing.assert_allclose(y, F.conv2d(d, _t(pw), _t(pb)).numpy(), rtol=1e-5, atol=1e-5)


def test_sumpool_body_sums_windows_exactly() -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2, (2, 3, 7, 6)).astype(np.float32)  # spikes: sums are exact integers
    (y,) = _run_all(
        _single("SumPool2d", {"x": x}, ["y"], {}, kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 0]), {"x": x}
    )
    np.testing.assert_array_equal(y, nirk.sum_pool2d(_t(x), (3, 2), (2, 2), (1, 0)).numpy())


def test_models_without_bodies_fail_in_onnxruntime_and_run_after_attach() -> None:
    x = np.ones((1, 3), np.float32)
    model = _single(
        "IF", {"x": x, "v": x}, ["s", "vn"], {"r": np.ones(3, np.float32), "th": np.full(3, 1.5, np.float32)}
    )
    with pytest.raises(Exception, match="IF"):
        _ort(model, {"x": x, "v": x})
    del model.opset_import[1]  # a writer that forgot the talon opset import too
    s, vn = _ort(attach_functions(model), {"x": x, "v": x})
    np.testing.assert_array_equal(s, np.ones((1, 3), np.float32))
    np.testing.assert_array_equal(vn, np.zeros((1, 3), np.float32))
    n_funcs = len(model.functions)
    attach_functions(model)  # idempotent: bodies are replaced, not duplicated
    assert len(model.functions) == n_funcs


def test_attach_functions_refuses_unknown_talon_ops() -> None:
    x = np.ones((1, 3), np.float32)
    with pytest.raises(ValueError, match="unknown talon ops \\['Bogus'\\]"):
        attach_functions(_single("Bogus", {"x": x}, ["y"], {}))


def test_bodies_follow_the_model_opset() -> None:
    x = np.ones((1, 3), np.float32)
    model = _single("Integrator", {"x": x, "v": x}, ["y", "vn"], {"r": np.ones(3, np.float32)})
    model.opset_import[0].version = 23
    attach_functions(model)
    assert {f.name: f.opset_import[0].version for f in model.functions}["Integrator"] == 23
    np.testing.assert_array_equal(_ort(model, {"x": x, "v": x})[0], 2 * x)
