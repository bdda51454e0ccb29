"""The converters' errors and warnings, re-exported from the one hierarchy in :mod:`talon.errors`."""

from talon.errors import HINT, ApproximationWarning, ConversionError, UnsupportedNode, UnsupportedOperatorError

__all__ = ["HINT", "ApproximationWarning", "ConversionError", "UnsupportedNode", "UnsupportedOperatorError"]
