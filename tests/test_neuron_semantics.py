"""Neuron semantics every layer must share, checked against independent computations: spikes at exact threshold
ties (torch, onnxruntime running the ONNX function, onnx's ReferenceEvaluator on the body and on the numpy
reference), the surrogate gradient's value and sign, and the reset modes against a plain numpy loop."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto
from onnx import helper as h
from onnx.reference import ReferenceEvaluator

from onnx_ops import OrtModelError, attach_functions, neuron_kernels as nk, reference_evaluator
from onnx_ops import torch_ops  # noqa: F401  (defines torch.ops.talon.*)

F32 = np.float32


def _model(op: str, data: dict[str, np.ndarray], outputs: list[str], consts: dict[str, np.ndarray], **attrs):
    """One talon node with its bodies attached; `consts` become initializers."""
    node = h.make_node(op, [*data, *consts], outputs, domain="talon", name="n", **attrs)
    graph = h.make_graph(
        [node], "g", [h.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in data.items()],
        [h.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [onnx.numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 21), h.make_opsetid("talon", 1)], ir_version=10)
    return attach_functions(model)


def _three_ways(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[list[np.ndarray]]:
    """Outputs from onnxruntime (function inlined), the ReferenceEvaluator on the body, and on the numpy reference."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [session.run(None, feeds), ReferenceEvaluator(model).run(None, feeds),
            reference_evaluator(model).run(None, feeds)]


# -- threshold ties: dyadic values make v == v_threshold exactly in float32 ------------------------------------
# LIF: tau = 2 gives beta = 1 - beta = 0.5; v = 0.5*v0 + 0.5*(v_leak + r*x).
TIE_V0 = np.array([[0.25, 0.5, 0.0, 0.75]], F32)
TIE_X = np.array([[0.75, 0.5, 1.0, 0.25]], F32)
TIE = np.array([0.5, 0.5, 0.5, 0.5], F32)  # exactly the membrane after one step, every element


def _lif_tie_consts(threshold: np.ndarray) -> dict[str, np.ndarray]:
    return {"tau": np.full(4, 2.0, F32), "r": np.ones(4, F32), "vl": np.zeros(4, F32), "th": threshold}


def test_lif_membrane_at_the_threshold_spikes_everywhere() -> None:
    v = 0.5 * TIE_V0 + 0.5 * TIE_X  # the independent membrane: exact in float32
    np.testing.assert_array_equal(v[0], TIE)
    model = _model("LIF", {"x": TIE_X, "v": TIE_V0}, ["s", "vn"], _lif_tie_consts(TIE))
    for s, vn in _three_ways(model, {"x": TIE_X, "v": TIE_V0}):
        np.testing.assert_array_equal(s, np.ones((1, 4), F32))
        np.testing.assert_array_equal(vn, np.zeros((1, 4), F32))
    t = {k: torch.from_numpy(v) for k, v in _lif_tie_consts(TIE).items()}
    s, vn = torch.ops.talon.lif(torch.from_numpy(TIE_X), torch.from_numpy(TIE_V0), t["tau"], t["r"], t["vl"], t["th"])
    assert torch.equal(s, torch.ones(1, 4)) and torch.equal(vn, torch.zeros(1, 4))
    s, _ = nk.lif_step(torch.from_numpy(TIE_X), torch.from_numpy(TIE_V0), torch.tensor(0.5), torch.tensor(0.5),
                       t["r"], t["vl"], t["th"])
    assert torch.equal(s, torch.ones(1, 4))


def test_lif_membrane_one_ulp_below_the_threshold_stays_silent() -> None:
    above = np.nextafter(TIE, np.float32(1.0))
    model = _model("LIF", {"x": TIE_X, "v": TIE_V0}, ["s", "vn"], _lif_tie_consts(above))
    for s, vn in _three_ways(model, {"x": TIE_X, "v": TIE_V0}):
        np.testing.assert_array_equal(s, np.zeros((1, 4), F32))
        np.testing.assert_array_equal(vn, TIE[None])


