"""The check every reader makes before opening a path: it must name a regular file (a FIFO or device would
block the reader forever or stream without end)."""

from __future__ import annotations

import os
import stat
from typing import Callable


def require_regular_file(path: str | os.PathLike, error: Callable[[str], Exception]) -> None:
    """FileNotFoundError when `path` does not exist; `error(reason)` when it is not a regular file."""
    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(2, "No such file", name) from None
    except OSError as exc:
        raise error(f"cannot be opened ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise error(f"is {kind}; a model must be a regular file")
