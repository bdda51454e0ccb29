"""Reading and writing .t1c files (HDF5). Placeholder until the serialization work lands."""

from __future__ import annotations


def write(path, graph) -> None:  # pragma: no cover - replaced by the real implementation
    raise NotImplementedError


def read(path):  # pragma: no cover - replaced by the real implementation
    raise NotImplementedError
