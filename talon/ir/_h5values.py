"""Encoding of field and metadata values as HDF5 datasets, and the reverse (no pickle, no eval).

Encoders return numpy values that ``h5py.Group.create_dataset(name, data=...)`` writes as the
``.t1c`` layout prescribes; a nested dict is a group. Decoders take a :class:`Stored` dataset and raise
:class:`BadValue` with a message when it does not hold what the field kind requires.

Metadata values: dict (a group), str, bool, int (int64), float (float64), None (an empty
dataset), numpy scalars and arrays of numbers or bools (dtype kept), arrays of strings. Lists and
tuples are stored as ``np.asarray(value)`` and read back as that array. numpy int64/float64/bool
scalars read back as Python int/float/bool, 0-d arrays as numpy scalars, and string arrays with
the width of their longest item.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import h5py
import numpy as np
from h5py import h5d, h5s

STR = h5py.string_dtype("utf-8")
NUMERIC = "biuf"


_ESCAPES = {"%": "%25", "/": "%2F", "\x00": "%00"}
_UNESCAPE = re.compile("%(25|2F|2E|00)")


def escape_name(name: str) -> str:
    """The HDF5 link name of a node name or metadata key: '%', '/' and NUL are percent-encoded,
    and the name '.' is written '%2E'; every other name is kept verbatim. BadValue when the name
    cannot be stored at all (not encodable as UTF-8)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadValue(f"name {name!r} is not valid UTF-8: {exc}") from None
    if name == ".":
        return "%2E"
    return "".join(_ESCAPES.get(c, c) for c in name) if any(c in _ESCAPES for c in name) else name


def unescape_name(stored: str) -> str:
    """The node name or metadata key of an HDF5 link name (the reverse of :func:`escape_name`)."""
    return _UNESCAPE.sub(lambda m: chr(int(m.group(1), 16)), stored)


class BadValue(ValueError):
    """A value cannot be encoded, or a dataset does not hold what its field needs."""


class Stored:
    """A dataset opened at HDF5's low level: h5py's high-level objects cost ~100 us each, which
    would dominate reading a file of many small datasets."""

    def __init__(self, dsid: h5d.DatasetID, max_bytes: int, check_heap: Callable[[h5d.DatasetID, int], None]):
        """BadValue when h5py cannot map the datatype or the declared size exceeds `max_bytes` (the file's
        size: the format stores data unfiltered, so a larger dataset is corrupt and must not be allocated).
        `check_heap(dsid, count)` vets the global heap a vlen string dataset points into before it is read."""
        self.id = dsid
        self.check_heap = check_heap
        try:
            self.dtype = dsid.dtype
        except ValueError as exc:  # a corrupt float type: "Insufficient precision in available types ..."
            raise BadValue(f"has an unreadable datatype ({exc})") from None
        self.shape = None if dsid.get_space().get_simple_extent_type() == h5s.NULL else dsid.shape
        self.is_str = h5py.check_string_dtype(self.dtype) is not None
        self.ndim = None if self.shape is None else len(self.shape)
        size = 0 if self.shape is None else math.prod(self.shape) * self.dtype.itemsize
        if size > max_bytes:
            raise BadValue(f"declares shape {self.shape} ({size} bytes), more than the whole file ({max_bytes} bytes)")

    def read(self) -> np.ndarray:
        """The whole dataset as an array of its own dtype (0-d for a scalar)."""
        if self.is_str and h5py.check_string_dtype(self.dtype).length is None:
            self.check_heap(self.id, math.prod(self.shape))
        out = np.empty(self.shape, self.dtype)
        self.id.read(h5s.ALL, h5s.ALL, out)
        return out

    def text(self) -> str | np.ndarray:
        """A string dataset as str (scalar) or an array of str."""
        try:
            items = [item.decode("utf-8") for item in self.read().reshape(-1)]
        except UnicodeDecodeError as exc:
            raise BadValue(f"holds invalid UTF-8 ({exc})") from None
        return items[0] if self.ndim == 0 else np.array(items, dtype=str).reshape(self.shape)


def encode_str(value: str) -> np.ndarray:
    """A scalar (or array of) variable-length UTF-8 string(s)."""
    for item in np.asarray(value, dtype=object).reshape(-1):
        if "\x00" in item:
            raise BadValue(f"strings cannot hold NUL characters: {item!r}")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadValue(f"string {item!r} is not valid UTF-8: {exc}") from None
    return np.array(value, dtype=STR)


def encode_field(kind: str, value: Any) -> Any:
    """The dataset value of a canonical primitive field of the given kind."""
    if kind == "array":
        return value
    if kind in ("ints", "dims", "int"):
        return np.asarray(value, dtype=np.int64)
    if kind == "float":
        return np.float64(value)
    if kind == "bool":
        return np.bool_(value)
    if kind == "str":
        return encode_str(value)
    raise BadValue(f"unknown field kind {kind!r}")


