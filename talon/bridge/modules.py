"""One torch module per TALON IR primitive, and the one registry mapping primitive classes to module factories.

Module protocol the executors rely on (class attributes):
- ``_is_stateful``: ``forward(x, *state) -> (output, *next_state)``; no state means rest. LIF and IF carry
  one tensor, the membrane, so the executors' state entry is ``(membrane,)``.
- ``_is_multi_output``: ``forward(x)`` returns a tuple; output i goes to the node's i-th outgoing edge.
- ``_is_merge``: ``forward(*inputs)`` takes the inputs in edge order instead of their sum.

Modules compute with plain torch in eager mode and call the ``talon::`` custom ops only while exporting,
so that ``torch.onnx.export(..., dynamo=True)`` emits talon ONNX nodes.
"""

from __future__ import annotations

import operator
from functools import reduce
from typing import Any, Callable, Mapping, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from onnx_ops import op_spec
from onnx_ops.neuron_kernels import if_scan, if_step, lif_coefficients, lif_scan, lif_step

from .. import ir
from ..ir.graph import Graph
from ..ir.errors import RegistryError
from ..ir.primitives import Node
from ..ir.primitives.neurons import RESET_MODES
from ..ir.primitives.routing import SKIP_TYPES
from .errors import ExecutorError

ModuleFactory = Callable[[Node], nn.Module]
# custom maps: primitive class -> factory, or node name -> module or factory
CustomMap = Mapping[Union[type, str], Union[ModuleFactory, nn.Module]]

_FACTORIES: dict[type, ModuleFactory] = {}


def register_module(*classes: type, override: bool = False) -> Callable[[ModuleFactory], ModuleFactory]:
    """Decorator: make a factory the default torch module builder for the given primitive classes.

    A class that already has a factory is refused (RegistryError) unless override=True."""
    taken = [cls.__name__ for cls in classes if cls in _FACTORIES]
    if taken and not override:
        raise RegistryError(f"a torch module factory is already registered for {taken}; pass override=True to "
                            "replace it")

    def deco(factory: ModuleFactory) -> ModuleFactory:
        for cls in classes:
            _FACTORIES[cls] = factory
        return factory

    return deco


def as_float32(value: Any) -> torch.Tensor:
    """A float32 tensor copy of a numpy array, number or tensor (never aliasing the caller's memory)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32).clone()
    return torch.tensor(np.asarray(value), dtype=torch.float32)


def exporting() -> bool:
    """True while torch.export traces a model (also under ``torch.onnx.export(dynamo=True)``): the modules
    then emit the talon custom ops. Cheap enough to ask at every step."""
    return torch.compiler.is_exporting()


def talon_op(name: str):
    """The ``torch.ops.talon.<name>`` custom op, registering the talon op library on first use."""
    import onnx_ops.torch_ops  # noqa: F401  (registers torch.ops.talon.*; imported only while exporting)

    return getattr(torch.ops.talon, name)


# -- spiking neurons ------------------------------------------------------------------------------------
class _NeuronModule(nn.Module):
    """Stateful neuron: parameters are float32 buffers (the state_dict); the step reads kernel buffers derived
    from them (beta, 1 - beta, ...) and shaped to the input. load_state_dict recomputes them; after changing
    a parameter in place, call refresh()."""

    _is_stateful = True
    param_names: tuple[str, ...] = ()
    kernel_names: tuple[str, ...] = ()  # derived non-persistent buffers, in the kernel's argument order

    def __init__(self, **params: Any):
        super().__init__()
        for name in self.param_names:
            self.register_buffer(name, as_float32(params[name]))
        shapes = {tuple(getattr(self, n).shape) for n in self.param_names}
        if len(shapes) != 1:
            raise ExecutorError(f"{type(self).__name__}: parameters {self.param_names} differ in shape: {shapes}")
        self._fit_shape: torch.Size | None = None
        self.register_load_state_dict_post_hook(lambda module, _keys: module.refresh())
        self.refresh()

    def _kernel_values(self) -> tuple[torch.Tensor, ...]:
        """The tensors the step uses (named by `kernel_names`), before shaping to the input."""
        raise NotImplementedError

    @staticmethod
    def _shaped(value: torch.Tensor, feature_shape: torch.Size) -> torch.Tensor:
        """A parameter reshaped to the input's features when it holds one value per feature (flat after a conv)."""
        return value.reshape(feature_shape) if value.numel() == feature_shape.numel() else value

    def refresh(self) -> None:
        """Recompute the derived kernel buffers (after the parameters changed) in the fitted shape."""
        target = self._fit_shape
        for name, value in zip(self.kernel_names, self._kernel_values()):
            self.register_buffer(name, value if target is None else self._shaped(value, target), persistent=False)
        self._cache_kernel()

    def _cache_kernel(self) -> None:
        # a plain tuple of the kernel buffers: reading it costs far less than one buffer lookup per step
        self._kernel = tuple(getattr(self, name) for name in self.kernel_names)

    def _apply(self, fn, recurse=True):
        """Keep the cached kernel tuple pointing at the buffers after .to(), .cuda(), .double(), ..."""
        result = super()._apply(fn, recurse)
        self._cache_kernel()
        return result

    def fit(self, feature_shape: tuple[int, ...]) -> None:
        """Shape the kernel buffers for inputs of this feature shape (batch excluded); flat params are reshaped."""
        target = torch.Size(feature_shape)
        shape = getattr(self, self.param_names[0]).shape
        if shape.numel() != target.numel():
            try:
                fits = torch.broadcast_shapes(shape, target) == target
            except RuntimeError:
                fits = False
            if not fits:
                raise ExecutorError(f"{type(self).__name__}: parameter shape {tuple(shape)} does not fit input "
                                    f"features {tuple(target)}")
        self._fit_shape = target
        self.refresh()

    def extra_repr(self) -> str:
        mode = getattr(self, "reset_mode", "zero")
        return f"shape={tuple(getattr(self, self.param_names[0]).shape)}" + (
            f", reset_mode={mode!r}" if mode != "zero" else "")


