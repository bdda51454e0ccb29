"""Typed errors of the torch executors: bad inputs and bad state dicts, each naming the node and the shape."""

from __future__ import annotations

from ..ir.errors import TalonError


class ExecutorError(TalonError, ValueError):
    """An executor was called with something it cannot run."""


class InputError(ExecutorError):
    """An input tensor is missing, unknown, or of the wrong shape; names the Input node and its expected shape."""


class StateError(ExecutorError):
    """A state dict has an unknown key or a membrane of the wrong shape; names the node and the expected shape."""
