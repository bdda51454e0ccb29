"""Convert an ordinary ONNX model (exported from PyTorch) to TALON IR and check it on three runtimes.

Steps: export a small convolutional network to ONNX; import it with converters.onnx_to_ir; save it as
.t1c; run the original ONNX file in onnxruntime, the IR in torch, and the IR (written back to ONNX) in
onnxruntime, and compare; then a spiking import, and the error listing every unsupported operator.
Files go to models/ under the current folder.
"""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from converters import UnsupportedOperatorError, convert, ir_to_onnx, onnx_to_ir
from onnx_ops import OrtExecutor
from talon import bridge, ir


class ConvNet(nn.Module):
    """A conventional CNN: conv, batch norm, ReLU, pooling, flatten, two linear layers."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc1 = nn.Linear(4 * 4 * 4, 16)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(self.flat(self.pool(self.relu(self.bn(self.conv(x))))))))


class WithCosine(nn.Module):
    """A model using operations TALON IR has no primitive for."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return torch.sin(self.fc(torch.cos(x)))


def main() -> None:
    torch.manual_seed(0)
    Path("models").mkdir(exist_ok=True)
    model = ConvNet().eval()
    sample = torch.randn(2, 1, 8, 8)
    # optimize=False keeps BatchNormalization as its own node (the exporter's optimizer folds it into the Conv)
    batch = torch.export.Dim("batch")
    torch.onnx.export(model, (sample,), "models/convnet.onnx", dynamo=True, dynamic_shapes=({0: batch},),
                      optimize=False, verbose=False)

    graph = onnx_to_ir("models/convnet.onnx")
    print(graph.summary())
    ir.write("models/convnet.t1c", graph)

    x = np.random.default_rng(1).standard_normal((5, 1, 8, 8)).astype(np.float32)
    session = ort.InferenceSession("models/convnet.onnx", providers=["CPUExecutionProvider"])
    original = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        on_torch = bridge.ir_to_torch(ir.read("models/convnet.t1c"))(torch.from_numpy(x)).numpy()
        reference = model(torch.from_numpy(x)).numpy()
    on_ort = OrtExecutor(ir_to_onnx(graph))(x)
    print(f"IR on torch       vs original ONNX on onnxruntime: max |diff| {np.abs(on_torch - original).max():.2e}")
    print(f"IR on onnxruntime vs original ONNX on onnxruntime: max |diff| {np.abs(on_ort - original).max():.2e}")
    print(f"IR on torch       vs the PyTorch model:            max |diff| {np.abs(on_torch - reference).max():.2e}")

    spiking = convert("models/convnet.onnx", "models/convnet_spiking.t1c", spiking=True, weight_bits=8,
                      accumulator_bits=16)
    kinds = sorted({type(node).__name__ for node in spiking.nodes.values()})
    print(f"spiking import: {kinds}")

    torch.onnx.export(WithCosine().eval(), (torch.randn(1, 4),), "models/cosine.onnx", dynamo=True, verbose=False)
    try:
        onnx_to_ir("models/cosine.onnx")
    except UnsupportedOperatorError as error:
        print(f"refused, {len(error.nodes)} unsupported nodes: {[node.op_type for node in error.nodes]}")


if __name__ == "__main__":
    main()
