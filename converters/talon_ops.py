"""IR primitives that are exactly one talon ONNX op: one call registers both directions from the op spec.

``register_talon_op(cls)`` makes `ir_to_onnx` write an IR node of class `cls` as the talon op of the same name
(onnx_ops.op_spec), and `onnx_to_ir` read that op back into `cls`. The rule: the op's inputs after the data and
its state items are the class's array fields of the same names, and the op's attributes that the class has as
fields are written and read. The built-in neurons and Threshold are registered this way.
"""

from __future__ import annotations

from onnx_ops import DOMAIN, op_spec
from talon.ir import IF, LI, LIF, CubaLIF, Integrator, Threshold
from talon.ir.errors import RegistryError
from talon.ir.primitives import Node, primitive_fields

from .export.neurons import emit_talon_op
from .export.registry import register
from .importers.registry import importer
from .importers.talon_ops import spec_importer


def register_talon_op(cls: type[Node], *, override: bool = False) -> type[Node]:
    """Export and import IR primitive `cls` as the talon op of its class name (register the op spec first).

    RegistryError when there is no such op spec, when its parameter inputs are not array fields of `cls`, or
    when `cls` or the op already has an exporter or importer and override=True is not given."""
    spec = op_spec(cls.__name__)
    if spec is None:
        raise RegistryError(f"no talon op spec named {cls.__name__}: register one with onnx_ops.register_op first")
    arrays = {f.name for f in primitive_fields(cls) if f.metadata.get("kind") == "array"}
    params = spec.inputs[1 + len(spec.state):]
    missing = [p for p in params if p not in arrays]
    if missing or spec.variadic:
        why = f"inputs {missing} are not array fields of {cls.__name__}" if missing else "its output is variadic"
        raise RegistryError(f"talon op {spec.name} cannot be the export of {cls.__name__}: {why}")
    register(cls, override=override)(emit_talon_op)
    importer(cls.__name__, domain=DOMAIN, override=override)(spec_importer(cls))
    return cls


for _cls in (LIF, IF, LI, Integrator, CubaLIF, Threshold):
    register_talon_op(_cls)
