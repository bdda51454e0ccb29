"""Atomic creation of a file (the project's one way to write files): it is written aside, then put in place
in one step. `atomic_file` yields a binary file; `atomic_h5_file` an h5py.File on it.

A failing or interrupted write never leaves a partial file and never damages an existing one.
On Linux the file has no name until it is complete (``O_TMPFILE``), so even SIGKILL leaves no
stray file; it is then hard-linked into the folder and renamed onto the target. Elsewhere (or on
file systems without ``O_TMPFILE``) a hidden temporary file in the same folder is used and removed
on any exception (only SIGKILL can leave it behind). When an existing file is replaced, the
anonymous file gets a hidden temporary name for the instant between linkat() and rename(). The
data is not fsync'ed: this protects against crashed or killed processes, not against power loss.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from typing import BinaryIO, Iterator

import h5py

_NO_TMPFILE = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a new, unbuffered binary file that replaces `path` atomically when the block succeeds."""
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    fd = open_anonymous(folder)
    writer = _write_named(target) if fd is None else _write_anonymous(fd, target)
    with writer as raw:
        yield raw


@contextlib.contextmanager
def atomic_h5_file(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Yield a new writable h5py.File that replaces `path` atomically when the block succeeds."""
    # HDF5 cannot open /proc/self/fd/N by name (it resolves the link), so it writes through the Python file
    # object; large datasets go down in single write calls, at native speed.
    with atomic_file(path) as raw:
        with h5py.File(raw, "w") as h5:
            yield h5


def open_anonymous(folder: str) -> int | None:
    """An unnamed read-write file in `folder` (Linux O_TMPFILE), or None where unsupported."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, flag | os.O_RDWR, 0o666)
    except OSError as exc:
        if exc.errno in _NO_TMPFILE:
            return None
        raise


def _temp_name(target: str) -> str:
    """A hidden, unique file name next to the target."""
    return f".{os.path.basename(target)}.{secrets.token_hex(6)}.tmp"


@contextlib.contextmanager
def _write_anonymous(fd: int, target: str) -> Iterator[BinaryIO]:
    with os.fdopen(fd, "w+b", buffering=0) as raw:
        yield raw
        _link_into_place(raw.fileno(), target)


def _link_into_place(fd: int, target: str) -> None:
    """Give the unnamed file `fd` the name `target`, replacing any existing file atomically."""
    source = f"/proc/self/fd/{fd}"
    dir_fd = os.open(os.path.dirname(target), os.O_RDONLY | os.O_DIRECTORY)
    try:
        name = os.path.basename(target)
        try:  # passing dst_dir_fd makes Python call linkat(..., AT_SYMLINK_FOLLOW)
            os.link(source, name, dst_dir_fd=dir_fd, follow_symlinks=True)
            return
        except FileExistsError:
            pass
        temp = _temp_name(target)
        os.link(source, temp, dst_dir_fd=dir_fd, follow_symlinks=True)
        try:
            os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            os.unlink(temp, dir_fd=dir_fd)
            raise
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _write_named(target: str) -> Iterator[BinaryIO]:
    temp = os.path.join(os.path.dirname(target), _temp_name(target))
    fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)  # mode honours the umask
    try:
        with os.fdopen(fd, "w+b", buffering=0) as raw:
            yield raw
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
