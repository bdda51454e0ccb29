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


def _restore(value: Any) -> Any:
    if isinstance(value, list):
        return [_restore(v) for v in value]
    if isinstance(value, dict):
        if "__array__" in value:
            return np.array(value["__array__"], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
        if "__scalar__" in value:
            return np.dtype(value["dtype"]).type(value["__scalar__"])
        if "__tuple__" in value:
            return tuple(_restore(v) for v in value["__tuple__"])
        return {k: _restore(v) for k, v in value.items()}
    return value


def encode(value: Any) -> str:
    """A JSON string carrying `value` exactly (arrays keep dtype and shape)."""
    return json.dumps(_plain(value))


def decode(text: str) -> Any:
    """The value `encode` wrote."""
    return _restore(json.loads(text))
