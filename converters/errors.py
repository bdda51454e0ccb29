"""Errors raised by the converters."""

from talon.ir.errors import TalonError


class UnsupportedOperatorError(TalonError, ValueError):
    """Placeholder; the ONNX import work defines the full error listing every unsupported node."""
