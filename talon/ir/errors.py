"""Typed errors of the TALON IR layer; each is a ValueError so callers can catch broadly."""

from __future__ import annotations


class TalonError(Exception):
    """Base of every error this project raises on purpose."""


class PrimitiveError(TalonError, ValueError):
    """A primitive was built with an invalid field; names the primitive and the field."""

    def __init__(self, primitive: str, field: str, message: str):
        self.primitive = primitive
        self.field = field
        super().__init__(f"{primitive}.{field}: {message}")


class GraphError(TalonError, ValueError):
    """A graph's structure is invalid (missing nodes, duplicate edges, cycles, shape mismatches)."""


class TalonFormatError(TalonError, ValueError):
    """A .t1c file cannot be read; names the file and, where it applies, the node and field."""

    def __init__(self, path: str, message: str, node: str | None = None, field: str | None = None):
        self.path = str(path)
        self.node = node
        self.field = field
        where = self.path
        if node is not None:
            where += f": node {node!r}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class RegistryError(TalonError, ValueError):
    """A registration is refused: the key (primitive name, class, op) is already registered and override=True
    was not given, or the entry is not of the kind the registry holds; names the registry and the key."""
