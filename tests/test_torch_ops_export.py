"""torch.ops.talon custom ops: eager results, surrogate gradients, and dynamo export to talon ONNX nodes
with named initializers that onnxruntime runs equal to eager."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from onnx_ops import OrtExecutor, neuron_kernels as nk, state_input_name, state_output_name
from onnx_ops import torch_ops


class _Net(torch.nn.Module):
    """Linear -> LIF -> ChannelSplit -> (IF, SpikingAffine); neuron parameters are buffers, two of them equal."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.fc = torch.nn.Linear(6, 5)
        self.register_buffer("tau", torch.full((5,), 4.0))
        self.register_buffer("r", torch.ones(5))
        self.register_buffer("v_leak", torch.zeros(5))
        self.register_buffer("v_threshold", torch.full((5,), 0.3))
        self.register_buffer("if_r", torch.ones(2))  # equal to r's values: must stay its own initializer
        self.register_buffer("if_threshold", torch.full((2,), 0.5))
        self.register_buffer("w", torch.randn(4, 3, generator=g))
        self.register_buffer("b", torch.randn(4, generator=g))

    def forward(self, x, v_lif, v_if):
        s, v_lif = torch.ops.talon.lif(self.fc(x), v_lif, self.tau, self.r, self.v_leak, self.v_threshold)
        a, b = torch.ops.talon.channel_split(s, [2, 3], 1)
        sa, v_if = torch.ops.talon.if_(a * 2.0, v_if, self.if_r, self.if_threshold)
        y = torch.ops.talon.spiking_affine(b, self.w, self.b, 4, 12, "graded")
        return sa, y, v_lif, v_if


NAMES = dict(
    input_names=["x", state_input_name("lif"), state_input_name("if")],
    output_names=["spikes", "y", state_output_name("lif"), state_output_name("if")],
)


@pytest.fixture(scope="module")
def exported() -> tuple[_Net, onnx.ModelProto]:
    net = _Net().eval()
    args = (torch.randn(2, 6), torch.zeros(2, 5), torch.zeros(2, 2))
    dynamic = ({0: "batch"}, {0: "batch"}, {0: "batch"})
    return net, torch_ops.export(net, args, dynamic_shapes=dynamic, **NAMES)


def test_export_emits_talon_nodes_and_named_initializers(exported) -> None:
    _, model = exported
    onnx.checker.check_model(model, full_check=True)
    talon_ops = [n.op_type for n in model.graph.node if n.domain == "talon"]
    assert sorted(talon_ops) == ["ChannelSplit", "IF", "LIF", "SpikingAffine"]
    inits = {i.name for i in model.graph.initializer}
    assert {"fc.weight", "fc.bias", "tau", "r", "v_leak", "v_threshold", "if_r", "if_threshold", "w", "b"} <= inits
    affine = next(n for n in model.graph.node if n.op_type == "SpikingAffine")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in affine.attribute}
    assert attrs["weight_bits"] == 4 and attrs["accumulator_bits"] == 12 and attrs["spike_mode"] == b"graded"
    assert {f.name for f in model.functions} >= {"LIF", "IF", "SpikingAffine", "ChannelSplit"}


def test_exported_model_runs_equal_to_eager_over_steps(exported) -> None:
    net, model = exported
    ex = OrtExecutor(model, return_state=True)
    assert set(ex.state_nodes) == {"lif", "if"}
    rng = np.random.default_rng(1)
    state, v_lif, v_if = None, torch.zeros(3, 5), torch.zeros(3, 2)
    total = 0.0
    for _ in range(8):
        x = rng.standard_normal((3, 6)).astype(np.float32) * 2
        out, state = ex(x, state)
        with torch.no_grad():
            sa, y, v_lif, v_if = net(torch.from_numpy(x), v_lif, v_if)
        np.testing.assert_array_equal(out["spikes"], sa.numpy())
        np.testing.assert_allclose(out["y"], y.numpy(), atol=1e-5)
        np.testing.assert_allclose(state["lif"][0], v_lif.numpy(), atol=1e-6)
        np.testing.assert_allclose(state["if"][0], v_if.numpy(), atol=1e-6)
        total += float(sa.sum())
    assert total > 0  # the comparison covered spiking steps


