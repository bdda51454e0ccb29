"""Coverage of common CNN and transformer families: which convert natively, and how much of each is TALON-native
with host fallback, measured side by side in one run.

The families are built here (random weights and BatchNorm statistics; no torchvision or timm): resnet-like,
mobilenet_v2-like, mobilenet_v3-like (hard-swish, squeeze-and-excitation), efficientnet-like (SiLU, SE),
shufflenet-like (channel shuffle, split), convnext-like (channels-last LayerNorm, layer scale) and vit-like
(attention, class token). Each is exported with the dynamo exporter and the TorchScript exporter at opset 17,
both with a dynamic batch, then converted natively (refused or not) and with host_fallback=True. Printed per
model and exporter: native? (yes, or the refused op types), the native share of ONNX nodes / parameters /
multiply-accumulates, the max relative difference to onnxruntime on the original model (GraphExecutor on the
host-fallback graph, its .t1c round trip and its ir_to_onnx form in onnxruntime; the largest of the three,
relative to the output's largest magnitude) and the conversion times (median of --repeats).

    PYTHONPATH=. python benchmarks/bench_coverage.py [--repeats 3] [--only vit]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

from converters import ConversionReport, UnsupportedOperatorError, ir_to_onnx, onnx_to_ir
from converters.coverage import REPORT_KEY
from talon import ir
from talon.bridge import GraphExecutor


# -- the families ------------------------------------------------------------------------------------------
def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: Callable | None = nn.ReLU):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([act()] if act else []))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.a, self.b = conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, 1, act=None)
        self.down = conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.b(self.a(x)) + self.down(x))


def resnet_like() -> nn.Module:
    return nn.Sequential(conv_bn(3, 16), nn.MaxPool2d(3, 2, 1), BasicBlock(16, 16, 1), BasicBlock(16, 32, 2),
                         BasicBlock(32, 64, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, gate: Callable = nn.Sigmoid, act: Callable = nn.ReLU):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, max(c // 4, 4), 1), nn.Conv2d(max(c // 4, 4), c, 1)
        self.act, self.gate = act(), gate()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, act: Callable = nn.ReLU6,
                 se: Callable | None = None, k: int = 3):
        super().__init__()
        mid = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers = [conv_bn(cin, mid, 1, act=act), conv_bn(mid, mid, k, stride, groups=mid, act=act)]
        if se is not None:
            layers.append(se(mid))
        layers.append(conv_bn(mid, cout, 1, act=None))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x) if self.use_res else self.body(x)


def mobilenet_v2_like() -> nn.Module:
    return nn.Sequential(conv_bn(3, 16, 3, 2, act=nn.ReLU6), InvertedResidual(16, 16, 1, 1),
                         InvertedResidual(16, 24, 2, 6), InvertedResidual(24, 24, 1, 6),
                         conv_bn(24, 64, 1, act=nn.ReLU6), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def mobilenet_v3_like() -> nn.Module:
    se = lambda c: SqueezeExcite(c, gate=nn.Hardsigmoid)  # noqa: E731
    return nn.Sequential(conv_bn(3, 16, 3, 2, act=nn.Hardswish), InvertedResidual(16, 16, 2, 1, nn.ReLU, se),
                         InvertedResidual(16, 24, 2, 4, nn.ReLU), InvertedResidual(24, 24, 1, 3, nn.Hardswish, se, 5),
                         conv_bn(24, 64, 1, act=nn.Hardswish), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, 32), nn.Hardswish(), nn.Linear(32, 10))


class SiLUMul(nn.Module):
    """SiLU written as x * sigmoid(x), as older EfficientNet code does."""

    def forward(self, x):
        return x * torch.sigmoid(x)


def efficientnet_like() -> nn.Module:
    se = lambda c: SqueezeExcite(c, act=SiLUMul)  # noqa: E731
    return nn.Sequential(conv_bn(3, 16, 3, 2, act=nn.SiLU), InvertedResidual(16, 16, 1, 1, SiLUMul, se),
                         InvertedResidual(16, 24, 2, 6, nn.SiLU, se), InvertedResidual(24, 24, 1, 6, nn.SiLU, se, 5),
                         conv_bn(24, 64, 1, act=nn.SiLU), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        half = c // 2
        self.branch = nn.Sequential(conv_bn(half, half, 1), conv_bn(half, half, 3, groups=half, act=None),
                                    conv_bn(half, half, 1))

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat([a, self.branch(b)], 1), 2)


def shufflenet_like() -> nn.Module:
    return nn.Sequential(conv_bn(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1), ShuffleUnit(24), ShuffleUnit(24),
                         conv_bn(24, 64, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


class ConvNeXtBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm, self.fc1, self.fc2 = nn.LayerNorm(c), nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c,), 0.5))

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.gamma * self.fc2(F.gelu(self.fc1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


def convnext_like() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 32, 4, 4), ConvNeXtBlock(32), ConvNeXtBlock(32), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(32, 10))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = ((q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, n, d))


class ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.n1, self.attn, self.n2 = nn.LayerNorm(dim), Attention(dim, heads), nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.n1(x))
        return x + self.mlp(self.n2(x))


class ViTLike(nn.Module):
    def __init__(self, dim: int = 32, heads: int = 4, depth: int = 2, patch: int = 8, size: int = 32):
        super().__init__()
        tokens = (size // patch) ** 2
        self.patch = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.1)
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.1)
        self.blocks = nn.Sequential(*(ViTBlock(dim, heads) for _ in range(depth)))
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


FAMILIES: dict[str, Callable[[], nn.Module]] = {
    "resnet": resnet_like, "mobilenet_v2": mobilenet_v2_like, "mobilenet_v3": mobilenet_v3_like,
    "efficientnet": efficientnet_like, "shufflenet": shufflenet_like, "convnext": convnext_like, "vit": ViTLike,
}


# -- measuring ---------------------------------------------------------------------------------------------
def randomize_bn(module: nn.Module, seed: int) -> nn.Module:
    """Random BatchNorm statistics and affine terms, so that folding mistakes cannot hide."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return module.eval()