@pytest.mark.parametrize("reset_mode", ["zero", "subtract"])
def test_if_and_threshold_spike_at_ties(reset_mode: str) -> None:
    v0, x = np.array([[0.25, -0.5, 1.0]], F32), np.array([[0.125, 1.25, -0.25]], F32)
    th = np.array([0.375, 0.75, 0.75], F32)  # = v0 + x exactly
    model = _model("IF", {"x": x, "v": v0}, ["s", "vn"], {"r": np.ones(3, F32), "th": th}, reset_mode=reset_mode)
    for s, vn in _three_ways(model, {"x": x, "v": v0}):
        np.testing.assert_array_equal(s, np.ones((1, 3), F32))
        np.testing.assert_array_equal(vn, np.zeros((1, 3), F32))  # v - th == 0 too when subtracting
    s, vn = torch.ops.talon.if_(*(torch.from_numpy(a) for a in (x, v0, np.ones(3, F32), th)), reset_mode)
    assert torch.equal(s, torch.ones(1, 3)) and torch.equal(vn, torch.zeros(1, 3))
    model = _model("Threshold", {"x": th[None]}, ["y"], {"th": th})
    for (y,) in _three_ways(model, {"x": th[None]}):
        np.testing.assert_array_equal(y, np.ones((1, 3), F32))
    assert torch.equal(torch.ops.talon.threshold(torch.from_numpy(th[None]), torch.from_numpy(th)), torch.ones(1, 3))


def test_cuba_lif_spikes_at_a_tie() -> None:
    # i = 0.5*0 + 0.5*(1*1) = 0.5; v = 0.5*0 + 0.5*(0 + 1*0.5) = 0.25
    one, z = np.ones((1, 2), F32), np.zeros((1, 2), F32)
    consts = {"ts": np.full(2, 2.0, F32), "tm": np.full(2, 2.0, F32), "r": np.ones(2, F32), "vl": np.zeros(2, F32),
              "th": np.full(2, 0.25, F32), "w": np.ones(2, F32)}
    model = _model("CubaLIF", {"x": one, "v": z, "i": z}, ["s", "vn", "in"], consts)
    for s, vn, i in _three_ways(model, {"x": one, "v": z, "i": z}):
        np.testing.assert_array_equal(s, one)
        np.testing.assert_array_equal(vn, z)
        np.testing.assert_array_equal(i, np.full((1, 2), 0.5, F32))