class _SpikingNeuron(_NeuronModule):
    """A neuron whose state is its membrane: ``forward(x, v=None) -> (spikes, v_next)``, `_step` from
    onnx_ops.neuron_kernels in eager mode, the talon custom op (`_export`) while exporting. `reset_mode`
    'zero' sets the membrane to 0 after a spike, 'subtract' lowers it by the threshold.

    Once fitted to a feature shape (the executors fit at construction), forward also takes a whole sequence
    x [T, batch, *features] and returns (spikes [T, batch, *features], v after the last timestep), computed
    by `_scan` (the same numbers as T steps) or, while gradients are needed, by T steps."""

    _step: Callable
    _scan: Callable
    reset_mode = "zero"
    _subtract = False  # reset_mode == "subtract", the kernels' flag

    def _set_reset_mode(self, reset_mode: str) -> None:
        if reset_mode not in RESET_MODES:
            raise ExecutorError(f"{type(self).__name__}: reset_mode must be one of {list(RESET_MODES)}, "
                                f"got {reset_mode!r}")
        self.reset_mode = reset_mode
        self._subtract = reset_mode == "subtract"

    def forward(self, x: torch.Tensor, v: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if exporting():  # the parameters, shaped for x without storing anything (export traces, never mutates)
            v = torch.zeros_like(x) if v is None else v
            return self._export(x, v, *(self._shaped(getattr(self, n), x.shape[1:]) for n in self.param_names))
        fit = self._fit_shape
        if x.shape[1:] != fit:
            if fit is not None and x.dim() == len(fit) + 2 and x.shape[2:] == fit:
                return self._sequence(x, v)
            self.fit(x.shape[1:])
        return self._step(x, torch.zeros_like(x) if v is None else v, *self._kernel, self._subtract)

    def _sequence(self, xs: torch.Tensor, v: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """T timesteps of xs [T, batch, ...] from v (rest when None): (spikes [T, batch, ...], last v)."""
        v = torch.zeros_like(xs[0]) if v is None else v
        kernel = self._kernel
        if torch.is_grad_enabled() and any(t.requires_grad for t in (xs, v, *kernel)):
            spikes = []
            for x in xs:
                s, v = self._step(x, v, *kernel, self._subtract)
                spikes.append(s)
            return torch.stack(spikes), v
        return self._scan(xs, v, *kernel, self._subtract)

    def _export(self, x: torch.Tensor, v: torch.Tensor, *params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


def runs_sequences(module: nn.Module) -> bool:
    """Whether `module` is a LIF/IF neuron with the standard forward, which also takes whole sequences
    [T, batch, ...]; a subclass or an instance with its own forward is run one timestep at a time."""
    return isinstance(module, _SpikingNeuron) and type(module).forward is _SpikingNeuron.forward and (
        "forward" not in vars(module))


class LIFModule(_SpikingNeuron):
    """Leaky integrate-and-fire (docs/neurons.md): ``forward(x, v=None) -> (spikes, v_next)``, dt = 1."""

    _state_size = len(op_spec("LIF").state)  # the state items the talon op declares

    param_names = ("tau", "r", "v_leak", "v_threshold")
    kernel_names = ("beta", "one_minus_beta", "k_r", "k_v_leak", "k_v_threshold")
    _step = staticmethod(lif_step)
    _scan = staticmethod(lif_scan)

    def __init__(self, tau: Any, r: Any, v_leak: Any, v_threshold: Any, reset_mode: str = "zero"):
        super().__init__(tau=tau, r=r, v_leak=v_leak, v_threshold=v_threshold)
        self._set_reset_mode(reset_mode)

    def _kernel_values(self) -> tuple[torch.Tensor, ...]:
        return (*lif_coefficients(self.tau), self.r, self.v_leak, self.v_threshold)

    def _export(self, x: torch.Tensor, v: torch.Tensor, *params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return talon_op("lif")(x, v, *params, self.reset_mode)


class IFModule(_SpikingNeuron):
    """Integrate-and-fire: ``forward(x, v=None) -> (spikes, v_next)`` with v = v + r*x, then the reset."""

    _state_size = len(op_spec("IF").state)

    param_names = ("r", "v_threshold")
    kernel_names = ("k_r", "k_v_threshold")
    _step = staticmethod(if_step)
    _scan = staticmethod(if_scan)

    def __init__(self, r: Any, v_threshold: Any, reset_mode: str = "zero"):
        super().__init__(r=r, v_threshold=v_threshold)
        self._set_reset_mode(reset_mode)

    def _kernel_values(self) -> tuple[torch.Tensor, ...]:
        return (self.r, self.v_threshold)

    def _export(self, x: torch.Tensor, v: torch.Tensor, *params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return talon_op("if_")(x, v, *params, self.reset_mode)


# -- routing ----------------------------------------------------------------------------------------------
class ChannelSplitModule(nn.Module):
    """Splits along `dim` (torch dim with the batch) into `split_sections`; returns a tuple, one per branch."""

    _is_multi_output = True

    def __init__(self, split_sections: tuple[int, ...], dim: int = 1):
        super().__init__()
        self.split_sections = tuple(int(s) for s in split_sections)
        self.dim = int(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if exporting():
            return tuple(talon_op("channel_split")(x, list(self.split_sections), self.dim))
        return torch.split(x, self.split_sections, self.dim)

    def extra_repr(self) -> str:
        return f"split_sections={self.split_sections}, dim={self.dim}"


class ConcatModule(nn.Module):
    """Concatenates its inputs, given in edge order, along `dim` (torch dim with the batch)."""

    _is_merge = True

    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = int(dim)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class SkipModule(nn.Module):
    """Skip junction: 'residual' sums the inputs, 'concatenate' joins them on dim 1 in edge order,
    'passthrough' forwards its input (several inputs are summed, as for any node); aliases accepted."""

    _is_merge = True

    def __init__(self, skip_type: str = "residual"):
        super().__init__()
        if skip_type not in SKIP_TYPES:
            raise ExecutorError(f"SkipModule: skip_type must be one of {sorted(SKIP_TYPES)}, got {skip_type!r}")
        self.skip_type = skip_type
        self.concatenate = SKIP_TYPES[skip_type] == "concatenate"

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.concatenate:
            return torch.cat(xs, 1)
        return reduce(operator.add, xs)

    def extra_repr(self) -> str:
        return f"skip_type={self.skip_type!r}"


# -- layers --------------------------------------------------------------------------------------------
class SepConv2dModule(nn.Module):
    """Depthwise convolution (stride, padding, dilation) followed by a pointwise 1x1 convolution."""

    def __init__(self, depthwise: nn.Conv2d, pointwise: nn.Conv2d):
        super().__init__()
        self.depthwise = depthwise
        self.pointwise = pointwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class AffineModule(nn.Linear):
    """nn.Linear (y = x W^T + b) for an IR Affine."""


class Conv1dModule(nn.Conv1d):
    """nn.Conv1d for an IR Conv1d."""


class Conv2dModule(nn.Conv2d):
    """nn.Conv2d for an IR Conv2d."""


class SpikingAffineModule(AffineModule):
    """SpikingAffine: the Affine math in torch; exports as the talon SpikingAffine op with its quantisation
    settings (spike_mode, weight_bits, accumulator_bits), which are recorded, not applied."""

    def __init__(self, in_features: int, out_features: int, spike_mode: str = "binary", weight_bits: int = 8,
                 accumulator_bits: int = 16):
        super().__init__(in_features, out_features)
        self.spike_mode, self.weight_bits, self.accumulator_bits = spike_mode, int(weight_bits), int(accumulator_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if exporting():
            return talon_op("spiking_affine")(x, self.weight, self.bias, self.weight_bits, self.accumulator_bits,
                                              self.spike_mode)
        return super().forward(x)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, spike_mode={self.spike_mode!r}, weight_bits={self.weight_bits}, "
                f"accumulator_bits={self.accumulator_bits}")


class PadModule(nn.Module):
    """Constant padding of the trailing dims, in torch.nn.functional.pad order (last dim first)."""

    def __init__(self, padding: tuple[int, ...], value: float = 0.0):
        super().__init__()
        self.padding, self.value = tuple(int(p) for p in padding), float(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.padding, value=self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ClampModule(nn.Module):
    """torch.clamp(x, min_value, max_value); a bound of None is no bound (exports as ONNX Clip)."""

    def __init__(self, min_value: float | None = None, max_value: float | None = None):
        super().__init__()
        self.min_value = None if min_value is None else float(min_value)
        self.max_value = None if max_value is None else float(max_value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, self.min_value, self.max_value)

    def extra_repr(self) -> str:
        return f"min_value={self.min_value}, max_value={self.max_value}"


def _loaded(module: nn.Module, **values: np.ndarray) -> nn.Module:
    """The module with its named parameters and buffers overwritten by IR arrays (cast to their dtype)."""
    with torch.no_grad():
        for name, value in values.items():
            target = getattr(module, name)
            target.copy_(torch.tensor(np.asarray(value)).reshape(target.shape))
    return module


def _conv(cls: type, weight: np.ndarray, bias: np.ndarray, stride, padding, dilation, groups: int) -> nn.Module:
    conv = cls(int(weight.shape[1] * groups), int(weight.shape[0]), tuple(weight.shape[2:]), stride=stride,
               padding=padding, dilation=dilation, groups=groups)
    return _loaded(conv, weight=weight, bias=bias)


def _torch_dim(ir_dim: int) -> int:
    """Torch dim (with batch) of a dim numbered without the batch (negative dims count from the end)."""
    return ir_dim + 1 if ir_dim >= 0 else ir_dim


@register_module(ir.Affine)
def _affine(node: ir.Affine) -> nn.Module:
    out_f, in_f = node.weight.shape
    return _loaded(AffineModule(int(in_f), int(out_f)), weight=node.weight, bias=node.bias)


@register_module(ir.SpikingAffine)
def _spiking_affine(node: ir.SpikingAffine) -> nn.Module:
    out_f, in_f = node.weight.shape
    module = SpikingAffineModule(int(in_f), int(out_f), node.spike_mode, node.weight_bits, node.accumulator_bits)
    return _loaded(module, weight=node.weight, bias=node.bias)


@register_module(ir.Pad)
def _pad(node: ir.Pad) -> nn.Module:
    return PadModule(node.padding, node.value)


@register_module(ir.Conv1d, ir.Conv2d)
def _convnd(node) -> nn.Module:
    cls = Conv1dModule if isinstance(node, ir.Conv1d) else Conv2dModule
    return _conv(cls, node.weight, node.bias, node.stride, node.padding, node.dilation, node.groups)


@register_module(ir.SepConv2d)
def _sepconv(node: ir.SepConv2d) -> nn.Module:
    channels = int(node.depthwise_weight.shape[0])
    depthwise = _conv(Conv2dModule, node.depthwise_weight, node.depthwise_bias, node.stride, node.padding,
                      node.dilation, channels)
    pointwise = _conv(Conv2dModule, node.pointwise_weight, node.pointwise_bias, 1, 0, 1, 1)
    return SepConv2dModule(depthwise, pointwise)


@register_module(ir.MaxPool2d)
def _maxpool(node: ir.MaxPool2d) -> nn.Module:
    return nn.MaxPool2d(node.kernel_size, node.stride, node.padding, node.dilation, ceil_mode=node.ceil_mode)


@register_module(ir.AvgPool2d)
def _avgpool(node: ir.AvgPool2d) -> nn.Module:
    return nn.AvgPool2d(node.kernel_size, node.stride, node.padding, ceil_mode=node.ceil_mode,
                        count_include_pad=node.count_include_pad)


@register_module(ir.Upsample)
def _upsample(node: ir.Upsample) -> nn.Module:
    align = node.align_corners if node.mode == "bilinear" else None
    return nn.Upsample(size=node.size, scale_factor=node.scale_factor, mode=node.mode, align_corners=align)


@register_module(ir.Flatten)
def _flatten(node: ir.Flatten) -> nn.Module:
    return nn.Flatten(_torch_dim(node.start_dim), _torch_dim(node.end_dim))


@register_module(ir.LIF)
def _lif(node: ir.LIF) -> nn.Module:
    return LIFModule(node.tau, node.r, node.v_leak, node.v_threshold, node.reset_mode)


@register_module(ir.IF)
def _if(node: ir.IF) -> nn.Module:
    return IFModule(node.r, node.v_threshold, node.reset_mode)


@register_module(ir.ChannelSplit)
def _split(node: ir.ChannelSplit) -> nn.Module:
    return ChannelSplitModule(node.split_sections, node.dim)


@register_module(ir.Concat)
def _concat(node: ir.Concat) -> nn.Module:
    return ConcatModule(node.dim)


@register_module(ir.Skip)
def _skip(node: ir.Skip) -> nn.Module:
    return SkipModule(node.skip_type)


@register_module(ir.ReLU)
def _relu(node: ir.ReLU) -> nn.Module:
    return nn.LeakyReLU(node.negative_slope) if node.negative_slope != 0.0 else nn.ReLU()


@register_module(ir.Clamp)
def _clamp(node: ir.Clamp) -> nn.Module:
    return ClampModule(node.min_value, node.max_value)


@register_module(ir.Softmax)
def _softmax(node: ir.Softmax) -> nn.Module:
    # torch numbering with the batch when >= 1; dim 0 is the first feature dim (never the batch)
    return nn.Softmax(dim=node.dim if node.dim != 0 else 1)


@register_module(ir.GELU)
def _gelu(node: ir.GELU) -> nn.Module:
    return nn.GELU(approximate="tanh" if node.approximate else "none")


@register_module(ir.ELU)
def _elu(node: ir.ELU) -> nn.Module:
    return nn.ELU(node.alpha)


@register_module(ir.PReLU)
def _prelu(node: ir.PReLU) -> nn.Module:
    return _loaded(nn.PReLU(int(node.weight.size)), weight=node.weight)


@register_module(ir.BatchNorm1d, ir.BatchNorm2d)
def _batchnorm(node) -> nn.Module:
    cls = nn.BatchNorm1d if isinstance(node, ir.BatchNorm1d) else nn.BatchNorm2d
    bn = cls(node.num_features, eps=node.eps, momentum=node.momentum)
    return _loaded(bn, weight=node.weight, bias=node.bias, running_mean=node.running_mean,
                   running_var=node.running_var)


@register_module(ir.LayerNorm)
def _layernorm(node: ir.LayerNorm) -> nn.Module:
    return _loaded(nn.LayerNorm(node.normalized_shape, eps=node.eps), weight=node.weight, bias=node.bias)


@register_module(ir.Dropout)
def _dropout(node: ir.Dropout) -> nn.Module:
    return nn.Dropout(node.p)


@register_module(ir.Sigmoid)
def _sigmoid(node: ir.Sigmoid) -> nn.Module:
    return nn.Sigmoid()


@register_module(ir.Tanh)
def _tanh(node: ir.Tanh) -> nn.Module:
    return nn.Tanh()


@register_module(ir.HybridRegion, ir.Input, ir.Output)
def _identity(node: Node) -> nn.Module:
    return nn.Identity()


# -- public entry points -------------------------------------------------------------------------------
def node_to_module(node: Node, custom_map: CustomMap | None = None) -> nn.Module:
    """The torch module (eval mode) for one IR node: `custom_map` (class -> factory) first, then the defaults;
    subclasses use their parent's factory (SpikingAffine runs as an Affine)."""
    for table in (custom_map or {}, _FACTORIES):
        for cls in type(node).__mro__:
            factory = table.get(cls)
            if factory is not None:
                return factory(node).eval()
    raise ExecutorError(f"no torch module for primitive {type(node).__name__}; "
                        f"pass custom_map={{{type(node).__name__}: factory}}")


def nodes_to_modules(graph: Graph, custom_map: CustomMap | None = None) -> dict[str, nn.Module]:
    """A module for every node of the graph, by node name (Input and Output are identities).

    `custom_map` keys are node names (value: a module, or a factory taking the node) or primitive
    classes (value: a factory); names win over classes, which win over the defaults.
    """
    custom_map = custom_map or {}
    modules: dict[str, nn.Module] = {}
    for name, node in graph.nodes.items():
        entry = custom_map.get(name)
        if isinstance(entry, nn.Module):
            modules[name] = entry
        elif entry is not None:
            modules[name] = entry(node)
        else:
            modules[name] = node_to_module(node, custom_map)
    return modules
