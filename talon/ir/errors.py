"""The IR layer's errors, re-exported from the one hierarchy in :mod:`talon.errors`."""

from ..errors import GraphError, PrimitiveError, RegistryError, TalonError, TalonFormatError

__all__ = ["TalonError", "PrimitiveError", "GraphError", "TalonFormatError", "RegistryError"]
