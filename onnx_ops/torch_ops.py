"""`torch.ops.talon.*` custom ops (computed by onnx_ops.neuron_kernels) and their ONNX export translations.

``torch.onnx.export(model, args, dynamo=True, custom_translation_table=custom_translation_table(),
optimize=False)`` emits talon nodes for them; :func:`export` does that, folds constants only (the default
``optimize=True`` also deduplicates equal-valued initializers, merging parameters), so parameters stay
named initializers, and attaches the function bodies.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import onnx
import torch
import onnx_ir
from onnxscript import opset18 as _onnx_std
from onnxscript import optimizer as _optimizer
from onnxscript import evaluator as _evaluator
from onnxscript import values as _osv

from . import neuron_kernels as nk
from . import nir_torch_ops
from .functions import attach_functions
from .schemas import DOMAIN, SCHEMAS, VERSION

# -- custom ops ----------------------------------------------------------------------------------


@torch.library.custom_op("talon::lif", mutates_args=())
def lif(
    x: torch.Tensor,
    v: torch.Tensor,
    tau: torch.Tensor,
    r: torch.Tensor,
    v_leak: torch.Tensor,
    v_threshold: torch.Tensor,
    reset_mode: str = "zero",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LIF timestep: (spikes, v_next)."""
    return lif_step_from_tau(x, v, tau, r, v_leak, v_threshold, reset_mode)


@torch.library.custom_op("talon::if_", mutates_args=())
def if_(
    x: torch.Tensor, v: torch.Tensor, r: torch.Tensor, v_threshold: torch.Tensor, reset_mode: str = "zero"
) -> tuple[torch.Tensor, torch.Tensor]:
    """One IF timestep: (spikes, v_next)."""
    return if_step(x, v, r, v_threshold, reset_mode)


def if_step(x, v, r, v_threshold, reset_mode: str = "zero"):
    """nk.if_step with the reset given by name ('zero' or 'subtract')."""
    return nk.if_step(x, v, r, v_threshold, subtract=reset_mode == "subtract")


@torch.library.custom_op("talon::spiking_affine", mutates_args=())
def spiking_affine(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    weight_bits: int = 8,
    accumulator_bits: int = 16,
    spike_mode: str = "binary",
) -> torch.Tensor:
    """x @ weight.T + bias (the quantisation settings are recorded for the hardware, not applied)."""
    return torch.nn.functional.linear(x, weight, bias)


@torch.library.custom_op("talon::channel_split", mutates_args=())
def channel_split(x: torch.Tensor, split_sections: Sequence[int], dim: int = 1) -> list[torch.Tensor]:
    """x split along `dim` into `split_sections` (contiguous copies)."""
    return [t.clone() for t in torch.split(x, list(split_sections), dim=dim)]


def _neuron_fake(x, v, *params_and_mode):
    shape = torch.broadcast_shapes(x.shape, v.shape)
    return x.new_empty(shape), x.new_empty(shape)


lif.register_fake(_neuron_fake)
if_.register_fake(_neuron_fake)


@spiking_affine.register_fake
def _(x, weight, bias, weight_bits=8, accumulator_bits=16, spike_mode="binary"):
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


@channel_split.register_fake
def _(x, split_sections, dim=1):
    return [t.new_empty(t.shape) for t in torch.split(x, list(split_sections), dim=dim)]


# -- autograd: surrogate gradients through the kernels ------------------------------------------


def _tensor_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*(t for t in inputs if isinstance(t, torch.Tensor)))
    ctx.extra = tuple(a for a in inputs if not isinstance(a, torch.Tensor))  # reset_mode


def _recompute_backward(step: Callable) -> Callable:
    """A backward that differentiates `step` (the kernel, with its surrogate spike) at the saved inputs."""

    def backward(ctx, grad_s, grad_v):
        saved = [t.detach().requires_grad_(t.dtype.is_floating_point) for t in ctx.saved_tensors]
        with torch.enable_grad():
            s, v_next = step(*saved, *ctx.extra)
            wanted = [t for t, need in zip(saved, ctx.needs_input_grad) if need]
            grads = iter(torch.autograd.grad((s, v_next), wanted, (grad_s, grad_v), allow_unused=True))
        return tuple(next(grads) if need else None for need in ctx.needs_input_grad)

    return backward


