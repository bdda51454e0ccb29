"""The documented exceptions of onnx_ops: every one is a ValueError (onnx_ops does not depend on talon.ir)."""

from __future__ import annotations


class OrtModelError(ValueError):
    """An ONNX model onnx_ops cannot load, complete or run (not a model, an invalid graph, an unknown talon op,
    refused external data, an input it cannot feed); names the file or model and what is wrong."""


class OrtInputError(ValueError):
    """A missing, unknown or wrongly shaped input given to an OrtExecutor; names the input and expected shape."""


class OrtStateError(ValueError):
    """An unknown state key or a wrongly shaped state item; names the node and the expected shape."""


class OpSpecError(ValueError):
    """A talon op spec that cannot be registered: a duplicate name without override=True, or an inconsistent
    declaration (state items not laid out as the convention says, an unknown attribute kind); names the op."""
