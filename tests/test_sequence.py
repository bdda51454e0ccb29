"""run_sequence, layer by layer, against the step loop: every primitive on both executors, split sequences,
gradients, and modules replaced, hooked or overridden after the executor was built.

Spikes must be identical; other values may differ by float32 rounding only (a layer over T*batch rows may
sum in another order than over batch rows)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge_arrays import fresh_rng, rand  # noqa: F401  (fresh_rng: autouse fixture)
from converters import ir_to_onnx
from onnx_ops import OrtExecutor
from onnx_ops.neuron_kernels import if_scan, if_step, lif_coefficients, lif_scan, lif_step
from strategies import BUILDERS, input_shapes, node_for_shape
from talon import bridge, ir

ROUNDING = {"rtol": 1.3e-6, "atol": 1e-6}


def lif(n: int, tau: float = 3.0, threshold: float = 0.5) -> ir.LIF:
    return ir.LIF(tau=np.full(n, tau, np.float32), r=np.ones(n, np.float32), v_leak=np.zeros(n, np.float32),
                  v_threshold=np.full(n, threshold, np.float32))


def mlp() -> ir.Graph:
    nodes = {"input": ir.Input([5]), "fc1": ir.Affine(weight=rand(8, 5), bias=rand(8)), "lif1": lif(8),
             "fc2": ir.Affine(weight=rand(3, 8), bias=rand(3)), "lif2": lif(3, tau=2.0), "output": ir.Output([3])}
    names = list(nodes)
    return ir.Graph(nodes, list(zip(names, names[1:])))


def torch_steps(ex, xs: torch.Tensor):
    """T step calls with the state carried: (outputs stacked, final state)."""
    state, outs = {}, []
    for x in xs:
        out, state = ex(x, state)
        outs.append(out)
    if isinstance(outs[0], dict):
        return {k: torch.stack([o[k] for o in outs]) for k in outs[0]}, state
    return torch.stack(outs), state


def ort_steps(ex: OrtExecutor, xs: np.ndarray):
    state, outs = None, []
    for x in xs:
        out, state = ex(x, state)
        outs.append(out)
    return {k: np.stack([o[k] for o in outs]) for k in outs[0]}, state


def primitive_graph(node: ir.Node, shape: tuple) -> ir.Graph:
    """input -> node -> (values output) and node -> LIF -> (spikes output), so that every primitive's
    values and the spikes they cause are compared."""
    out = tuple(node.output_shapes([shape])[0])
    n = int(np.prod(out))
    spiking = ir.LIF(tau=np.full(out, 2.0, np.float32), r=np.full(out, 2.0, np.float32),
                     v_leak=np.zeros(out, np.float32), v_threshold=np.full(out, 0.25, np.float32)) if n else None
    nodes = {"input": ir.Input(list(shape)), "p": node, "values": ir.Output(list(out)), "lif": spiking,
             "spikes": ir.Output(list(out))}
    return ir.Graph(nodes, [("input", "p"), ("p", "values"), ("p", "lif"), ("lif", "spikes")])


@pytest.mark.parametrize("type_name", sorted(BUILDERS))
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_primitive_runs_the_same_as_a_sequence_as_step_by_step_on_both_executors(type_name, data):
    shape = data.draw(input_shapes(BUILDERS[type_name][0]))
    graph = primitive_graph(data.draw(node_for_shape(type_name, shape)), shape)
    xs = torch.tensor(rand(6, 2, *shape, scale=2.0))
    ex = bridge.ir_to_torch(graph, return_state=True)
    with torch.no_grad():
        want, want_state = torch_steps(ex, xs)
        got, state = ex.run_sequence(xs)
    assert torch.equal(got["spikes"], want["spikes"])
    torch.testing.assert_close(got["values"], want["values"], **ROUNDING)
    for name in want_state:
        torch.testing.assert_close(state[name], want_state[name], **ROUNDING)
    ort = OrtExecutor(ir_to_onnx(graph), return_state=True)
    ort_want, ort_want_state = ort_steps(ort, xs.numpy())
    ort_got, ort_state = ort.run_sequence(xs.numpy())
    assert np.array_equal(ort_got["spikes"], ort_want["spikes"])
    np.testing.assert_allclose(ort_got["values"], ort_want["values"], **ROUNDING)
    for name in ort_want_state:
        for a, b in zip(ort_state[name], ort_want_state[name]):
            np.testing.assert_allclose(a, b, **ROUNDING)


def test_the_onnxruntime_sequence_model_scans_only_the_neurons():
    ex = OrtExecutor(ir_to_onnx(mlp()))
    model = ex.sequence_model()
    onnx.checker.check_model(model)
    scans = [n for n in model.graph.node if n.op_type == "Scan"]
    assert [[b.op_type for b in s.attribute[0].g.node] for s in scans] == [["LIF"], ["LIF"]]
    assert sum(n.op_type == "Gemm" for n in model.graph.node) == 2  # over [T*batch, ...], outside the Scans


def test_onnxruntime_sequences_split_over_calls_equal_one_call():
    ex = OrtExecutor(ir_to_onnx(mlp()), return_state=True)
    xs = np.abs(rand(9, 2, 5)) * 2
    full, full_state = ex.run_sequence(xs)
    first, mid = ex.run_sequence(xs[:4])
    second, end = ex.run_sequence(xs[4:], mid)
    assert full.any() and np.array_equal(np.concatenate([first, second]), full)
    for name in full_state:
        np.testing.assert_allclose(end[name][0], full_state[name][0], **ROUNDING)


@pytest.mark.parametrize("subtract", [False, True])
@pytest.mark.parametrize("scan", ["lif", "if"])
def test_the_neuron_scans_equal_the_step_kernels_bit_for_bit_ties_nan_and_inf_included(scan, subtract):
    xs = torch.tensor(rand(7, 3, 4, scale=2.0))
    xs[2, 0, 0], xs[3, 1, 1], xs[1, 0, 2] = float("inf"), float("nan"), -float("inf")
    v0 = torch.tensor(rand(3, 4))
    v0[2] = 0.0
    thr = torch.full((4,), 0.5)
    if scan == "lif":  # tau 2, no leak: x = 1 from rest gives v = 0.5 = v_threshold exactly (batch row 2)
        params = (*lif_coefficients(torch.tensor([2.0, 3.0, 5.0, 9.0])), torch.ones(4), torch.zeros(4), thr)
        xs[:, 2] = 1.0
    else:  # r 1: x = 0.5 from rest gives v = 0.5 exactly
        params = (torch.tensor([1.0, 0.7, 1.3, 1.0]), thr)
        xs[:, 2] = 0.5
    step, run = (lif_step, lif_scan) if scan == "lif" else (if_step, if_scan)
    v, spikes = v0, []
    for x in xs:
        s, v = step(x, v, *params, subtract)
        spikes.append(s)
    v0_before = v0.clone()
    got_spikes, got_v = run(xs, v0, *params, subtract)
    assert torch.stack(spikes)[0, 2, 0] == 1  # the tie spikes
    assert torch.equal(got_spikes, torch.stack(spikes))
    assert torch.equal(got_v.isnan(), v.isnan()) and v.isnan().any()
    assert torch.equal(got_v.nan_to_num(), v.nan_to_num())
    assert torch.equal(v0, v0_before)  # the initial membrane is read, never written


def test_gradients_through_the_layer_by_layer_path_equal_the_step_loops():
    graph = mlp()
    ex = bridge.ir_to_torch(graph, return_state=True)
    xs = torch.tensor(np.abs(rand(6, 2, 5)) * 2)
    grads = []
    for run in ("steps", "sequence"):
        ex.zero_grad()
        x = xs.clone().requires_grad_(True)
        out = torch_steps(ex, x)[0] if run == "steps" else ex.run_sequence(x)[0]
        (out * torch.arange(1.0, 4.0)).sum().backward()
        grads.append((x.grad, ex.module("fc1").weight.grad.clone(), ex.module("fc2").bias.grad.clone()))
    assert grads[0][1].abs().sum() > 0
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, **ROUNDING)


def run_both(ex, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return torch_steps(ex, xs)[0], ex.run_sequence(xs)[0]


def test_a_module_replaced_in_node_modules_is_the_one_that_runs():
    graph = mlp()
    ex = bridge.ir_to_torch(graph, return_state=True)
    xs = torch.tensor(np.abs(rand(5, 2, 5)) * 2)
    w1, b1 = torch.tensor(rand(8, 5)), torch.tensor(rand(8))
    other = torch.nn.Linear(5, 8)
    with torch.no_grad():
        other.weight.copy_(w1)
        other.bias.copy_(b1)
    ex.node_modules["fc1"] = other
    want = bridge.ir_to_torch(ir.Graph({**graph.nodes, "fc1": ir.Affine(weight=w1.numpy(), bias=b1.numpy())},
                                       graph.edges), return_state=True)
    expected = torch_steps(want, xs)[0]
    assert not torch.equal(expected, torch_steps(bridge.ir_to_torch(graph, return_state=True), xs)[0])
    steps, seq = run_both(ex, xs)
    assert torch.equal(steps, expected) and torch.equal(seq, expected)


def test_forward_hooks_and_forward_overrides_are_honoured_by_steps_and_sequences():
    graph = mlp()
    ex = bridge.ir_to_torch(graph, return_state=True)
    xs = torch.tensor(np.abs(rand(5, 2, 5)) * 2)
    doubled = bridge.ir_to_torch(ir.Graph({**graph.nodes, "fc1": ir.Affine(
        weight=2 * graph.nodes["fc1"].weight, bias=2 * graph.nodes["fc1"].bias)}, graph.edges), return_state=True)
    expected = torch_steps(doubled, xs)[0]
    assert not torch.equal(expected, torch_steps(ex, xs)[0])
    handle = ex.module("fc1").register_forward_hook(lambda m, args, out: 2 * out)
    assert all(torch.equal(r, expected) for r in run_both(ex, xs))
    handle.remove()
    lif1 = ex.module("lif1")
    lif1.forward = lambda x, v=None: bridge.LIFModule.forward(lif1, 2 * x, v)  # r*x is linear in x
    assert all(torch.equal(r, expected) for r in run_both(ex, xs))
    del lif1.forward
    silenced = ex.module("lif2").register_forward_hook(lambda m, args, out: (0 * out[0], *out[1:]))
    assert all(torch.equal(r, torch.zeros_like(expected)) for r in run_both(ex, xs))
    silenced.remove()
    assert all(r.any() for r in run_both(ex, xs))


def test_a_stateful_module_without_sequence_support_runs_step_by_step_inside_the_sequence():
    class Counter(torch.nn.Module):
        """Outputs its input plus the number of timesteps seen before (state: that count)."""
        _is_stateful = True
        _state_size = 1

        def forward(self, x, count=None):
            count = torch.zeros_like(x) if count is None else count
            return x + count, count + 1

    graph = mlp()
    ex = bridge.ir_to_torch(graph, return_state=True, node_map={"lif2": Counter()})
    xs = torch.tensor(np.abs(rand(4, 2, 5)))
    steps, seq = run_both(ex, xs)
    torch.testing.assert_close(seq, steps, **ROUNDING)
    w2, b2 = (torch.tensor(graph.nodes["fc2"].weight), torch.tensor(graph.nodes["fc2"].bias))
    spikes1 = torch_steps(bridge.ir_to_torch(ir.Graph(
        {k: v for k, v in graph.nodes.items() if k not in ("fc2", "lif2", "output")} | {"output": ir.Output([8])},
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "output")]), return_state=True), xs)[0]
    expected = F.linear(spikes1, w2, b2) + torch.arange(4.0)[:, None, None]
    torch.testing.assert_close(seq, expected, **ROUNDING)


def test_cyclic_graphs_run_step_by_step_and_honour_replaced_modules():
    nodes = {"input": ir.Input([3]), "fc": ir.Affine(weight=rand(3, 3), bias=rand(3)), "lif": lif(3),
             "output": ir.Output([3])}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "output"), ("lif", "fc")]  # fc sums input and feedback
    graph = ir.Graph(nodes, edges, allow_cycles=True)
    with pytest.raises(ir.GraphError, match="CyclicGraphExecutor"):
        bridge.ir_to_torch(graph)
    ex = bridge.CyclicGraphExecutor.from_graph(graph, timesteps=4)
    x = torch.tensor(np.abs(rand(2, 3)))
    w, b = torch.tensor(nodes["fc"].weight), torch.tensor(nodes["fc"].bias)
    coeffs = (*lif_coefficients(torch.full((3,), 3.0)), torch.ones(3), torch.zeros(3), torch.full((3,), 0.5))
    s, v, want = torch.zeros(2, 3), torch.zeros(2, 3), []
    for _ in range(4):
        s, v = lif_step(F.linear(x + s, w, b), v, *coeffs)
        want.append(s)
    with torch.no_grad():
        assert torch.equal(torch.stack(ex(x)), torch.stack(want)) and torch.stack(want).any()
        ex.node_modules["fc"] = torch.nn.Identity()
        s, v, again = torch.zeros(2, 3), torch.zeros(2, 3), []
        for _ in range(4):
            s, v = lif_step(x + s, v, *coeffs)
            again.append(s)
        assert torch.equal(torch.stack(ex(x)), torch.stack(again))
