"""`torch.ops.talon.*` custom ops and their ONNX export translations, derived from the op specs' torch kernels.

Every spec with a `kernel` gets ``torch.ops.talon.<torch_name>(inputs..., attributes...)``: the ONNX inputs as
tensors, then the ONNX attributes with their defaults. Its fake (meta) implementation runs the kernel on fake
tensors, and its backward differentiates the kernel at the saved inputs (the spike's surrogate gradient).
``torch.onnx.export(model, args, dynamo=True, custom_translation_table=custom_translation_table(),
optimize=False)`` emits talon nodes for them; :func:`export` does that, folds constants only (the default
``optimize=True`` also deduplicates equal-valued initializers, merging parameters), so parameters stay
named initializers, and attaches the function bodies.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import onnx
import onnx_ir
import torch
from onnxscript import evaluator as _evaluator
from onnxscript import opset18 as _onnx_std
from onnxscript import optimizer as _optimizer
from onnxscript import values as _osv

from .errors import OpSpecError
from .functions import attach_functions
from .schemas import SCHEMAS
from .spec import DOMAIN, VERSION, Attr, OpSpec, on_register, op_spec, op_specs

talon_opset = _osv.Opset(DOMAIN, VERSION)

_TORCH_TYPE = {"int": "int", "ints": "int[]", "float": "float", "str": "str"}
_PY_TYPE = {"int": int, "ints": Sequence[int], "float": float, "str": str}
_OPS: dict[str, Any] = {}  # op name -> its torch custom op (CustomOpDef)
_SCHEMAS: dict[str, str] = {}  # op name -> the torch schema it was defined with


def _torch_default(a: Attr) -> str:
    if a.default is None:
        return "=None" if not a.required else ""
    if a.kind == "str":
        return f'="{a.default}"'
    return f"={list(a.default)}" if a.kind == "ints" else f"={a.default}"


def torch_schema(spec: OpSpec) -> str:
    """The torch operator schema of a spec: tensors for its inputs, typed arguments for its attributes."""
    args = [f"Tensor {n}" for n in spec.inputs]
    for a in spec.attributes:
        optional = "?" if a.default is None and not a.required else ""
        args.append(f"{_TORCH_TYPE[a.kind]}{optional} {a.name}{_torch_default(a)}")
    if spec.variadic:
        result = "Tensor[]"
    else:
        result = "Tensor" if len(spec.outputs) == 1 else f"({', '.join(['Tensor'] * len(spec.outputs))})"
    return f"({', '.join(args)}) -> {result}"


def _fresh(outputs, inputs: Sequence[Any]):
    """The kernel's outputs with every alias (an input, an earlier output, a view) cloned: custom ops return new
    tensors."""
    single = isinstance(outputs, torch.Tensor)
    seen = [t for t in inputs if isinstance(t, torch.Tensor)]
    fresh = []
    for t in [outputs] if single else outputs:
        if t._base is not None or any(t is other for other in seen):
            t = t.clone()
        seen.append(t)
        fresh.append(t)
    if single:
        return fresh[0]
    return fresh if isinstance(outputs, list) else tuple(fresh)


def _call(name: str) -> Callable:
    """The op's implementation: the kernel of the spec registered now (a replaced spec takes effect at once)."""

    def impl(*args, **kwargs):
        return _fresh(op_spec(name).kernel(*args, **kwargs), args)

    return impl


def _save(ctx, inputs, output) -> None:
    ctx.tensor_slots = [i for i, v in enumerate(inputs) if isinstance(v, torch.Tensor)]
    ctx.others = [None if isinstance(v, torch.Tensor) else v for v in inputs]
    ctx.save_for_backward(*(inputs[i] for i in ctx.tensor_slots))