# -- the surrogate gradient: fast sigmoid, d spike / d v = 1 / (5 |v - threshold| + 1)^2 ---------------------------
def _fast_sigmoid(v: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    return 1.0 / (5.0 * np.abs(v - threshold) + 1.0) ** 2


def test_spike_surrogate_gradient_value_and_sign() -> None:
    v = torch.tensor([-1.0, 0.1, 0.5, 0.75, 2.0], dtype=torch.float64, requires_grad=True)
    th = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5], dtype=torch.float64, requires_grad=True)
    weights = torch.tensor([1.0, -2.0, 0.5, 3.0, 1.0], dtype=torch.float64)
    (nk.spike(v, th) * weights).sum().backward()
    expected = _fast_sigmoid(v.detach().numpy(), th.detach().numpy()) * weights.numpy()
    np.testing.assert_allclose(v.grad.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(th.grad.numpy(), -expected, rtol=1e-12)  # raising the threshold lowers spiking
    assert v.grad[2] == 0.5 and th.grad[2] == -0.5  # at the tie the derivative is exactly 1 (times the weight)


def test_lif_custom_op_gradients_follow_the_surrogate_through_the_step() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    v0 = torch.rand(3, 4, generator=g, dtype=torch.float64)
    tau, r = torch.full((4,), 4.0, dtype=torch.float64), torch.full((4,), 1.5, dtype=torch.float64)
    vl = torch.zeros(4, dtype=torch.float64)
    th = torch.full((4,), 0.3, dtype=torch.float64, requires_grad=True)
    s, vn = torch.ops.talon.lif(x, v0, tau, r, vl, th)
    (s.sum() + 0.5 * vn.sum()).backward()
    # independently: v = 0.75*v0 + 0.25*r*x; s = H(v - th); v_next = v*(1 - s)
    xn, v0n = x.detach().numpy(), v0.numpy()
    v = 0.75 * v0n + 0.25 * 1.5 * xn
    sg, spikes = _fast_sigmoid(v, 0.3), (v >= 0.3).astype(float)
    dv = sg + 0.5 * ((1 - spikes) - v * sg)  # d/dv of s + 0.5*v*(1 - s)
    np.testing.assert_allclose(x.grad.numpy(), dv * 0.25 * 1.5, rtol=1e-10)
    np.testing.assert_allclose(th.grad.numpy(), (-sg + 0.5 * v * sg).sum(0), rtol=1e-10)


# -- reset modes against a plain numpy loop ----------------------------------------------------------------
def _numpy_loop(kind: str, xs: np.ndarray, threshold: float, reset_mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Spikes and membranes over time, float64, written from the definitions (LIF: tau = 2, r = 1, v_leak = 0)."""
    v = np.zeros(xs.shape[1:])
    spikes, membranes = [], []
    for x in xs:
        v = 0.5 * v + 0.5 * x if kind == "LIF" else v + x
        s = (v >= threshold).astype(float)
        v = v - s * threshold if reset_mode == "subtract" else np.where(s > 0, 0.0, v)
        spikes.append(s)
        membranes.append(v)
    return np.array(spikes), np.array(membranes)


@pytest.mark.parametrize("kind", ["LIF", "IF"])
@pytest.mark.parametrize("reset_mode", ["zero", "subtract"])
def test_reset_modes_match_a_numpy_loop(kind: str, reset_mode: str) -> None:
    rng = np.random.default_rng(11)
    xs = (rng.integers(-2, 9, (12, 2, 5)) / 8).astype(F32)  # eighths: every sum below is exact in float32
    threshold = 0.625
    want_s, want_v = _numpy_loop(kind, xs.astype(np.float64), threshold, reset_mode)
    assert want_s.sum() > 10 and (want_v[want_s > 0] != 0).any() == (reset_mode == "subtract")
    params = {"tau": np.full(5, 2.0, F32)} if kind == "LIF" else {}
    params |= {"r": np.ones(5, F32)} | ({"vl": np.zeros(5, F32)} if kind == "LIF" else {})
    params["th"] = np.full(5, threshold, F32)
    model = _model(kind, {"x": xs[0], "v": xs[0]}, ["s", "vn"], params, reset_mode=reset_mode)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    reference = reference_evaluator(model)
    op = torch.ops.talon.lif if kind == "LIF" else torch.ops.talon.if_
    tparams = [torch.from_numpy(p) for p in params.values()]
    v_ort = v_ref = np.zeros((2, 5), F32)
    v_torch = torch.zeros(2, 5)
    for t, x in enumerate(xs):
        s_ort, v_ort = session.run(None, {"x": x, "v": v_ort})
        s_ref, v_ref = reference.run(None, {"x": x, "v": v_ref})
        s_torch, v_torch = op(torch.from_numpy(x), v_torch, *tparams, reset_mode)
        for s, v in ((s_ort, v_ort), (s_ref, v_ref), (s_torch.numpy(), v_torch.numpy())):
            np.testing.assert_array_equal(s, want_s[t])
            np.testing.assert_array_equal(v, want_v[t])
    if kind == "LIF":
        s_k, v_k = nk.lif_step(torch.from_numpy(xs[0]), torch.zeros(2, 5), torch.tensor(0.5), torch.tensor(0.5),
                               torch.tensor(1.0), torch.tensor(0.0), torch.tensor(threshold),
                               subtract=reset_mode == "subtract")
    else:
        s_k, v_k = nk.if_step(torch.from_numpy(xs[0]), torch.zeros(2, 5), torch.tensor(1.0), torch.tensor(threshold),
                              subtract=reset_mode == "subtract")
    np.testing.assert_array_equal(s_k.numpy(), want_s[0])
    np.testing.assert_array_equal(v_k.numpy(), want_v[0])


def test_an_unknown_reset_mode_is_refused_naming_the_node() -> None:
    x = np.zeros((1, 2), F32)
    with pytest.raises(OrtModelError, match="'n'.*reset_mode must be 'zero' or 'subtract', got 'halve'"):
        _model("IF", {"x": x, "v": x}, ["s", "vn"], {"r": np.ones(2, F32), "th": np.ones(2, F32)}, reset_mode="halve")


class _SubtractingIF(torch.nn.Module):
    """One IF with the subtract reset, through the torch custom op (so torch.onnx.export emits talon.IF)."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.register_buffer("r", torch.ones(5))
        self.register_buffer("th", torch.full((5,), threshold))

    def forward(self, x, v):
        return torch.ops.talon.if_(x, v, self.r, self.th, "subtract")


def test_torch_export_carries_the_reset_mode_to_onnx() -> None:
    from onnx_ops import OrtExecutor, state_input_name, state_output_name

    threshold = 0.625
    names = dict(input_names=["x", state_input_name("n")], output_names=["s", state_output_name("n")])
    model = torch_ops.export(_SubtractingIF(threshold).eval(), (torch.zeros(2, 5), torch.zeros(2, 5)), **names)
    (node,) = [n for n in model.graph.node if n.op_type == "IF"]
    assert onnx.helper.get_attribute_value(next(a for a in node.attribute if a.name == "reset_mode")) == b"subtract"
    xs = (np.random.default_rng(12).integers(-2, 9, (10, 2, 5)) / 8).astype(F32)
    want_s, want_v = _numpy_loop("IF", xs.astype(np.float64), threshold, "subtract")
    ex, state = OrtExecutor(model, return_state=True), None
    for t, x in enumerate(xs):
        s, state = ex(x, state)
        np.testing.assert_array_equal(s, want_s[t])
        np.testing.assert_array_equal(state["n"][0], want_v[t])
