"""GraphExecutor's fast path for chains (Plan.run_chain): it must behave exactly like calling every module.

The chain calls a LIF/IF kernel directly once the neuron's forward has checked its input; these tests change
the neuron between calls, or replace its forward, and compare with a hand-written loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bridge_arrays import fresh_rng, rand  # noqa: F401  (fresh_rng: autouse fixture)
import neuron_reference as reference
from talon import bridge, ir


def lif_node(n: int, tau: float) -> ir.LIF:
    return ir.LIF(tau=np.full(n, tau, np.float32), r=np.ones(n, np.float32), v_leak=np.zeros(n, np.float32),
                  v_threshold=np.full(n, 0.5, np.float32))


def two_layer_chain() -> tuple[ir.Graph, list[torch.Tensor]]:
    """input(5) - fc1 - lif1(8, tau 3) - fc2 - lif2(3, tau 2) - output, and its weights (w1, b1, w2, b2)."""
    w1, b1, w2, b2 = rand(8, 5), rand(8), rand(3, 8), rand(3)
    nodes = {"input": ir.Input([5]), "fc1": ir.Affine(weight=w1, bias=b1), "lif1": lif_node(8, 3.0),
             "fc2": ir.Affine(weight=w2, bias=b2), "lif2": lif_node(3, 2.0), "output": ir.Output([3])}
    names = list(nodes)
    return ir.Graph(nodes, list(zip(names, names[1:]))), [torch.tensor(a) for a in (w1, b1, w2, b2)]


def hand_loop(weights: list[torch.Tensor], xs: torch.Tensor, taus1: list[float], gain1: float = 1.0):
    """The chain by hand: (spikes [T, batch, 3], lif1 and lif2 membranes after the last step); lif1 uses
    taus1[t] at step t and its input current is multiplied by gain1."""
    w1, b1, w2, b2 = weights
    v1, v2, outs = torch.zeros(xs.shape[1], 8), torch.zeros(xs.shape[1], 3), []
    for x, tau1 in zip(xs, taus1):
        s1, v1 = reference.lif(gain1 * F.linear(x, w1, b1), v1, tau=tau1, v_threshold=0.5)
        s2, v2 = reference.lif(F.linear(s1, w2, b2), v2, tau=2.0, v_threshold=0.5)
        outs.append(s2)
    return torch.stack(outs), v1, v2


def step_calls(ex: bridge.GraphExecutor, xs: torch.Tensor, between=None):
    """Like hand_loop, by one step call per timestep with the state carried; `between(t)` runs before step t."""
    state, outs = None, []
    for t, x in enumerate(xs):
        if between is not None:
            between(t)
        out, state = ex(x, state)
        outs.append(out)
    return torch.stack(outs), state["lif1"][0], state["lif2"][0]


def same(got: tuple, want: tuple) -> bool:
    return all(torch.equal(a, b) for a, b in zip(got, want))


@pytest.mark.parametrize("how", ["load_state_dict", "in place and refresh"])
def test_a_neuron_changed_between_calls_computes_with_its_new_parameters(how):
    graph, weights = two_layer_chain()
    ex = bridge.ir_to_torch(graph, return_state=True)
    xs = torch.tensor(np.abs(rand(5, 2, 5))) * 2
    lif1 = ex.module("lif1")

    def retune(t: int) -> None:
        if t != 3:
            return
        if how == "load_state_dict":
            lif1.load_state_dict({**lif1.state_dict(), "tau": torch.full((8,), 7.0)})
        else:
            with torch.no_grad():
                lif1.tau.fill_(7.0)
            lif1.refresh()

    want = hand_loop(weights, xs, [3.0, 3.0, 3.0, 7.0, 7.0])
    assert not same(want, hand_loop(weights, xs, [3.0] * 5))  # the change shows
    assert same(step_calls(ex, xs, retune), want)


def test_a_neuron_subclass_with_its_own_forward_is_called_not_bypassed():
    class DoubledInput(bridge.LIFModule):
        def forward(self, x, v=None):
            return super().forward(2 * x, v)

    graph, weights = two_layer_chain()
    node_map = {"lif1": lambda node: DoubledInput(node.tau, node.r, node.v_leak, node.v_threshold)}
    ex = bridge.ir_to_torch(graph, return_state=True, node_map=node_map)
    xs = torch.tensor(np.abs(rand(5, 2, 5))) * 2
    want = hand_loop(weights, xs, [3.0] * 5, gain1=2.0)
    assert not same(want, hand_loop(weights, xs, [3.0] * 5))
    assert same(step_calls(ex, xs), want)
    out, state = ex.run_sequence(xs)
    assert same((out, state["lif1"][0], state["lif2"][0]), want)


def test_a_moved_executor_computes_in_its_new_dtype_after_running():
    graph, weights = two_layer_chain()
    ex = bridge.ir_to_torch(graph, return_state=True)
    xs = torch.tensor(np.abs(rand(4, 2, 5))) * 2
    assert same(step_calls(ex, xs), hand_loop(weights, xs, [3.0] * 4))
    ex.double()
    got = step_calls(ex, xs.double())
    assert all(t.dtype == torch.float64 for t in got)
    torch.testing.assert_close(got, hand_loop([w.double() for w in weights], xs.double(), [3.0] * 4))
