"""TALON: convert spiking and conventional networks between PyTorch, ONNX and TALON IR, and run them."""

__version__ = "0.1.0"
