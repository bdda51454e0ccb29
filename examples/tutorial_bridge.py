"""The tutorial "Bridge: Export & Import", every section as written, in one runnable script.

Run it from any folder: section 6 writes models/snn_bridge_demo.t1c under the current folder.
"""

import numpy as np
import torch
import torch.nn as nn

from talon import bridge, ir

print("== 1. Standard Export ==")


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
graph = bridge.to_ir(model, sample)
print(f"Exported TALON IR graph:")
print(f" Nodes: {len(graph.nodes)}")
print(f" Edges: {len(graph.edges)}")
for name, node in graph.nodes.items():
    print(f" {name}: {type(node).__name__}")

print("== 2. Round-Trip Verification ==")
executor = bridge.ir_to_torch(graph)
with torch.no_grad():
    orig = model(sample)
    exec_out = executor(sample)
diff = (orig - exec_out).abs().max().item()
print(f"Max difference: {diff:.2e}")
print(f"Equivalent: {diff < 1e-5}")

print("== 3. Spiking-Aware Export ==")
graph_spiking = bridge.to_ir(
    model, sample,
    spiking=True,
    weight_bits=8,
    accumulator_bits=16,
)
for name, node in graph_spiking.nodes.items():
    print(f" {name}: {type(node).__name__}")

print("== 4. Stateful LIF Execution ==")
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

print("== 5. CyclicGraphExecutor ==")
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

print("== 6. Serialization Round-Trip ==")
ir.write("models/snn_bridge_demo.t1c", graph)
loaded = ir.read("models/snn_bridge_demo.t1c")
exec_loaded = bridge.ir_to_torch(loaded)
with torch.no_grad():
    out_loaded = exec_loaded(sample)
diff = (exec_out - out_loaded).abs().max().item()
print(f"Serialization round-trip: max diff = {diff:.2e}")

print("== Multi-Output Routing: ChannelSplit and Concat ==")
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
