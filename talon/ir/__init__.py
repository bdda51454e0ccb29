"""TALON IR: primitive nodes, the Graph, and the .t1c file format (depends on numpy and h5py only)."""

from .errors import GraphError, PrimitiveError, RegistryError, TalonError, TalonFormatError
from .graph import Edge, Graph
from .primitives import *  # noqa: F401,F403  (every built-in primitive)
from .primitives import __all__ as _primitive_names
from .serialization import read, write

__all__ = [
    "Graph", "Edge", "read", "write", "TalonError", "PrimitiveError", "GraphError", "TalonFormatError", "RegistryError",
    *_primitive_names,
]
