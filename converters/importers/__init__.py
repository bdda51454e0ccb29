"""ONNX importers: one registry keyed by (domain, op type, opset range) and one small module per op family."""

from . import (  # noqa: F401 (register)
    activations, arithmetic, conv, gates, layout, linear, nir_ops, norms, pooling, resize, routing, shape, talon_ops,
)
from .context import Alias, Emit, Fusion, NodeContext, Options, Unsupported
from .registry import fusion, fusion_matchers, importer, lookup, registered_ops

__all__ = ["Alias", "Emit", "Fusion", "NodeContext", "Options", "Unsupported", "importer", "fusion", "lookup",
           "fusion_matchers", "registered_ops"]