def test_lif_op_equals_the_kernel_and_has_its_surrogate_gradient() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 3, generator=g, requires_grad=True)
    v = torch.rand(4, 3, generator=g)
    tau, r, vl, th = torch.full((3,), 3.0), torch.ones(3), torch.zeros(3), torch.full((3,), 0.2, requires_grad=True)
    s, vn = torch.ops.talon.lif(x, v, tau, r, vl, th)
    (s.sum() + vn.sum()).backward()
    x2, th2 = x.detach().clone().requires_grad_(), th.detach().clone().requires_grad_()
    beta, omb = nk.lif_coefficients(tau)
    s2, vn2 = nk.lif_step(x2, v, beta, omb, r, vl, th2)
    (s2.sum() + vn2.sum()).backward()
    assert torch.equal(s, s2) and torch.equal(vn, vn2)
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(th.grad, th2.grad)
    assert x.grad.abs().sum() > 0


def test_split_and_affine_ops_have_gradients() -> None:
    x = torch.randn(2, 5, 3, requires_grad=True)
    a, b = torch.ops.talon.channel_split(x, [2, 3], 1)
    (a.sum() * 2 + b.sum() * 3).backward()
    expected = torch.cat([torch.full((2, 2, 3), 2.0), torch.full((2, 3, 3), 3.0)], dim=1)
    torch.testing.assert_close(x.grad, expected)
    w, bias = torch.randn(4, 3, requires_grad=True), torch.randn(4, requires_grad=True)
    xin = torch.randn(5, 3, requires_grad=True)
    torch.ops.talon.spiking_affine(xin, w, bias, 8, 16, "binary").pow(2).sum().backward()
    w2, b2, x2 = (t.detach().clone().requires_grad_() for t in (w, bias, xin))
    torch.nn.functional.linear(x2, w2, b2).pow(2).sum().backward()
    for got, want in ((w.grad, w2.grad), (bias.grad, b2.grad), (xin.grad, x2.grad)):
        torch.testing.assert_close(got, want)


def test_opcheck_lif() -> None:
    args = (
        torch.randn(2, 3),
        torch.zeros(2, 3),
        torch.full((3,), 2.0),
        torch.ones(3),
        torch.zeros(3),
        torch.full((3,), 0.1),
    )
    torch.library.opcheck(torch.ops.talon.lif.default, args, test_utils=("test_schema", "test_faketensor"))


class _Cuba(torch.nn.Module):
    """A CubaLIF (two state items) from onnx_ops.torch_ops, through the same export helper."""

    def __init__(self) -> None:
        super().__init__()
        for name, value in dict(tau_syn=2.0, tau_mem=4.0, r=1.0, v_leak=0.0, v_threshold=0.4, w_in=1.5).items():
            self.register_buffer(name, torch.full((3,), value))

    def forward(self, x, v, i):
        return torch.ops.talon.cuba_lif(
            x, v, i, self.tau_syn, self.tau_mem, self.r, self.v_leak, self.v_threshold, self.w_in
        )


def test_two_item_state_follows_the_naming_convention() -> None:
    net = _Cuba().eval()
    names = dict(
        input_names=["x", state_input_name("cuba"), state_input_name("cuba", "i")],
        output_names=["s", state_output_name("cuba"), state_output_name("cuba", "i")],
    )
    z = torch.zeros(2, 3)
    args = (
        torch.zeros(2, 3),
        torch.zeros(2, 3),
        torch.zeros(2, 3),
    )  # distinct tensors: export merges one passed thrice
    ex = OrtExecutor(torch_ops.export(net, args, **names), return_state=True)
    assert ex.state_nodes == {"cuba": [("cuba.v_in", "cuba.v_out"), ("cuba.i_in", "cuba.i_out")]}
    state, v, i = None, z, z
    for x in torch.rand(6, 2, 3):
        out, state = ex(x.numpy(), state)
        s, v, i = net(x, v, i)
        np.testing.assert_array_equal(out, s.numpy())
        np.testing.assert_array_equal(state["cuba"][0], v.numpy())
        np.testing.assert_array_equal(state["cuba"][1], i.numpy())
