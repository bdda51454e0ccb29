"""The bridge tutorial (../shared/seeds/000_69b91a4b683f54b1.txt) run as written, from an empty folder.

Sections 4, 5 and "Multi-Output Routing" are the tutorial's code verbatim (indentation restored); sections
2 and 6 run on a graph built by hand from the model's weights until bridge.to_ir replaces it.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn

from talon import bridge, ir

SECTION_4 = '''
import numpy as np
nodes = {
    "input": ir.Input(np.array([128])),
    "fc": ir.Affine(
        weight=np.random.randn(64, 128).astype(np.float32) * 0.05,
        bias=np.zeros(64, dtype=np.float32),
    ),
    "lif": ir.LIF(
        tau=np.ones(64, dtype=np.float32) * 5.0,
        r=np.ones(64, dtype=np.float32),
        v_leak=np.zeros(64, dtype=np.float32),
        v_threshold=np.ones(64, dtype=np.float32) * 0.5,
    ),
    "output": ir.Output(np.array([64])),
}
edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
lif_graph = ir.Graph(nodes=nodes, edges=edges)
executor = bridge.ir_to_torch(lif_graph, return_state=True)
x = torch.randn(1, 128) * 0.3
state = {}
for t in range(5):
    out, state = executor(x, state)
    spike_count = (out > 0).sum().item()
    print(f" t={t}: spikes={spike_count}/64, state keys={list(state.keys())}")
'''

SECTION_5 = '''
modules = {
    "fc1": nn.Linear(64, 32),
    "lif1": bridge.LIFModule(
        tau=np.ones(32, dtype=np.float32) * 10.0,
        r=np.ones(32, dtype=np.float32),
        v_leak=np.zeros(32, dtype=np.float32),
        v_threshold=np.ones(32, dtype=np.float32),
    ),
    "fc_fb": nn.Linear(32, 64),
}
edges = [
    ("input", "fc1"),
    ("fc1", "lif1"),
    ("lif1", "output"),
    ("lif1", "fc_fb"),
    ("fc_fb", "fc1"),  # feedback connection
]
exec_cyclic = bridge.CyclicGraphExecutor(
    modules=modules,
    edges=edges,
    timesteps=3,
    output_nodes=["lif1"],
    return_state=True,
)
x = torch.randn(1, 64) * 0.1
outputs, state = exec_cyclic(x, {})
print(f"Timestep outputs: {len(outputs)} tensors")
for t, out in enumerate(outputs):
    print(f" t={t}: shape={out.shape}, spike count={(out > 0).sum().item()}")
print(f"State keys: {list(state.keys())}")
'''

SECTION_ROUTING = '''
import numpy as np, torch
from talon import ir, bridge
nodes = {
    "input": ir.Input(np.array([32])),
    "split": ir.ChannelSplit(split_sections=(16, 16)),
    "branch0": ir.Affine(weight=np.eye(16, dtype=np.float32), bias=np.zeros(16, dtype=np.float32)),
    "branch1": ir.Affine(weight=np.eye(16, dtype=np.float32), bias=np.zeros(16, dtype=np.float32)),
    "concat": ir.Concat(dim=1),
    "output": ir.Output(np.array([32])),
}
edges = [
    ("input", "split"),
    ("split", "branch0"),
    ("split", "branch1"),
    ("branch0", "concat"),
    ("branch1", "concat"),
    ("concat", "output"),
]
graph = ir.Graph(nodes=nodes, edges=edges)
executor = bridge.ir_to_torch(graph)
x = torch.randn(1, 32)
with torch.no_grad():
    y = executor(x)
print(y.shape)  # torch.Size([1, 32])
'''

SECTION_1_MODEL = '''
import torch
import torch.nn as nn
from talon import bridge, ir
class SimpleSNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)
    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))
model = SimpleSNN()
sample = torch.randn(1, 784)
'''

HAND_BUILT_GRAPH = '''
def w(t):
    return t.detach().numpy()
graph = ir.Graph(
    nodes={"input": ir.Input([784]), "fc1": ir.Affine(weight=w(model.fc1.weight), bias=w(model.fc1.bias)),
           "relu": ir.ReLU(), "fc2": ir.Affine(weight=w(model.fc2.weight), bias=w(model.fc2.bias)),
           "output": ir.Output([10])},
    edges=[("input", "fc1"), ("fc1", "relu"), ("relu", "fc2"), ("fc2", "output")],
)
'''

SECTION_2 = '''
executor = bridge.ir_to_torch(graph)
with torch.no_grad():
    orig = model(sample)
    exec_out = executor(sample)
diff = (orig - exec_out).abs().max().item()
print(f"Max difference: {diff:.2e}")
print(f"Equivalent: {diff < 1e-5}")
'''

SECTION_6 = '''
ir.write("models/snn_bridge_demo.t1c", graph)
loaded = ir.read("models/snn_bridge_demo.t1c")
exec_loaded = bridge.ir_to_torch(loaded)
with torch.no_grad():
    out_loaded = exec_loaded(sample)
diff = (exec_out - out_loaded).abs().max().item()
print(f"Serialization round-trip: max diff = {diff:.2e}")
'''


@pytest.fixture
def run_code(tmp_path, monkeypatch, capsys):
    """Runs tutorial code in an empty folder with the tutorial's imports; returns what it printed."""
    monkeypatch.chdir(tmp_path)
    namespace = {"torch": torch, "nn": nn, "np": np, "ir": ir, "bridge": bridge}

    def run(*sources: str) -> list[str]:
        for source in sources:
            exec(compile(textwrap.dedent(source), "<tutorial>", "exec"), namespace)
        return capsys.readouterr().out.splitlines()

    return run


def test_section_4_stateful_lif_execution(run_code):
    lines = run_code(SECTION_4)
    assert len(lines) == 5
    for t, line in enumerate(lines):
        assert re.fullmatch(rf" t={t}: spikes=\d+/64, state keys=\['lif'\]", line), line


def test_section_5_cyclic_graph_executor(run_code):
    lines = run_code(SECTION_5)
    assert lines[0] == "Timestep outputs: 3 tensors"
    for t, line in enumerate(lines[1:4]):
        assert re.fullmatch(rf" t={t}: shape=torch.Size\(\[1, 32\]\), spike count=\d+", line), line
    assert lines[4:] == ["State keys: ['lif1']"]


def test_section_multi_output_routing(run_code):
    assert run_code(SECTION_ROUTING) == ["torch.Size([1, 32])"]


def test_sections_2_and_6_round_trips_on_a_hand_built_graph(run_code):
    assert run_code(SECTION_1_MODEL, HAND_BUILT_GRAPH, SECTION_2) == ["Max difference: 0.00e+00", "Equivalent: True"]
    assert run_code(SECTION_6) == ["Serialization round-trip: max diff = 0.00e+00"]
