"""Exact JSON encoding of IR field and metadata values for ONNX metadata_props.

numpy arrays become ``{"__array__": [...flat...], "dtype": "float32", "shape": [...]}``, numpy scalars
``{"__scalar__": v, "dtype": ...}``, tuples ``{"__tuple__": [...]}``; dicts (string keys), lists, str,
int, float, bool and None are plain JSON. `decode(encode(v))` equals `v` under talon.ir's `values_equal`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from talon.errors import ConversionError


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__array__": value.reshape(-1).tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return {"__scalar__": value.item(), "dtype": value.dtype.str}
    if isinstance(value, tuple):
        return {"__tuple__": [_plain(v) for v in value]}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise ConversionError(f"metadata keys must be strings, got {bad!r}")
        return {k: _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise ConversionError(f"cannot encode a {type(value).__name__} value in ONNX metadata: {value!r}")


BYTES_PER_CHAR = 16  # a decoded value may take this many bytes per character of its JSON text (documented)


def _dtype(text: Any, count: int, budget: list[int]) -> np.dtype:
    """The declared numpy dtype of `count` items, charged to `budget`; ValueError for object or record dtypes
    and for ones larger than the text could describe (a few hundred bytes must not ask for gigabytes)."""
    dtype = np.dtype(text)
    if dtype.kind not in "biufcSU":
        raise ValueError(f"dtype {dtype} cannot be decoded")
    budget[0] -= dtype.itemsize * max(count, 1)
    if budget[0] < 0:
        raise ValueError(f"dtype {dtype} for {count} items needs more memory than its JSON text can describe")
    return dtype


def _restore(value: Any, budget: list[int]) -> Any:
    if isinstance(value, list):
        return [_restore(v, budget) for v in value]
    if isinstance(value, dict):
        if "__array__" in value:
            items = value["__array__"]
            return np.array(items, dtype=_dtype(value["dtype"], len(items), budget)).reshape(value["shape"])
        if "__scalar__" in value:
            return _dtype(value["dtype"], 1, budget).type(value["__scalar__"])
        if "__tuple__" in value:
            return tuple(_restore(v, budget) for v in value["__tuple__"])
        return {k: _restore(v, budget) for k, v in value.items()}
    return value


def encode(value: Any) -> str:
    """A JSON string carrying `value` exactly (arrays keep dtype and shape)."""
    return json.dumps(_plain(value))


def decode(text: str) -> Any:
    """The value `encode` wrote; ValueError when it would take more than BYTES_PER_CHAR bytes per character."""
    return _restore(json.loads(text), [BYTES_PER_CHAR * len(text) + 4096])
