"""Quick start (`make demo`): convert the bundled ONNX spiking network to TALON IR and run it on both backends.

1. converts examples/models/conv_snn.onnx to models/conv_snn.t1c (under the current folder) and reads it back;
2. runs T timesteps, with state, in torch (bridge.ir_to_torch) and in onnxruntime (converters.ir_to_onnx +
   onnx_ops.OrtExecutor), and the original ONNX file in onnxruntime;
3. prints how the runs agree: largest output difference and the share of identical spikes.
Exits with status 1 if they disagree.
"""

import sys
from pathlib import Path

import numpy as np
import torch

from converters import convert, ir_to_onnx
from onnx_ops import OrtExecutor
from talon import bridge, ir

MODEL = Path(__file__).resolve().parent / "models" / "conv_snn.onnx"
TARGET = Path("models") / "conv_snn.t1c"
STEPS, BATCH = 20, 4


def agreement(name: str, a: np.ndarray, b: np.ndarray) -> bool:
    """Print the largest difference and the spike agreement of two [T, batch, ...] spike trains."""
    diff = float(np.abs(a - b).max())
    same = float(np.mean(a == b))
    print(f"{name} over {STEPS} timesteps, batch {BATCH}: max |diff| {diff:.3e}, spike agreement {same:.2%}")
    return diff == 0.0


def main() -> int:
    source = MODEL.relative_to(Path.cwd()) if MODEL.is_relative_to(Path.cwd()) else MODEL
    converted = convert(MODEL, TARGET)
    graph = ir.read(TARGET)
    assert graph.equals(converted), graph.diff(converted)
    print(f"converted {source} -> {TARGET}: {len(graph.nodes)} nodes, {graph.num_params():,} parameters, "
          f"{TARGET.stat().st_size:,} bytes")
    print(graph.summary())

    shape = tuple(graph.nodes[graph.inputs[0]].shape)
    xs = np.random.default_rng(0).random((STEPS, BATCH, *shape), dtype=np.float32)  # pixel intensities
    with torch.no_grad():
        on_torch, torch_state = bridge.ir_to_torch(graph, return_state=True).run_sequence(torch.from_numpy(xs))
    on_torch = on_torch.numpy()
    on_ort, ort_state = OrtExecutor(ir_to_onnx(graph), return_state=True).run_sequence(xs)
    original, _ = OrtExecutor(MODEL, return_state=True).run_sequence(xs)

    rates = on_torch.mean(axis=(0, 1))
    print(f"output spike rate per class: {np.array2string(rates, precision=2)}")
    ok = agreement("torch vs onnxruntime", on_torch, on_ort)
    ok &= agreement("original .onnx (onnxruntime) vs converted .t1c (torch)", original, on_torch)
    for layer, (membrane,) in torch_state.items():
        gap = float(np.abs(membrane.numpy() - ort_state[layer][0]).max())
        print(f"final membrane of {layer}: max |diff| {gap:.3e}")
    print("next: talon inspect models/conv_snn.t1c  |  talon run models/conv_snn.t1c --steps 50 --raster raster.png")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
