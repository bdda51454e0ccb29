"""Converters between ONNX, TALON IR and other interchange formats (depends on talon.ir and onnx_ops)."""

from .convert import convert
from .coverage import ConversionReport
from .errors import ApproximationWarning, ConversionError, UnsupportedOperatorError
from .ir_to_onnx import ir_to_onnx, save_onnx
from .nir import NIRConversionWarning, ir_to_nir, nir_to_ir, save_nir
from .onnx_to_ir import onnx_to_ir
from .talon_ops import register_talon_op

__all__ = [
    "convert", "ConversionError", "ApproximationWarning", "ir_to_onnx", "save_onnx", "onnx_to_ir", "UnsupportedOperatorError",
    "nir_to_ir", "ir_to_nir", "save_nir", "NIRConversionWarning", "register_talon_op", "ConversionReport",
]
