"""Torch modules for the primitives of modern CNN families (mobilenet_v3, efficientnet, shufflenet, ghostnet,
convnext): hard and smooth gates, constant bias, gating products and differences, layout changes and
transposed convolution. Registered in the one module registry of talon.bridge.modules."""

from __future__ import annotations

import operator
from functools import reduce

import torch
import torch.nn.functional as F
from torch import nn

from .. import ir
from .modules import _loaded, as_float32, register_module


class HardSigmoidModule(nn.Module):
    """clamp(alpha * x + beta, 0, 1), ONNX's formula (torch's Hardsigmoid is alpha = 1/6, beta = 0.5)."""

    def __init__(self, alpha: float = 1.0 / 6.0, beta: float = 0.5):
        super().__init__()
        self.alpha, self.beta = float(alpha), float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x * self.alpha + self.beta, 0.0, 1.0)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}"


class BiasModule(nn.Module):
    """x + bias, the bias a float32 buffer broadcast over the feature dims."""

    def __init__(self, bias):
        super().__init__()
        self.register_buffer("bias", as_float32(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


class MultiplyModule(nn.Module):
    """The product of its inputs, given in edge order (broadcast: SE gating)."""

    _is_merge = True

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return reduce(operator.mul, xs)


class SubtractModule(nn.Module):
    """Its first input minus its second (edge order)."""

    _is_merge = True

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a - b


class PermuteModule(nn.Module):
    """x.permute(dims), the batch dim first."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = tuple(int(d) for d in dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class ChannelShuffleModule(nn.Module):
    """Channel shuffle over dim 1 in `groups` groups (view, transpose, view back)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = int(groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], x.shape[1]
        y = x.reshape(b, self.groups, c // self.groups, *x.shape[2:]).transpose(1, 2)
        return y.reshape(x.shape)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class SliceModule(nn.Module):
    """x[..., start:end:step, ...] along dim."""

    def __init__(self, dim: int, start: int, end: int, step: int = 1):
        super().__init__()
        self.dim, self.start, self.end, self.step = int(dim), int(start), int(end), int(step)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = [slice(None)] * x.dim()
        index[self.dim] = slice(self.start, self.end, self.step)
        return x[tuple(index)]

    def extra_repr(self) -> str:
        return f"dim={self.dim}, start={self.start}, end={self.end}, step={self.step}"


@register_module(ir.HardSigmoid)
def _hard_sigmoid(node: ir.HardSigmoid) -> nn.Module:
    return HardSigmoidModule(node.alpha, node.beta)


@register_module(ir.HardSwish)
def _hard_swish(node: ir.HardSwish) -> nn.Module:
    return nn.Hardswish()


@register_module(ir.SiLU)
def _silu(node: ir.SiLU) -> nn.Module:
    return nn.SiLU()


@register_module(ir.Bias)
def _bias(node: ir.Bias) -> nn.Module:
    return BiasModule(node.bias)


@register_module(ir.Multiply)
def _multiply(node: ir.Multiply) -> nn.Module:
    return MultiplyModule()


@register_module(ir.Subtract)
def _subtract(node: ir.Subtract) -> nn.Module:
    return SubtractModule()


@register_module(ir.Permute)
def _permute(node: ir.Permute) -> nn.Module:
    return PermuteModule(node.dims)


@register_module(ir.ChannelShuffle)
def _channel_shuffle(node: ir.ChannelShuffle) -> nn.Module:
    return ChannelShuffleModule(node.groups)


@register_module(ir.Slice)
def _slice(node: ir.Slice) -> nn.Module:
    return SliceModule(node.dim, node.start, node.end, node.step)


@register_module(ir.ConvTranspose2d)
def _conv_transpose(node: ir.ConvTranspose2d) -> nn.Module:
    w = node.weight
    conv = nn.ConvTranspose2d(int(w.shape[0]), node.out_channels, tuple(w.shape[2:]), stride=node.stride,
                              padding=node.padding, output_padding=node.output_padding, groups=node.groups,
                              dilation=node.dilation)
    return _loaded(conv, weight=w, bias=node.bias)
