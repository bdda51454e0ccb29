"""PyTorch <-> TALON IR: torch modules per primitive, graph executors, and to_ir."""

from .export import to_ir

__all__ = ["to_ir"]