def export(module: nn.Module, x: torch.Tensor, dynamo: bool) -> bytes:
    """The module as ONNX bytes with a dynamic batch: dynamo at its default opset, or TorchScript at opset 17."""
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(module, (x,), f, dynamo=True, input_names=["x"], verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("batch")},))
        else:
            torch.onnx.export(module, (x,), f, dynamo=False, opset_version=17, input_names=["x"],
                              dynamic_axes={"x": {0: "batch"}})
    return f.getvalue()


def timed(fn: Callable, repeats: int):
    """(last result or exception, median seconds)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # a refusal (UnsupportedOperatorError), or an importer's own failure
            result = exc
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def max_rel_diff(graph: ir.Graph, x: np.ndarray, expected: np.ndarray, folder: Path) -> float:
    """The largest |difference| to `expected` over GraphExecutor, the .t1c round trip and ir_to_onnx in
    onnxruntime, relative to max |expected|."""
    ir.write(folder / "m.t1c", graph)
    exported = ir_to_onnx(graph)
    session = ort.InferenceSession(exported.SerializeToString(), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        outs = [GraphExecutor(graph)(torch.from_numpy(x)).numpy(),
                GraphExecutor(ir.read(folder / "m.t1c"))(torch.from_numpy(x)).numpy(),
                session.run(None, {session.get_inputs()[0].name: x})[0]]
    return max(float(np.abs(o - expected).max()) for o in outs) / float(np.abs(expected).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=sorted(FAMILIES), help="families to measure")
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    xs = np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32)
    header = (f"{'model':<13} {'exporter':<12} {'native?':<36} {'nodes':>6} {'params':>7} {'MACs':>7} "
              f"{'max rel diff':>12} {'native s':>9} {'fallback s':>10}")
    print("measured under load; shares are TALON-native parts of the host-fallback conversion")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or FAMILIES:
            module = randomize_bn(FAMILIES[name](), 0)
            for dynamo in (True, False):
                data = export(module, x, dynamo)
                model = onnx.load_from_string(data)
                expected = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": xs})[0]
                native, native_s = timed(lambda: onnx_to_ir(model), args.repeats)
                graph, fallback_s = timed(lambda: onnx_to_ir(model, host_fallback=True), args.repeats)
                if isinstance(graph, Exception):
                    print(f"{name:<13} {'dynamo' if dynamo else 'torchscript17':<12} host fallback failed: {graph!r}")
                    continue
                report = ConversionReport.from_metadata(graph.metadata[REPORT_KEY])
                if isinstance(native, UnsupportedOperatorError):
                    refused = sorted({n.op_type for n in native.nodes})
                    verdict = "no: " + ",".join(refused)
                    verdict = verdict if len(verdict) <= 36 else verdict[:33] + "..."
                elif isinstance(native, Exception):
                    verdict = f"failed: {type(native).__name__}"
                else:
                    verdict = "yes"
                diff = max_rel_diff(graph, xs, expected, Path(tmp))
                print(f"{name:<13} {'dynamo' if dynamo else 'torchscript17':<12} {verdict:<36} "
                      f"{report.share('nodes'):>6.1%} {report.share('params'):>7.1%} {report.share('macs'):>7.1%} "
                      f"{diff:>12.1e} {native_s:>9.3f} {fallback_s:>10.3f}")


if __name__ == "__main__":
    main()
