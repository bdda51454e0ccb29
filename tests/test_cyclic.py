"""CyclicGraphExecutor against hand-written recurrent loops; state carrying; IR graphs; bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from torch import nn

from talon import bridge, ir
from talon.bridge.errors import InputError, StateError
from talon.ir.errors import GraphError

from strategies import graphs

EDGES = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "output"), ("lif1", "fc_fb"), ("fc_fb", "fc1")]


def lif(n: int, tau: float = 2.0, thr: float = 0.3) -> bridge.LIFModule:
    return bridge.LIFModule(tau=np.full(n, tau, np.float32), r=np.ones(n, np.float32),
                            v_leak=np.zeros(n, np.float32), v_threshold=np.full(n, thr, np.float32))


def recurrent(seed: int = 0) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    return {"fc1": nn.Linear(6, 5), "lif1": lif(5), "fc_fb": nn.Linear(5, 6)}


def hand_loop(m: dict, x: torch.Tensor, steps: int, v=None, fb=None):
    """fc1 gets the external input PLUS the feedback of the previous step (nothing at the first)."""
    outs = []
    for _ in range(steps):
        s, v = m["lif1"](m["fc1"](x if fb is None else x + fb), v)
        fb = m["fc_fb"](s)
        outs.append(s)
    return outs, v, fb


def test_matches_a_hand_written_recurrent_loop_with_feedback_added():
    """Established defect: the feedback replaced the external input after the first step."""
    m = recurrent()
    ex = bridge.CyclicGraphExecutor(modules=m, edges=EDGES, timesteps=6, output_nodes=["lif1"], return_state=True)
    x = torch.rand(3, 6)
    with torch.no_grad():
        outs, state = ex(x, {})
        want, v, _ = hand_loop(m, x, 6)
        replaced, _, _ = _replace_loop(m, x, 6)
    assert len(outs) == 6 and all(torch.equal(a, b) for a, b in zip(outs, want))
    assert torch.stack(want).any() and not all(torch.equal(a, b) for a, b in zip(want, replaced))
    assert list(state) == ["lif1"] and torch.equal(state["lif1"][0], v)


def _replace_loop(m, x, steps):
    outs, v, fb = [], None, None
    for _ in range(steps):
        s, v = m["lif1"](m["fc1"](x if fb is None else fb), v)
        fb = m["fc_fb"](s)
        outs.append(s)
    return outs, v, fb


def test_two_calls_of_three_steps_equal_six_steps():
    m = recurrent(1)
    x = torch.rand(2, 6)
    six = bridge.CyclicGraphExecutor(modules=m, edges=EDGES, timesteps=6, output_nodes=["lif1"], return_state=True)
    three = bridge.CyclicGraphExecutor(modules=m, edges=EDGES, timesteps=3, output_nodes=["lif1"], return_state=True)
    with torch.no_grad():
        all_six, end6 = six(x)
        a, mid = three(x, {})
        b, end3 = three(x, mid)
    assert isinstance(mid, bridge.CyclicState) and set(mid.feedback) == {("fc_fb", "fc1")}
    assert all(torch.equal(p, q) for p, q in zip(a + b, all_six))
    assert torch.equal(end3["lif1"][0], end6["lif1"][0])
    assert torch.equal(end3.feedback[("fc_fb", "fc1")], end6.feedback[("fc_fb", "fc1")])


def test_plain_state_dict_restarts_feedback_from_zero():
    m = recurrent(2)
    ex = bridge.CyclicGraphExecutor(modules=m, edges=EDGES, timesteps=3, output_nodes=["lif1"], return_state=True)
    x = torch.rand(2, 6)
    with torch.no_grad():
        _, mid = ex(x)
        outs, _ = ex(x, dict(mid))
        want, _, _ = hand_loop(m, x, 3, v=mid["lif1"][0])
    assert all(torch.equal(p, q) for p, q in zip(outs, want))


def test_several_output_nodes_give_a_dict_per_step_and_default_outputs_are_sinks():
    m = recurrent(3)
    x = torch.rand(1, 6)
    ex = bridge.CyclicGraphExecutor(modules=m, edges=EDGES, timesteps=2, output_nodes=["lif1", "fc_fb"])
    outs = ex(x)
    assert [set(o) for o in outs] == [{"lif1", "fc_fb"}] * 2
    default = bridge.CyclicGraphExecutor(modules=m, edges=EDGES, timesteps=2)
    assert default.output_nodes == ["output"] and torch.equal(default(x)[1], outs[1]["lif1"])


def test_from_graph_runs_an_ir_graph_with_cycles():
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    nodes = {"input": ir.Input([3]), "fc1": ir.Affine(weight=w1), "lif1": ir.LIF(
        tau=np.full(4, 2.0, np.float32), r=np.ones(4, np.float32), v_leak=np.zeros(4, np.float32),
        v_threshold=np.full(4, 0.3, np.float32)), "fc_fb": ir.Affine(weight=w2), "output": ir.Output([4])}
    graph = ir.Graph(nodes, EDGES, allow_cycles=True)
    ex = bridge.CyclicGraphExecutor.from_graph(graph, timesteps=4, return_state=True)
    assert ex.output_nodes == ["output"] and ex.feedback_edges == [("fc_fb", "fc1")]
    m = {n: ex.module(n) for n in ("fc1", "lif1", "fc_fb")}
    x = torch.rand(2, 3)
    with torch.no_grad():
        outs, _ = ex(x)
        want, _, _ = hand_loop(m, x, 4)
    assert all(torch.equal(a, b) for a, b in zip(outs, want)) and torch.stack(want).any()


def test_from_graph_checks_input_shapes():
    nodes = {"input": ir.Input([3]), "a": ir.ReLU(), "b": ir.Tanh(), "output": ir.Output([3])}
    graph = ir.Graph(nodes, [("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")], allow_cycles=True)
    ex = bridge.CyclicGraphExecutor.from_graph(graph, timesteps=2)
    with pytest.raises(InputError, match=r"Input node 'input' expects \[batch, 3\], got \(2, 4\)"):
        ex(torch.ones(2, 4))
    x = torch.rand(2, 3)
    assert torch.equal(ex(x.double())[1], torch.tanh(torch.relu(x + torch.tanh(torch.relu(x)))))


def test_channel_split_and_several_inputs_in_a_cyclic_graph():
    edges = [("a", "split"), ("split", "l"), ("split", "r"), ("l", "sum"), ("r", "sum"), ("b", "sum"),
             ("sum", "out"), ("sum", "fb"), ("fb", "sum")]
    m = {"split": bridge.ChannelSplitModule((2, 2)), "l": nn.Tanh(), "r": nn.Sigmoid(), "sum": nn.Identity(),
         "fb": nn.ReLU()}
    ex = bridge.CyclicGraphExecutor(modules=m, edges=edges, timesteps=3, output_nodes=["out"])
    a, b = torch.randn(2, 4), torch.randn(2, 2)
    outs = ex({"a": a, "b": b})
    want, fb = [], None
    for _ in range(3):
        s = torch.tanh(a[:, :2]) + torch.sigmoid(a[:, 2:]) + b + (0 if fb is None else fb)
        fb = torch.relu(s)
        want.append(s)
    assert all(torch.allclose(p, q) for p, q in zip(outs, want))


# -- errors ----------------------------------------------------------------------------------------------
def test_wrong_inputs_are_refused():
    ex = bridge.CyclicGraphExecutor(modules=recurrent(), edges=EDGES, timesteps=2)
    with pytest.raises(InputError, match=r"\['input'\]"):
        ex({"x": torch.ones(1, 6)})


def test_bad_state_is_refused():
    ex = bridge.CyclicGraphExecutor(modules=recurrent(), edges=EDGES, timesteps=2, return_state=True)
    with pytest.raises(StateError, match="'fc1'"):
        ex(torch.ones(2, 6), {"fc1": torch.zeros(2, 5)})
    for bad in (torch.zeros(1, 5), torch.zeros(3, 5), torch.zeros(5)):
        with pytest.raises(StateError, match=r"'lif1'.*batch is 2"):
            ex(torch.ones(2, 6), {"lif1": (bad,)})
    with pytest.raises(StateError, match=r"does not fit.*'lif1'.*\(2, 4\)"):
        ex(torch.ones(2, 6), {"lif1": (torch.zeros(2, 4),)})
    with pytest.raises(StateError, match=r"'lif1'.*\(2, 1\); expected \(2, 5\)"):
        ex(torch.ones(2, 6), {"lif1": (torch.zeros(2, 1),)})
    _, state = ex(torch.ones(1, 6))
    with pytest.raises(StateError, match="feedback.*batch is 2"):
        ex(torch.ones(2, 6), bridge.CyclicState({}, {("fc_fb", "fc1"): state.feedback[("fc_fb", "fc1")]}))
    with pytest.raises(StateError, match=r"feedback.*\(1, 1\); expected \(1, 6\)"):
        ex(torch.ones(1, 6), bridge.CyclicState({}, {("fc_fb", "fc1"): torch.zeros(1, 1)}))
    with pytest.raises(StateError, match=r"does not fit.*feedback.*\(1, 7\)"):
        ex(torch.ones(1, 6), bridge.CyclicState({}, {("fc_fb", "fc1"): torch.zeros(1, 7)}))


def test_graph_errors_are_clear():
    with pytest.raises(GraphError, match="merge node 'cat'"):
        bridge.CyclicGraphExecutor(modules={"a": nn.ReLU(), "cat": bridge.ConcatModule(1)},
                                   edges=[("in", "cat"), ("cat", "a"), ("a", "cat"), ("a", "out")])
    with pytest.raises(GraphError, match=r"\['x', 'y'\].*not reachable"):
        bridge.CyclicGraphExecutor(modules={"a": nn.ReLU(), "x": nn.ReLU(), "y": nn.ReLU()},
                                   edges=[("in", "a"), ("a", "out"), ("x", "y"), ("y", "x")])
    with pytest.raises(GraphError, match="output_nodes"):
        bridge.CyclicGraphExecutor(modules=recurrent(), edges=EDGES, output_nodes=["nope"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graphs(cycles=True).filter(lambda g: g.is_cyclic))
def test_any_graph_split_over_calls_equals_one_call(graph):
    six = bridge.CyclicGraphExecutor.from_graph(graph, timesteps=6, return_state=True)
    two = bridge.CyclicGraphExecutor.from_graph(graph, timesteps=2, return_state=True)
    two.load_state_dict(six.state_dict())
    shapes = graph.infer_shapes()
    gen = torch.Generator().manual_seed(0)
    xs = {n: torch.rand(2, *shapes[n], generator=gen) for n in graph.inputs}
    x = xs if len(xs) > 1 else next(iter(xs.values()))
    with torch.no_grad():
        want, end = six(x)
        got, state = [], None
        for _ in range(3):
            outs, state = two(x, state)
            got += outs
    flat = (lambda o: o) if isinstance(want[0], dict) else (lambda o: {"": o})
    assert all(torch.equal(flat(a)[k], flat(b)[k]) for a, b in zip(got, want) for k in flat(a))
    assert set(end) == set(state) and all(torch.equal(end[k][0], state[k][0]) for k in end)
