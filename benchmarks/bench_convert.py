"""Conversion speed, measured side by side in one run.

1. bridge.to_ir against torch.onnx.export (dynamo) alone on the same model (target: ratio <= 1.15).
2. onnx_to_ir + ir.write on a ResNet-50-sized model (~25 M parameters; target: < 3 s).
"""

from __future__ import annotations

import gc
import io
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import onnx
import torch
import torch.nn as nn

from converters import onnx_to_ir
from talon import bridge, ir


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * 4
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNet50(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        layers, cin = [], 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(blocks):
                layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(16 * 8 * 8, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.max_pool2d(torch.relu(self.conv2(x)) + x, 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


def _timed(call) -> float:
    """Seconds one call takes, after a full garbage collection: the exporter leaves garbage whose
    collection otherwise lands in every other call (+50%), favouring whichever call runs second."""
    gc.collect()
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def bench_to_ir(rounds: int = 9) -> None:
    model, x = SmallCNN().eval(), torch.randn(1, 3, 16, 16)
    bridge.to_ir(model, x)
    torch.onnx.export(model, (x,), dynamo=True, verbose=False)  # warm both paths
    t_export, t_to_ir = [], []
    for _ in range(rounds):  # interleaved
        t_export.append(_timed(lambda: torch.onnx.export(model, (x,), dynamo=True, verbose=False)))
        t_to_ir.append(_timed(lambda: bridge.to_ir(model, x)))
    e, t = statistics.median(t_export), statistics.median(t_to_ir)
    proto = torch.onnx.export(model, (x,), dynamo=True, optimize=False, verbose=False).model_proto
    t0 = time.perf_counter()
    for _ in range(rounds):
        onnx_to_ir(proto)
    convert = (time.perf_counter() - t0) / rounds
    print(f"to_ir {t * 1e3:.1f} ms vs torch.onnx.export {e * 1e3:.1f} ms (medians of {rounds}): ratio {t / e:.3f}, "
          f"best-of ratio {min(t_to_ir) / min(t_export):.3f} (target <= 1.15); onnx_to_ir alone {convert * 1e3:.1f} ms")


def bench_resnet50() -> None:
    torch.manual_seed(0)
    model = ResNet50().eval()
    params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "resnet50.onnx", Path(tmp) / "resnet50.t1c"
        buffer = io.BytesIO()
        torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), buffer, dynamo=False, opset_version=13,
                          do_constant_folding=False)
        src.write_bytes(buffer.getvalue())
        onnx.load(src)  # warm the page cache
        t0 = time.perf_counter()
        graph = onnx_to_ir(src)
        t1 = time.perf_counter()
        ir.write(dst, graph)
        t2 = time.perf_counter()
    print(f"ResNet-50 ({params / 1e6:.1f} M params, {len(graph.nodes)} IR nodes): onnx_to_ir {t1 - t0:.2f} s + "
          f"ir.write {t2 - t1:.2f} s = {t2 - t0:.2f} s (target < 3 s)")


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    bench_to_ir()
    bench_resnet50()
