"""Atomic creation of a file (the project's one way to write files): it is written aside, then put in place
in one step. `atomic_file` yields a binary file; `atomic_h5_file` an h5py.File on it.

A failing or interrupted write never leaves a partial file and never damages an existing one.
On Linux the file has no name until it is complete (``O_TMPFILE``), so even SIGKILL leaves no
stray file; it is then hard-linked into the folder and renamed onto the target. Elsewhere (or on
file systems without ``O_TMPFILE``) a hidden temporary file in the same folder is used and removed
on any exception. When an existing file is replaced, the anonymous file gets a hidden temporary
name for the instant between linkat() and rename(). Every file being written holds a shared flock;
each write first sweeps the hidden temporary files of its target that no live writer holds (what a
SIGKILL left behind), and `remove_unless_held` lets callers sweep their own files the same way. A
replaced file's permission bits are kept. The data is not fsync'ed: this protects against crashed or
killed processes, not against power loss.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import stat
from typing import BinaryIO, Iterator

import h5py

_NO_TMPFILE = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, hold: contextlib.ExitStack | None = None) -> Iterator[BinaryIO]:
    """Yield a new, unbuffered binary file that replaces `path` atomically when the block succeeds.

    With `hold`, the file's shared lock stays held until that stack closes (so that `remove_unless_held`
    leaves it alone while the caller still needs it, e.g. until a file naming it is in place)."""
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    _sweep_temps(target)
    fd = open_anonymous(folder)
    writer = _write_named(target) if fd is None else _write_anonymous(fd, target)
    with writer as raw:
        fcntl.flock(raw.fileno(), fcntl.LOCK_SH)
        if hold is not None:
            hold.callback(os.close, os.dup(raw.fileno()))  # the dup shares the lock
        yield raw
        _keep_mode(raw.fileno(), target)


def _keep_mode(fd: int, target: str) -> None:
    """Give the new file the permission bits of the file it replaces (none: the umask's default stays)."""
    with contextlib.suppress(FileNotFoundError):
        os.fchmod(fd, stat.S_IMODE(os.stat(target).st_mode))


def remove_unless_held(path: str, starts_with: bytes = b"") -> bool:
    """Remove `path` unless a writer (or a caller's `hold`) still holds its lock or it does not begin with
    `starts_with` (a mark of the files a caller wrote itself); True when removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if starts_with and os.pread(fd, len(starts_with), 0) != starts_with:
            return False
    except OSError:
        return False
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return True
    finally:
        os.close(fd)


def _sweep_temps(target: str) -> None:
    """Remove the hidden temporary files of `target` that no live writer holds (left by a kill)."""
    folder, base = os.path.split(target)
    ours = re.compile(r"\." + re.escape(base) + r"\.[0-9a-f]{12}\.tmp")
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if ours.fullmatch(name):
                remove_unless_held(os.path.join(folder, name))


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
    while True:
        temp = os.path.join(os.path.dirname(target), _temp_name(target))
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)  # mode honours the umask
        fcntl.flock(fd, fcntl.LOCK_SH)
        if os.fstat(fd).st_nlink:
            break
        os.close(fd)  # a sweep removed it between open and lock: take another name
    try:
        with os.fdopen(fd, "w+b", buffering=0) as raw:
            yield raw
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
