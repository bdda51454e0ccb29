"""onnx_ops' errors, re-exported from the one dependency-free hierarchy in :mod:`talon.errors`.

OrtModelError, OrtInputError and OrtStateError are talon.errors.ModelError, InputError and StateError: the
torch and onnxruntime executors raise the same types.
"""

from talon.errors import ModelError, OpSpecError, OrtInputError, OrtModelError, OrtStateError

__all__ = ["ModelError", "OrtModelError", "OrtInputError", "OrtStateError", "OpSpecError"]
