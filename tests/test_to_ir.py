"""bridge.to_ir (the tutorial's sections 1 and 3 are in test_tutorial_sections.py): exact round trips of torch models, neurons, custom_map."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from talon import bridge, ir


def _structure(graph):
    return [f"{name}: {type(node).__name__}" for name, node in graph.nodes.items()]


class Block(nn.Module):
    """Registered out of forward order; functional relu and x + y inside."""

    def __init__(self, c):
        super().__init__()
        self.bn = nn.BatchNorm2d(c)
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)) + x)


class MultiBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8 * 4 * 4, 5)
        self.right = nn.Conv2d(3, 4, 1)
        self.left = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Sigmoid())
        self.block = Block(8)

    def forward(self, x):
        y = torch.cat([self.left(x), self.right(x)], dim=1)
        y = self.block(y)
        y = F.max_pool2d(y, 2)
        return self.head(torch.flatten(y, 1))


def _randomise_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)


def test_multi_branch_residual_functional_nested_is_exact():
    torch.manual_seed(1)
    model = MultiBranch().eval()
    _randomise_bn(model)
    x = torch.randn(2, 3, 8, 8)
    graph = bridge.to_ir(model, x[:1])
    names = set(graph.nodes)
    assert {"left.0", "left.1", "right", "cat", "block.conv", "block.bn", "block.add", "block.relu", "max_pool2d",
            "flatten", "head"} <= names
    assert graph.predecessors("cat") == ["left.1", "right"]
    with torch.no_grad():
        diff = (bridge.ir_to_torch(graph)(x) - model(x)).abs().max().item()
    assert diff <= 1e-6


class SpikingNet(nn.Module):
    def __init__(self, neuron):
        super().__init__()
        self.fc1 = nn.Linear(6, 5)
        self.lif1 = neuron

    def forward(self, x):
        return self.lif1(self.fc1(x))[0]


@pytest.mark.parametrize("kind", ["LIF", "IF"])
def test_neuron_modules_export_to_neurons_with_identical_spikes(kind):
    torch.manual_seed(2)
    n = 5
    if kind == "LIF":
        neuron = bridge.LIFModule(tau=np.full(n, 3.0, np.float32), r=np.ones(n, np.float32),
                                  v_leak=np.zeros(n, np.float32), v_threshold=np.full(n, 0.4, np.float32))
    else:
        neuron = bridge.IFModule(r=np.ones(n, np.float32), v_threshold=np.full(n, 0.8, np.float32))
    model = SpikingNet(neuron).eval()
    x = torch.randn(1, 6)
    graph = bridge.to_ir(model, x)
    assert type(graph.nodes["lif1"]).__name__ == kind
    ex = bridge.ir_to_torch(graph, return_state=True)
    v, state = None, {}
    total = 0
    with torch.no_grad():
        for t in range(8):
            xt = torch.randn(1, 6)
            s_ref, v = model.lif1(model.fc1(xt), v)
            out, state = ex(xt, state)
            assert torch.equal(out, s_ref)
            total += int(s_ref.sum())
    assert total > 0


class Odd(nn.Module):
    """A user module TALON does not know; custom_map says it is a Tanh."""

    def forward(self, x):
        return torch.tanh(x) * 1.0


class WithCustom(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.odd = Odd()

    def forward(self, x):
        return self.odd(self.fc(x))


def test_custom_map_passes_modules_through_opaquely():
    model, x = WithCustom().eval(), torch.randn(1, 4)
    graph = bridge.to_ir(model, x, custom_map={Odd: lambda m: ir.Tanh(metadata={"from": type(m).__name__})})
    assert _structure(graph) == ["input: Input", "fc: Affine", "odd: Tanh", "output: Output"]
    assert graph.nodes["odd"].metadata == {"from": "Odd"}
    with torch.no_grad():
        assert torch.allclose(bridge.ir_to_torch(graph)(x), model(x), atol=1e-6)
    assert type(model.odd.forward).__name__ == "method"  # the module is restored after export


class LayerZoo1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.bn, self.ln = nn.Conv1d(4, 6, 3, padding=1), nn.BatchNorm1d(6), nn.LayerNorm(8)
        self.g, self.pr, self.e, self.lr, self.sm = nn.GELU(), nn.PReLU(6), nn.ELU(0.5), nn.LeakyReLU(0.1), nn.Softmax(-1)

    def forward(self, x):
        y = self.pr(self.g(self.ln(self.bn(self.c1(x)))))
        a, b = torch.split(y, [2, 4], dim=1)
        return self.sm(torch.cat([self.e(a), torch.sigmoid(self.lr(b)), torch.tanh(a)], 1))


class LayerZoo2d(nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.up, self.p = nn.Conv2d(3, 4, 3, padding=1), nn.Upsample(scale_factor=2), nn.AdaptiveAvgPool2d(1)
        self.ap, self.mp = nn.AvgPool2d(3, 2, 1, count_include_pad=False), nn.MaxPool2d(3, 2, ceil_mode=True)

    def forward(self, x):
        y = self.c(x)
        z = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        u = self.mp(self.ap(self.up(y) + z))
        return torch.cat([self.p(u).flatten(1), u.mean((2, 3))], 1)


@pytest.mark.parametrize("net,shape", [(LayerZoo1d, (2, 4, 8)), (LayerZoo2d, (2, 3, 8, 8))])
def test_layer_zoo_is_exact(net, shape):
    torch.manual_seed(4)
    model, x = net().eval(), torch.randn(*shape)
    graph = bridge.to_ir(model, x[:1])
    with torch.no_grad():
        assert (bridge.ir_to_torch(graph)(x) - model(x)).abs().max().item() <= 1e-6
