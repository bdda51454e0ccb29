"""numpy implementations of the talon ops for `onnx.reference.ReferenceEvaluator`, one OpRun class per op spec
(the specs' `reference` functions, written independently of the function bodies).

Use ``ReferenceEvaluator(model, new_ops=REFERENCE_OPS)``, or :func:`reference_evaluator`.
"""

from __future__ import annotations

import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from .spec import DOMAIN, OpSpec, on_register

REFERENCE_OPS: list[type[OpRun]] = []  # one OpRun class per registered talon op


def reference_op(spec: OpSpec) -> type[OpRun]:
    """An OpRun class running the spec's numpy reference; omitted attributes take the spec's defaults."""
    defaults = spec.defaults()

    def _run(self, *inputs, **attrs):
        given = {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in attrs.items() if v is not None}
        return tuple(spec.reference(*inputs, **{**defaults, **given}))

    return type(spec.name, (OpRun,), {"op_domain": DOMAIN, "_run": _run, "__doc__": spec.doc})


def _register(spec: OpSpec) -> None:
    REFERENCE_OPS[:] = [op for op in REFERENCE_OPS if op.__name__ != spec.name] + [reference_op(spec)]


def reference_evaluator(model: onnx.ModelProto | str, **kwargs) -> ReferenceEvaluator:
    """A ReferenceEvaluator running talon nodes with the numpy references of the op specs."""
    return ReferenceEvaluator(model, new_ops=REFERENCE_OPS, **kwargs)


on_register(_register)