lif.register_autograd(_recompute_backward(lambda *a: lif_step_from_tau(*a)), setup_context=_tensor_context)
if_.register_autograd(_recompute_backward(if_step), setup_context=_tensor_context)


def lif_step_from_tau(x, v, tau, r, v_leak, v_threshold, reset_mode: str = "zero"):
    """nk.lif_step with the coefficients computed from tau (differentiable in tau)."""
    beta, one_minus_beta = nk.lif_coefficients(tau)
    return nk.lif_step(x, v, beta, one_minus_beta, r, v_leak, v_threshold, subtract=reset_mode == "subtract")


def _affine_backward(ctx, grad):
    x, weight, _ = ctx.saved_tensors
    grad_b = grad.reshape(-1, grad.shape[-1]).sum(0)
    grad_w = grad.reshape(-1, grad.shape[-1]).T @ x.reshape(-1, x.shape[-1])
    return grad @ weight, grad_w, grad_b, None, None, None


def _affine_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs[:3])


spiking_affine.register_autograd(_affine_backward, setup_context=_affine_context)


def _split_backward(ctx, grads):
    # torch.library expects one entry for x and one for the int-list argument here (measured with torch 2.13)
    return torch.cat(list(grads), dim=ctx.dim), None


def _split_context(ctx, inputs, output) -> None:
    ctx.dim = inputs[2] if len(inputs) > 2 else 1


channel_split.register_autograd(_split_backward, setup_context=_split_context)

# -- ONNX export ---------------------------------------------------------------------------------

talon_opset = _osv.Opset(DOMAIN, VERSION)


def _lif_onnx(x, v, tau, r, v_leak, v_threshold, reset_mode: str = "zero"):
    return talon_opset.LIF(x, v, tau, r, v_leak, v_threshold, reset_mode=reset_mode, _outputs=2)


def _if_onnx(x, v, r, v_threshold, reset_mode: str = "zero"):
    return talon_opset.IF(x, v, r, v_threshold, reset_mode=reset_mode, _outputs=2)


def _spiking_affine_onnx(x, weight, bias, weight_bits: int = 8, accumulator_bits: int = 16, spike_mode: str = "binary"):
    return talon_opset.SpikingAffine(
        x, weight, bias, weight_bits=weight_bits, accumulator_bits=accumulator_bits, spike_mode=spike_mode
    )


def _channel_split_onnx(x, split_sections: Sequence[int], dim: int = 1):
    # The exporter's tracer gives a variadic-output op one output, so record the node with its output
    # count directly; list outputs are sequences for the exporter, and folding turns
    # SequenceAt(SequenceConstruct(...)) back into the plain values.
    signature = onnx_ir.schemas.OpSignature.from_op_schema(SCHEMAS["ChannelSplit"])
    attrs = {"split_sections": list(split_sections), "axis": dim}
    parts = _evaluator.default()._call_op(signature, {"X": x}, attrs, len(split_sections))
    return _onnx_std.SequenceConstruct(*parts)


def custom_translation_table() -> dict[Any, Callable]:
    """{torch custom op: onnxscript translation} for torch.onnx.export(..., custom_translation_table=...)."""
    from .nir_torch_ops import custom_translation_table as nir_table  # LI, Integrator, CubaLIF, Threshold, SumPool2d

    ops = torch.ops.talon
    return {
        ops.lif.default: _lif_onnx,
        ops.if_.default: _if_onnx,
        ops.spiking_affine.default: _spiking_affine_onnx,
        ops.channel_split.default: _channel_split_onnx,
        **nir_table(),
    }


def export(model: torch.nn.Module, args: tuple, **kwargs: Any) -> onnx.ModelProto:
    """torch.onnx.export (dynamo) emitting talon ops, parameters as named initializers, bodies attached."""
    table = {**custom_translation_table(), **kwargs.pop("custom_translation_table", {})}
    program = torch.onnx.export(model, args, dynamo=True, custom_translation_table=table, optimize=False, **kwargs)
    _optimizer.fold_constants(program.model)  # folding only: no initializer deduplication, no CSE
    onnx_ir.passes.common.RemoveUnusedNodesPass()(program.model)
    return attach_functions(program.model_proto)
