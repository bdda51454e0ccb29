"""A numpy simulation of NIR graphs from NIR's continuous-time definitions (the nir package's docstrings),
discretised with forward Euler and the chosen dt, in float64: the independent reference of the NIR tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

nir = pytest.importorskip("nir", reason="needs the optional 'nir' package")

MARGIN = 1e-4  # runs where the reference membrane comes this close to a threshold are not compared


class Reference:
    """Steps a NIR graph: a node reads its predecessors' outputs of this step when already computed, else
    of the previous step (zeros at first), which delays exactly the cycle-closing edges."""

    def __init__(self, graph, dt: float, v0: dict | None = None):
        self.g, self.dt = graph, dt
        self.order = self._order()
        self.out: dict[str, np.ndarray] = {}
        self.state: dict[str, dict] = {}
        self.v0 = v0 or {}
        self.margin = np.inf

    def _order(self) -> list[str]:
        """Topological order over the edges that do not close a cycle (depth-first from the Inputs)."""
        back, path, done = set(), [], set()

        def dfs(n):
            path.append(n)
            for s, d in self.g.edges:
                if s == n and d in path:
                    back.add((s, d))
                elif s == n and d not in done:
                    dfs(d)
            path.pop()
            done.add(n)

        inputs = [n for n, node in self.g.nodes.items() if isinstance(node, nir.Input)]
        for name in inputs:
            dfs(name)
        self._back = back
        order, pending = [], {n: sum(1 for e in self.g.edges if e[1] == n and e not in back) for n in self.g.nodes}
        ready = list(inputs)
        while ready:
            n = ready.pop(0)
            order.append(n)
            for s, d in self.g.edges:
                if s == n and (s, d) not in back:
                    pending[d] -= 1
                    if pending[d] == 0:
                        ready.append(d)
        return order

    def step(self, x: np.ndarray) -> np.ndarray:
        prev = dict(self.out)
        for name in self.order:
            node = self.g.nodes[name]
            if isinstance(node, nir.Input):
                self.out[name] = x
                continue
            ins = [self.out[s] if (s, name) not in self._back else prev.get(s) for s, d in self.g.edges if d == name]
            ins = [i for i in ins if i is not None]
            self.out[name] = self._node(name, node, sum(ins[1:], ins[0]))
        return next(self.out[n] for n, v in self.g.nodes.items() if isinstance(v, nir.Output))

    def _spike(self, name, s, v, thr, v_reset):
        self.margin = min(self.margin, float(np.min(np.abs(v - thr))))
        z = v > thr
        s["v"] = np.where(z, v_reset, v)
        return z.astype(np.float64)

    def _node(self, name, node, x):
        dt, s = self.dt, self.state.setdefault(name, {})
        v = s.get("v", np.broadcast_to(self.v0.get(name, 0.0), x.shape).astype(np.float64))
        if isinstance(node, nir.Output):
            return x
        if isinstance(node, nir.Affine):
            return x @ node.weight.T.astype(np.float64) + node.bias
        if isinstance(node, nir.Linear):
            return x @ node.weight.T.astype(np.float64)
        if isinstance(node, nir.Scale):
            return x * node.scale
        if isinstance(node, nir.Threshold):
            self.margin = min(self.margin, float(np.min(np.abs(x - node.threshold))))
            return (x > node.threshold).astype(np.float64)
        if isinstance(node, nir.Flatten):
            assert node.end_dim == -1, "the reference flattens to the end only"
            return x.reshape(*x.shape[: node.start_dim + 1], -1)
        if isinstance(node, (nir.Conv1d, nir.Conv2d)):
            conv = F.conv1d if isinstance(node, nir.Conv1d) else F.conv2d
            ints = lambda v: tuple(int(a) for a in np.atleast_1d(v))  # noqa: E731
            padding = node.padding if isinstance(node.padding, str) else ints(node.padding)
            return conv(torch.from_numpy(x), torch.from_numpy(node.weight.astype(np.float64)),
                        torch.from_numpy(node.bias.astype(np.float64)), stride=ints(node.stride), padding=padding,
                        dilation=ints(node.dilation), groups=int(node.groups)).numpy()
        if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            k, st_, p = (tuple(int(a) for a in np.atleast_1d(getattr(node, f))) for f in ("kernel_size", "stride", "padding"))
            pooled = F.avg_pool2d(torch.from_numpy(x), k, st_, p, count_include_pad=True).numpy()
            return pooled * (k[0] * k[1]) if isinstance(node, nir.SumPool2d) else pooled
        if isinstance(node, nir.LIF):
            v = v + dt / node.tau * (node.v_leak - v + node.r * x)
            return self._spike(name, s, v, node.v_threshold, node.v_reset)
        if isinstance(node, nir.IF):
            v = v + dt * node.r * x
            return self._spike(name, s, v, node.v_threshold, node.v_reset)
        if isinstance(node, nir.LI):
            s["v"] = v + dt / node.tau * (node.v_leak - v + node.r * x)
            return s["v"]
        if isinstance(node, nir.I):
            s["v"] = v + dt * node.r * x
            return s["v"]
        if isinstance(node, nir.CubaLIF):
            i = s.get("i", np.zeros_like(x)) + dt / node.tau_syn * (-s.get("i", np.zeros_like(x)) + node.w_in * x)
            s["i"] = i
            v = v + dt / node.tau_mem * (node.v_leak - v + node.r * i)
            return self._spike(name, s, v, node.v_threshold, node.v_reset)
        raise AssertionError(type(node))


def run_reference(graph, xs: np.ndarray, dt: float, v0=None) -> tuple[np.ndarray, float]:
    ref = Reference(graph, dt, v0)
    outs = np.stack([ref.step(x.astype(np.float64)) for x in xs])
    return outs, ref.margin
