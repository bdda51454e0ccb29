"""The torch executors' errors, re-exported from the one hierarchy in :mod:`talon.errors`."""

from ..errors import ExecutorError, InputError, StateError

__all__ = ["ExecutorError", "InputError", "StateError"]