def decode_field(kind: str, ds: Stored) -> Any:
    """The field value held by a dataset, checked against the field's kind and rank."""
    if ds.shape is None:
        raise BadValue("is an empty dataset")
    if kind == "str":
        if not ds.is_str or ds.ndim:
            raise BadValue(f"expected a scalar string, got {_describe(ds)}")
        return ds.text()
    if ds.is_str or ds.dtype.kind not in NUMERIC:
        raise BadValue(f"expected {_KIND_TEXT[kind]}, got {_describe(ds)}")
    if kind == "array":
        return ds.read()
    rank, kinds = _KIND_RULES[kind]
    if ds.ndim > rank or ds.dtype.kind not in kinds:
        raise BadValue(f"expected {_KIND_TEXT[kind]}, got {_describe(ds)}")
    value = ds.read()
    if kind in ("ints", "dims", "int"):
        return value if ds.dtype.kind == "f" else value.tolist()  # the primitive checks that floats are integral
    return {"float": float, "bool": bool}[kind](value)


# (highest rank, dtype kinds) a dataset may have for each scalar-ish field kind. Integer kinds also take
# floats (another writer may store 2.0 for 2); the primitive refuses values that are not integral.
_KIND_RULES = {"ints": (1, "iuf"), "dims": (1, "iuf"), "int": (0, "iuf"), "float": (0, "iuf"), "bool": (0, "biu")}
_KIND_TEXT = {
    "array": "a numeric array", "ints": "a 1-D integer array", "dims": "an integer or 1-D integer array",
    "int": "a scalar integer", "float": "a scalar number", "bool": "a scalar bool",
}


def _describe(ds: Stored) -> str:
    kind = "string" if ds.is_str else str(ds.dtype)
    return f"{kind} of shape {ds.shape}"


def encode_metadata(value: Any, key: str) -> Any:
    """The dataset value of a metadata item, or a dict for a group; BadValue names the key path."""
    if isinstance(value, dict):
        return {_metadata_key(k, key): encode_metadata(v, f"{key}/{k}") for k, v in value.items()}
    try:
        if value is None:
            return h5py.Empty("i1")
        if isinstance(value, (bool, np.bool_)):
            return np.bool_(value)
        if isinstance(value, int):
            return np.int64(value)
        if isinstance(value, float):
            return np.float64(value)
        if isinstance(value, str):
            return encode_str(value)
        if isinstance(value, (list, tuple)):
            items = value
            value = np.asarray(value)
            if value.dtype.kind == "U" and not all(isinstance(v, str) for v in _flat(items)):
                raise BadValue("lists mixing strings with other values cannot be stored")
        if isinstance(value, (np.ndarray, np.generic)):
            if value.dtype.kind in NUMERIC + "c":
                return value
            if value.dtype.kind == "U":
                return encode_str(value)
    except OverflowError as exc:
        raise BadValue(f"metadata {key!r}: {value!r} does not fit in int64 ({exc})") from None
    except BadValue as exc:
        raise BadValue(f"metadata {key!r}: {exc}") from None
    except ValueError as exc:  # ragged lists
        raise BadValue(f"metadata {key!r}: cannot store {value!r} ({exc})") from None
    raise BadValue(
        f"metadata {key!r}: cannot store a value of type {type(value).__name__} ({value!r:.80}); "
        "supported: dict, str, bool, int, float, None, numpy scalars and arrays of numbers, bools or strings"
    )


def _flat(items) -> list:
    """The leaves of nested lists and tuples."""
    return [leaf for item in items for leaf in (_flat(item) if isinstance(item, (list, tuple)) else [item])]


def _metadata_key(key: Any, parent: str) -> str:
    """The link name of a metadata key; BadValue naming the parent when it cannot be stored."""
    if not isinstance(key, str) or not key:
        raise BadValue(f"metadata {parent!r}: keys must be non-empty strings, got {key!r}")
    try:
        return escape_name(key)
    except BadValue as exc:
        raise BadValue(f"metadata {parent!r}: {exc}") from None


def decode_metadata_value(ds: Stored) -> Any:
    """The metadata value held by a dataset (the reverse of :func:`encode_metadata`)."""
    if ds.shape is None:
        return None
    if ds.is_str:
        return ds.text()
    if ds.dtype.kind not in NUMERIC + "c":
        raise BadValue(f"unsupported metadata dataset {_describe(ds)}")
    value = ds.read()
    if ds.ndim:
        return value
    value = value[()]
    if ds.dtype == np.bool_:
        return bool(value)
    if ds.dtype == np.int64:
        return int(value)
    if ds.dtype == np.float64:
        return float(value)
    return value
