"""OpSchemas of the `talon` ONNX domain (version 1), derived from the op specs and registered with onnx.

Registering gives `onnx.checker.check_model(full_check=True)` and `onnx.shape_inference` the ops'
arity, attributes and output types/shapes, and lets onnxscript (and so the dynamo exporter) emit them.
"""

from __future__ import annotations

import onnx
from onnx.defs import OpSchema

from .spec import DOMAIN, VERSION, OpSpec, on_register

_T = [("T", ["tensor(float)", "tensor(double)"], "float32 (float64 accepted)")]
_KIND = {"int": OpSchema.AttrType.INT, "ints": OpSchema.AttrType.INTS, "float": OpSchema.AttrType.FLOAT,
         "str": OpSchema.AttrType.STRING}

SCHEMAS: dict[str, OpSchema] = {}  # every registered talon op's schema, by op name


def schema_of(spec: OpSpec) -> OpSchema:
    """The OpSchema of a spec: its inputs, outputs (variadic where declared), attributes and shape rule."""
    single, variadic = OpSchema.FormalParameterOption.Single, OpSchema.FormalParameterOption.Variadic
    attributes = []
    for a in spec.attributes:
        if a.default is not None:
            attributes.append(OpSchema.Attribute(a.name, onnx.helper.make_attribute(a.name, a.default), a.doc))
        else:
            attributes.append(OpSchema.Attribute(a.name, _KIND[a.kind], a.doc, required=a.required))
    schema = OpSchema(
        spec.name,
        DOMAIN,
        VERSION,
        doc=spec.doc,
        inputs=[OpSchema.FormalParameter(n, "T", param_option=single) for n in spec.inputs],
        outputs=[OpSchema.FormalParameter(n, "T", param_option=variadic if spec.variadic else single)
                 for n in spec.outputs],
        type_constraints=_T,
        attributes=attributes,
    )
    schema.set_type_and_shape_inference_function(spec.infer)
    return schema


def _register(spec: OpSpec) -> None:
    """Register (or replace) the spec's schema with onnx."""
    schema = schema_of(spec)
    if onnx.defs.has(spec.name, VERSION, DOMAIN):
        onnx.defs.deregister_schema(spec.name, VERSION, DOMAIN)
    onnx.defs.register_schema(schema)
    SCHEMAS[spec.name] = schema


def register_schemas() -> None:
    """Register every talon schema with onnx once (idempotent)."""
    for name, schema in SCHEMAS.items():
        if not onnx.defs.has(name, VERSION, DOMAIN):
            onnx.defs.register_schema(schema)


on_register(_register)
