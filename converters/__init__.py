"""Converters between ONNX, TALON IR and other interchange formats."""
