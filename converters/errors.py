"""The converters' errors and warnings, re-exported from the one hierarchy in :mod:`talon.errors`."""

from talon.errors import (
    EXPORT_HINT,
    HINT,
    ApproximationWarning,
    ConversionError,
    UnsupportedNode,
    UnsupportedOperatorError,
)

__all__ = ["EXPORT_HINT", "HINT", "ApproximationWarning", "ConversionError", "UnsupportedNode",
           "UnsupportedOperatorError"]
