"""Writes the bundled example model examples/models/conv_snn.onnx (run once; the file is committed).

Usage: python examples/make_example_model.py [OUTPUT.onnx]   (the default is the bundled file's path)

A small convolutional spiking network in PyTorch: Conv2d(1->8, 3x3) -> LIF -> MaxPool2d(2) -> Flatten ->
Linear(288->10) -> LIF, on 12x12 single-channel inputs. It is exported with the talon ONNX domain
(onnx_ops.torch_ops.export): each LIF becomes a talon.LIF node, and each neuron's membrane is a graph
input `<layer>.v_in` and output `<layer>.v_out`, the convention onnxruntime and the importer understand.
"""

import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from onnx_ops import state_input_name, state_output_name
from onnx_ops.torch_ops import export
from talon import bridge

BUNDLED = Path(__file__).resolve().parent / "models" / "conv_snn.onnx"
SIDE, CHANNELS, CLASSES = 12, 8, 10


def lif(shape: tuple[int, ...], tau: float, threshold: float) -> bridge.LIFModule:
    """A LIF layer with one set of parameters per neuron."""
    return bridge.LIFModule(tau=np.full(shape, tau, np.float32), r=np.ones(shape, np.float32),
                            v_leak=np.zeros(shape, np.float32), v_threshold=np.full(shape, threshold, np.float32))


class ConvSNN(nn.Module):
    """One timestep of the network: (input, membranes) -> (output spikes, next membranes)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, CHANNELS, 3, padding=1)
        self.lif1 = lif((CHANNELS, SIDE, SIDE), tau=4.0, threshold=0.3)
        self.pool = nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(CHANNELS * (SIDE // 2) ** 2, CLASSES)
        self.lif2 = lif((CLASSES,), tau=5.0, threshold=0.3)
        with torch.no_grad():  # larger than PyTorch's default init, so that both layers spike often
            self.conv.weight *= 3.0
            self.fc.weight *= 6.0

    def forward(self, x, v1, v2):
        s1, v1 = self.lif1(self.conv(x), v1)
        s2, v2 = self.lif2(self.fc(self.flat(self.pool(s1))), v2)
        return s2, v1, v2


def main(out: Path) -> None:
    torch.manual_seed(0)
    model = ConvSNN().eval()
    batch = torch.export.Dim("batch")
    args = (torch.rand(2, 1, SIDE, SIDE), torch.zeros(2, CHANNELS, SIDE, SIDE), torch.zeros(2, CLASSES))
    layers = ["lif1", "lif2"]
    proto = export(
        model, args,
        input_names=["input", *map(state_input_name, layers)],
        output_names=["output", *map(state_output_name, layers)],
        dynamic_shapes=({0: batch}, {0: batch}, {0: batch}),
    )
    onnx.checker.check_model(proto)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, out)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else BUNDLED)
