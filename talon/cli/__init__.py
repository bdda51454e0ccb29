"""The `talon` command line (console script `talon`, or `python -m talon`)."""

from . import analyze, compare  # noqa: F401  (they register their commands on `cli`)
from .app import cli, main

__all__ = ["cli", "main"]
