"""The `talon` command line (console script `talon`, or `python -m talon`)."""

from .app import cli, main

__all__ = ["cli", "main"]
