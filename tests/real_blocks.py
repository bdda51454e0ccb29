"""Tiny re-implementations of the blocks of real CNN families (no torchvision or timm download), and the export
paths users take (dynamo at its default opset with static and dynamic batch, TorchScript at opsets 11 and 17,
each optionally after onnxslim)."""

from __future__ import annotations

import io
import warnings

import onnx
import torch
import torch.nn.functional as F
from torch import nn

C = 8  # channels of every block's input: inputs are (batch, 8, 16, 16)


def conv_bn(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: type | None = nn.ReLU) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([act()] if act else []))


class SqueezeExcite(nn.Module):
    """torchvision's SqueezeExcitation: pool, reduce, activate, expand, gate, multiply."""

    def __init__(self, channels: int, squeeze: int, act: type = nn.ReLU, gate: type = nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)
        self.act, self.gate = act(), gate()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(self.avgpool(x)))))


class SEBlock(nn.Module):
    """A conv followed by squeeze-and-excitation."""

    def __init__(self):
        super().__init__()
        self.conv = conv_bn(C, C, 3)
        self.se = SqueezeExcite(C, 4)

    def forward(self, x):
        return self.se(self.conv(x))


class InvertedResidualHS(nn.Module):
    """mobilenet_v3's inverted residual: expand, depthwise, SE with a hard-sigmoid gate, project, residual."""

    def __init__(self):
        super().__init__()
        self.expand = conv_bn(C, 16, act=nn.Hardswish)
        self.dw = conv_bn(16, 16, 3, groups=16, act=nn.Hardswish)
        self.se = SqueezeExcite(16, 8, gate=nn.Hardsigmoid)
        self.project = conv_bn(16, C, act=None)

    def forward(self, x):
        return x + self.project(self.se(self.dw(self.expand(x))))


class MBConv(nn.Module):
    """efficientnet's MBConv: SiLU (once as nn.SiLU, once written x * sigmoid(x)), SE, residual."""

    def __init__(self):
        super().__init__()
        self.expand = conv_bn(C, 16, act=nn.SiLU)
        self.dw = conv_bn(16, 16, 3, groups=16, act=None)
        self.se = SqueezeExcite(16, 4, act=nn.SiLU)
        self.project = conv_bn(16, C, act=None)

    def forward(self, x):
        y = self.dw(self.expand(x))
        return x + self.project(self.se(y * torch.sigmoid(y)))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """torchvision's shufflenet_v2 channel shuffle."""
    batch, channels, height, width = x.size()
    x = x.view(batch, groups, channels // groups, height, width)
    return torch.transpose(x, 1, 2).contiguous().view(batch, -1, height, width)


class ShuffleUnit(nn.Module):
    """shufflenet_v2's units: a stride-1 unit (chunk, branch, concat, shuffle), then a stride-2 unit."""

    def __init__(self):
        super().__init__()
        half = C // 2
        self.branch = nn.Sequential(conv_bn(half, half), conv_bn(half, half, 3, groups=half, act=None), conv_bn(half, half))
        self.down1 = nn.Sequential(conv_bn(C, C, 3, 2, groups=C, act=None), conv_bn(C, half))
        self.down2 = nn.Sequential(conv_bn(C, half), conv_bn(half, half, 3, 2, groups=half, act=None), conv_bn(half, half))

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        x = channel_shuffle(torch.cat((x1, self.branch(x2)), 1), 2)
        return channel_shuffle(torch.cat((self.down1(x), self.down2(x)), 1), 2)


class GhostModule(nn.Module):
    """ghostnet's ghost module (primary and cheap convs, concat, channel slice) and its hard-sigmoid SE gate
    written relu6(x + 3) / 6, as timm writes it."""

    def __init__(self, out: int = C):
        super().__init__()
        self.out = out
        self.primary = conv_bn(C, 6)
        self.cheap = conv_bn(6, 6, 3, groups=6)
        self.reduce, self.expand = nn.Conv2d(out, 4, 1), nn.Conv2d(4, out, 1)

    def forward(self, x):
        x1 = self.primary(x)
        y = torch.cat([x1, self.cheap(x1)], dim=1)[:, : self.out]
        s = self.expand(F.relu(self.reduce(y.mean((2, 3), keepdim=True))))
        return y * (F.relu6(s + 3.0) / 6.0)


class ConvNeXtBlock(nn.Module):
    """convnext's block: depthwise conv, permute to channels-last, LayerNorm, MLP, layer scale, permute back,
    residual; plus an adaptive max pool head as used in other families."""

    def __init__(self):
        super().__init__()
        self.dwconv = nn.Conv2d(C, C, 3, padding=1, groups=C)
        self.norm = nn.LayerNorm(C, eps=1e-6)
        self.pwconv1, self.act, self.pwconv2 = nn.Linear(C, 4 * C), nn.GELU(), nn.Linear(4 * C, C)
        self.gamma = nn.Parameter(torch.rand(C) + 0.5)

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class RegNetYBlock(nn.Module):
    """regnet_y's bottleneck: 1x1, grouped 3x3, SE, 1x1, residual with a projection shortcut."""

    def __init__(self):
        super().__init__()
        self.a = conv_bn(C, 16)
        self.b = conv_bn(16, 16, 3, 2, groups=4)
        self.se = SqueezeExcite(16, 2)
        self.c = conv_bn(16, 16, act=None)
        self.proj = conv_bn(C, 16, 1, 2, act=None)

    def forward(self, x):
        return F.relu(self.proj(x) + self.c(self.se(self.b(self.a(x)))))


class Zoo(nn.Module):
    """Every block in sequence: one model that exercises every construct in one (slow) dynamo export."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(SEBlock(), InvertedResidualHS(), MBConv(), GhostModule(), ConvNeXtBlock(),
                                    ShuffleUnit(), RegNetYBlock())

    def forward(self, x):
        return self.blocks(x)


BLOCKS = {
    "se": SEBlock,
    "inverted_residual_hardswish": InvertedResidualHS,
    "mbconv_silu_se": MBConv,
    "shuffle_unit": ShuffleUnit,
    "ghost_module": GhostModule,
    "convnext_block": ConvNeXtBlock,
    "regnet_y_se": RegNetYBlock,
    "zoo": Zoo,
}


def build(name: str) -> nn.Module:
    """The block with random weights and random BatchNorm statistics, in eval mode."""
    torch.manual_seed(0)
    model = BLOCKS[name]()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model.eval()


# export paths: (exporter, opset or None for the default, dynamic batch)
EXPORTS = {
    "dynamo": ("dynamo", None, False),
    "dynamo_dynamic": ("dynamo", None, True),
    "torchscript11_dynamic": ("torchscript", 11, True),
    "torchscript17": ("torchscript", 17, False),
}


def export(model: nn.Module, x: torch.Tensor, how: str, slim: bool = False) -> onnx.ModelProto:
    """The ONNX model one export path writes for `model` traced on `x` (then onnxslim'ed when `slim`)."""
    exporter, opset, dynamic = EXPORTS[how]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            shapes = {"x": {0: torch.export.Dim("batch")}} if dynamic else None
            proto = torch.onnx.export(model, (x,), dynamo=True, input_names=["x"], dynamic_shapes=shapes,
                                      verbose=False).model_proto
        else:
            f = io.BytesIO()
            torch.onnx.export(model, (x,), f, dynamo=False, opset_version=opset, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}} if dynamic else None)
            proto = onnx.load_from_string(f.getvalue())
    if slim:
        import onnxslim

        proto = onnxslim.slim(proto)
    return proto
