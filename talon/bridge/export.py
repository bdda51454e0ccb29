"""PyTorch to TALON IR: torch.onnx.export (dynamo, talon custom ops) composed with converters.onnx_to_ir.

Modules of a type in `custom_map` pass through the export opaquely: while exporting, their forward is a
`talon_bridge::opaque` custom op written as one ONNX node (domain talon.custom, attribute `key` = the
module's qualified name), which onnx_to_ir turns into the IR node custom_map made for the module.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Mapping

import onnx
import torch
from onnx.defs import OpSchema
from onnxscript import values as _osv

from converters import onnx_to_ir
from converters.importers.talon_ops import CUSTOM_DOMAIN, CUSTOM_OP
from talon.errors import ConversionError, require
from talon.ir import Graph
from talon.ir.primitives import Node

from .snntorch_support import replace_snntorch_modules


def _register_custom_schema() -> None:
    """The schema the exporter needs to emit talon.custom::Module (one tensor in, one out, a `key`)."""
    if onnx.defs.has(CUSTOM_OP, 1, CUSTOM_DOMAIN):
        return
    onnx.defs.register_schema(OpSchema(
        CUSTOM_OP, CUSTOM_DOMAIN, 1, doc="An opaque user module, converted by bridge.to_ir's custom_map.",
        inputs=[OpSchema.FormalParameter("X", "T")], outputs=[OpSchema.FormalParameter("Y", "T")],
        type_constraints=[("T", ["tensor(float)", "tensor(double)"], "float tensors")],
        attributes=[OpSchema.Attribute("key", OpSchema.AttrType.STRING, "qualified module name")]))


_register_custom_schema()
_CUSTOM = _osv.Opset(CUSTOM_DOMAIN, 1)
_OPAQUE_MODULES: dict[str, torch.nn.Module] = {}  # key -> module, only while an export runs
_OPAQUE_SHAPES: dict[str, torch.Size] = {}


@torch.library.custom_op("talon_bridge::opaque", mutates_args=())
def _opaque(x: torch.Tensor, key: str) -> torch.Tensor:
    """Runs the user's module registered under `key` (outside export)."""
    return _OPAQUE_MODULES[key](x).clone()


@_opaque.register_fake
def _(x: torch.Tensor, key: str) -> torch.Tensor:
    return x.new_empty(_OPAQUE_SHAPES[key])


def _opaque_onnx(x, key: str):
    return getattr(_CUSTOM, CUSTOM_OP)(x, key=key)



@contextlib.contextmanager
def _opaque_modules(model: torch.nn.Module, sample: Any, custom_map: Mapping[type, Callable]) -> Iterator[dict[str, Node]]:
    """Patch the forward of every custom_map module to the opaque op; yields {qualified name: IR node}."""
    targets = {name: m for name, m in model.named_modules() if type(m) in custom_map and name}
    if not targets:
        yield {}
        return
    hooks = [m.register_forward_hook(lambda mod, args, out, key=name: _OPAQUE_SHAPES.__setitem__(key, out.shape))
             for name, m in targets.items()]
    try:
        with torch.no_grad():
            model(*sample)
    finally:
        for h in hooks:
            h.remove()
    originals = {name: m.forward for name, m in targets.items()}
    for name, m in targets.items():
        _OPAQUE_MODULES[name] = _Original(originals[name])
        m.forward = lambda x, key=name: torch.ops.talon_bridge.opaque(x, key)
    try:
        yield {name: custom_map[type(m)](m) for name, m in targets.items()}
    finally:
        for name, m in targets.items():
            del m.forward
            _OPAQUE_MODULES.pop(name, None)


class _Original:
    """The module's own forward, callable by the opaque op."""

    def __init__(self, forward: Callable):
        self.forward = forward

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)


def _translations() -> dict:
    from onnx_ops.torch_ops import custom_translation_table  # registers torch.ops.talon.* for export

    return {**custom_translation_table(), torch.ops.talon_bridge.opaque.default: _opaque_onnx}


def to_ir(
    model: torch.nn.Module,
    sample: torch.Tensor | tuple,
    spiking: bool = False,
    weight_bits: int = 8,
    accumulator_bits: int = 16,
    spike_mode: str = "binary",
    custom_map: Mapping[type, Callable[[torch.nn.Module], Node]] | None = None,
) -> Graph:
    """Export a PyTorch model traced on `sample` to a TALON IR graph (nodes named after the modules).

    spiking=True makes dense layers SpikingAffine with weight_bits, accumulator_bits and spike_mode;
    custom_map maps a module type to a callable returning the IR node for such a module.
    """
    require(model, torch.nn.Module, "to_ir: model", ConversionError)
    args = sample if isinstance(sample, tuple) else (sample,)
    for i, arg in enumerate(args):
        require(arg, torch.Tensor, f"to_ir: sample[{i}]", ConversionError)
    model = replace_snntorch_modules(model)
    was_training = model.training
    model.eval()
    try:
        with _opaque_modules(model, args, custom_map or {}) as custom_nodes:
            program = torch.onnx.export(model, args, dynamo=True, optimize=False, verbose=False,
                                        custom_translation_table=_translations())
        return onnx_to_ir(program.model_proto, spiking=spiking, weight_bits=weight_bits,
                          accumulator_bits=accumulator_bits, spike_mode=spike_mode, custom_nodes=custom_nodes)
    finally:
        model.train(was_training)
