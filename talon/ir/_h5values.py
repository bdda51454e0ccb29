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


MAX_DEPTH = 64  # groups a walk may nest (metadata dicts below their top dict); writers refuse deeper
MAX_RANK = 32  # HDF5's limit on a dataset's rank: arrays of more dims cannot be stored
_ITEMSIZES = {"b": (1,), "i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8), "c": (8, 16)}


def storable_array(dtype: np.dtype, shape: tuple[int, ...] | None) -> str | None:
    """Why an array of this dtype and shape cannot go through a .t1c file both ways (None when it can):
    the one rule the writer and the reader share. Numbers are bools, ints up to 64 bits, float16/32/64 and
    complex64/128 (any byte order; read back in native order); at most MAX_RANK dims."""
    if dtype.kind in _ITEMSIZES and dtype.itemsize not in _ITEMSIZES[dtype.kind]:
        return f"{dtype.kind}{dtype.itemsize * 8} numbers ({dtype}) cannot be stored (at most 64-bit numbers)"
    if dtype.kind in "mM":
        return f"time values ({dtype}) cannot be stored"
    if shape is not None:
        if len(shape) > MAX_RANK:
            return f"arrays of {len(shape)} dims cannot be stored (at most {MAX_RANK})"
        if math.prod(d for d in shape if d) * max(dtype.itemsize, 1) >= 2**62:
            return f"shape {tuple(shape)} describes more than 2**62 bytes"
    return None


def _storable(value: np.ndarray | np.generic) -> np.ndarray | np.generic:
    """The array itself when `storable_array` accepts it; BadValue with the reason otherwise."""
    why = storable_array(value.dtype, value.shape)
    if why is not None:
        raise BadValue(why)
    return value


class Budget:
    """The bytes a reader may still allocate for a file's values (its size times an expansion factor)."""

    def __init__(self, limit: int):
        self.limit = self.left = limit

    def charge(self, n: int, what: str) -> None:
        """BadValue when `n` more bytes would exceed the budget."""
        if n > self.left:
            raise BadValue(f"{what} needs {n} bytes, beyond the file's budget of {self.limit} bytes for all its "
                           f"values ({self.left} left)")
        self.left -= n


class Stored:
    """A dataset opened at HDF5's low level: h5py's high-level objects cost ~100 us each, which
    would dominate reading a file of many small datasets."""

    def __init__(self, dsid: h5d.DatasetID, budget: Budget, check_heap: Callable[[h5d.DatasetID, int], None]):
        """BadValue when the datatype or shape cannot be read and written back (`storable_array`) or its
        declared bytes exceed what is left of `budget` (charged here).
        `check_heap(dsid, count)` vets the global heap a vlen string dataset points into before it is read."""
        self.id = dsid
        self.check_heap = check_heap
        try:
            self.dtype = dsid.dtype
        except (ValueError, TypeError) as exc:  # 128-bit ints, time types, corrupt floats
            raise BadValue(f"has an unreadable datatype ({exc})") from None
        self.shape = None if dsid.get_space().get_simple_extent_type() == h5s.NULL else dsid.shape
        self.is_str = h5py.check_string_dtype(self.dtype) is not None
        self.ndim = None if self.shape is None else len(self.shape)
        if not self.is_str:
            self.dtype = self.dtype.newbyteorder("=")  # read in native byte order (HDF5 converts on reading)
        why = None if self.is_str else storable_array(self.dtype, self.shape)
        if why is not None:
            raise BadValue(why)
        size = 0 if self.shape is None else math.prod(self.shape) * self.dtype.itemsize
        budget.charge(size, f"a dataset of shape {self.shape} and type {self.dtype}")

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
        return _storable(value)
    if kind in ("ints", "dims", "int"):
        try:
            return np.asarray(value, dtype=np.int64)
        except OverflowError as exc:
            raise BadValue(f"{value!r:.80} does not fit in int64 ({exc})") from None
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
        if ds.dtype == np.uint64 and value.size and value.max() > np.iinfo(np.int64).max:
            raise BadValue(f"holds {value.max()}, beyond int64 (integer fields are int64)")
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
        if key.count("/") > MAX_DEPTH:  # also ends a dict that contains itself
            raise BadValue(f"metadata {key[:200]!r}...: nested more than {MAX_DEPTH} levels deep (the reader's limit)")
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
                return _storable(value)
            if value.dtype.kind == "U":
                return encode_str(value)
    except RecursionError:
        raise BadValue(f"metadata {key!r}: a list that contains itself cannot be stored") from None
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