def _backward(name: str) -> Callable:
    """A backward that differentiates the kernel (with its surrogate spike) at the saved inputs."""

    def backward(ctx, *grads):
        if len(grads) == 1 and isinstance(grads[0], (list, tuple)):
            grads = tuple(grads[0])  # a list-returning op hands its gradients as one list
        args = list(ctx.others)
        saved = [t.detach().requires_grad_(t.dtype.is_floating_point) for t in ctx.saved_tensors]
        for slot, t in zip(ctx.tensor_slots, saved):
            args[slot] = t
        with torch.enable_grad():
            outs = op_spec(name).kernel(*args)
            outs = [outs] if isinstance(outs, torch.Tensor) else list(outs)
            pairs = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
            wanted = [args[i] for i in ctx.tensor_slots if ctx.needs_input_grad[i]]
            found = torch.autograd.grad([o for o, _ in pairs], wanted, [g for _, g in pairs], allow_unused=True) \
                if pairs and wanted else [None] * len(wanted)
        found = iter(found)
        return tuple(next(found) if i in ctx.tensor_slots and ctx.needs_input_grad[i] else None
                     for i in range(len(ctx.needs_input_grad)))

    return backward


def _translation(spec: OpSpec) -> Callable:
    """The onnxscript function torch.onnx.export calls for the op: one talon node with the spec's attributes."""
    name = spec.name

    def translate(*args, **kwargs):
        inputs, attrs = args[: len(spec.inputs)], dict(zip((a.name for a in spec.attributes), args[len(spec.inputs):]))
        attrs = {k: v for k, v in {**attrs, **kwargs}.items() if v is not None}
        if spec.variadic:
            # The exporter's tracer gives a variadic-output op one output, so record the node with its output
            # count directly; list outputs are sequences for the exporter, and folding turns
            # SequenceAt(SequenceConstruct(...)) back into the plain values.
            signature = onnx_ir.schemas.OpSignature.from_op_schema(SCHEMAS[name])
            count = spec.count_outputs(spec.variant(attrs).attrs)
            parts = _evaluator.default()._call_op(signature, dict(zip(spec.inputs, inputs)), attrs, count)
            return _onnx_std.SequenceConstruct(*parts)
        return getattr(talon_opset, name)(*inputs, **attrs, _outputs=len(spec.outputs))

    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in spec.inputs]
    annotations = {}
    for a in spec.attributes:
        params.append(inspect.Parameter(a.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=a.default,
                                        annotation=_PY_TYPE[a.kind]))
        annotations[a.name] = _PY_TYPE[a.kind]
    translate.__signature__ = inspect.Signature(params)
    translate.__annotations__ = annotations
    translate.__name__ = f"talon_{spec.torch_name}"
    return translate


def _define(spec: OpSpec) -> None:
    """Define the spec's torch custom op (once per name; a replaced spec keeps the op, with its new kernel)."""
    if spec.kernel is None:
        return
    schema = torch_schema(spec)
    if spec.name in _OPS:
        if _SCHEMAS[spec.name] != schema:
            raise OpSpecError(f"talon op {spec.name}: torch op talon::{spec.torch_name} is defined as "
                              f"{_SCHEMAS[spec.name]}; a replacement cannot change it to {schema}")
        return
    op = torch.library.custom_op(f"talon::{spec.torch_name}", _call(spec.name), mutates_args=(), schema=schema)
    op.register_fake(_call(spec.name))
    op.register_autograd(_backward(spec.name), setup_context=_save)
    _OPS[spec.name], _SCHEMAS[spec.name] = op, schema


on_register(_define)


def custom_translation_table() -> dict[Any, Callable]:
    """{torch custom op: onnxscript translation} for torch.onnx.export(..., custom_translation_table=...)."""
    ops = torch.ops.talon
    return {getattr(ops, s.torch_name).default: _translation(s) for s in op_specs() if s.name in _OPS}


def export(model: torch.nn.Module, args: tuple, **kwargs: Any) -> onnx.ModelProto:
    """torch.onnx.export (dynamo) emitting talon ops, parameters as named initializers, bodies attached."""
    table = {**custom_translation_table(), **kwargs.pop("custom_translation_table", {})}
    program = torch.onnx.export(model, args, dynamo=True, custom_translation_table=table, optimize=False, **kwargs)
    _optimizer.fold_constants(program.model)  # folding only: no initializer deduplication, no CSE
    onnx_ir.passes.common.RemoveUnusedNodesPass()(program.model)
    return attach_functions(program.model_proto)


lif = torch.ops.talon.lif  # the built-in ops, by their names in this module too
if_ = getattr(torch.ops.talon, "if_")
spiking_affine = torch.ops.talon.spiking_affine
channel_split = torch.ops.talon.channel_split
