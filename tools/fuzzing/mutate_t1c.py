"""Mutations of .t1c files: raw bytes, and HDF5 structure (deleted, renamed, retyped, reshaped objects,
odd names, huge declared shapes, links and external storage), applied with h5py to a copy of the file."""

from __future__ import annotations

import random
from typing import Callable

import h5py
import numpy as np

from talon.ir.primitives import list_primitives

from .rawbytes import mutate_bytes

STR = h5py.string_dtype("utf-8")
ODD_NAMES = ["x", "type", "%2F", "%zz", "%", "%00", "a.b", "..", ".", "é", "\u202e", " ", "nodes", "input",
             "L" * 300, "%2E", "edges"]
INTS = [0, -1, 1, 2, 3, -(2**63), 2**63 - 1, 2**31, 2**40, 7]
FLOATS = [0.0, -0.0, -1.0, 1e-45, 1e308, float("nan"), float("inf"), float("-inf"), 2.0]
STRINGS = ["", "Graph", "Input", "LIF", "binary", "concat", "nearest", "x" * 5000, "\u00e9\u20ac", "Node", "__class__"]


def _objects(h5: h5py.File) -> tuple[list[str], list[str]]:
    """Paths of every group and every dataset (hard links only, as visititems sees them)."""
    groups, datasets = [], []
    h5.visititems(lambda name, obj: (groups if isinstance(obj, h5py.Group) else datasets).append(name))
    return groups, datasets


def _pick(rng: random.Random, items: list[str]) -> str | None:
    return rng.choice(items) if items else None


def _replace(h5: h5py.File, path: str, make: Callable[[h5py.Group, str], object]) -> None:
    parent, _, name = path.rpartition("/")
    group = h5[parent] if parent else h5
    del group[name]
    make(group, name)


def _interesting(rng: random.Random, ds: h5py.Dataset) -> np.ndarray | str | h5py.Empty:
    """A value of the dataset's own kind (and usually shape) that is extreme or wrong in content."""
    if h5py.check_string_dtype(ds.dtype) is not None:
        value = rng.choice(STRINGS + list_primitives())
        return np.array(value, dtype=STR) if ds.shape == () else np.array([value] * max(1, ds.size), dtype=STR)
    kind = ds.dtype.kind
    pool = FLOATS if kind == "f" else INTS if kind in "iu" else [True, False]
    shape = ds.shape or ()
    if rng.random() < 0.5 and shape:
        arr = ds[()].copy()
        arr.reshape(-1)[rng.randrange(arr.size)] = _fit(rng.choice(pool), ds.dtype) if arr.size else 0
        return arr
    return np.full(shape, _fit(rng.choice(pool), ds.dtype), dtype=ds.dtype)


def _fit(value, dtype: np.dtype):
    """value cast to dtype, clipped for integers so that numpy accepts it."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return int(min(max(int(value), info.min), info.max))
    with np.errstate(over="ignore"):
        return np.asarray(value).astype(dtype)[()]


def _other_value(rng: random.Random):
    """A dataset value of an arbitrary type and shape."""
    return rng.choice([
        lambda: np.array("Graph", dtype=STR), lambda: np.int64(rng.choice(INTS)),
        lambda: np.float64(rng.choice(FLOATS)),
        lambda: np.bool_(True), lambda: np.complex64(1 + 2j), lambda: np.float16(1.5), lambda: np.uint8(255),
        lambda: np.zeros((0,), np.float32), lambda: np.zeros((2, 3, 0), np.float64), lambda: np.ones((3, 3), np.int32),
        lambda: np.array([b"\xff\xfe", b"ok"], dtype=h5py.string_dtype("ascii")), lambda: h5py.Empty("f4"),
        lambda: np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]), lambda: np.array(["a", "b"], dtype=STR),
        lambda: np.arange(24, dtype=np.float32).reshape(2, 3, 4), lambda: np.array(1e30, np.float32),
        lambda: np.array([2**40, 3], np.int64), lambda: np.array([1, 0, -1], np.int64),
    ])()


# -- structural mutations: each takes (rng, open file) ----------------------------------------------
def delete_object(rng: random.Random, h5: h5py.File) -> None:
    groups, datasets = _objects(h5)
    path = _pick(rng, groups + datasets)
    if path:
        del h5[path]


def rename_object(rng: random.Random, h5: h5py.File) -> None:
    groups, datasets = _objects(h5)
    path = _pick(rng, groups + datasets)
    if not path:
        return
    parent, _, _ = path.rpartition("/")
    new = (parent + "/" if parent else "") + rng.choice(ODD_NAMES).replace("/", "%2F")
    if new not in h5:
        h5.move(path, new)


def retype_dataset(rng: random.Random, h5: h5py.File) -> None:
    path = _pick(rng, _objects(h5)[1])
    if path:
        value = _other_value(rng)
        _replace(h5, path, lambda g, n: g.create_dataset(n, data=value))


def revalue_dataset(rng: random.Random, h5: h5py.File) -> None:
    path = _pick(rng, _objects(h5)[1])
    if path:
        value = _interesting(rng, h5[path])
        _replace(h5, path, lambda g, n: g.create_dataset(n, data=value))


def reshape_dataset(rng: random.Random, h5: h5py.File) -> None:
    path = _pick(rng, _objects(h5)[1])
    if not path or h5py.check_string_dtype(h5[path].dtype) is not None:
        return
    data = np.asarray(h5[path][()]).reshape(-1)
    shape = rng.choice([(), (0,), (data.size + 1,), (1, data.size), (data.size, 1, 1), (2, 2, 2, 2, 2)])
    size = int(np.prod(shape, dtype=np.int64))
    value = np.resize(data, size).reshape(shape) if data.size else np.zeros(shape, data.dtype)
    _replace(h5, path, lambda g, n: g.create_dataset(n, data=value))


def huge_shape(rng: random.Random, h5: h5py.File) -> None:
    """A dataset whose declared shape is enormous but which stores no data (chunked, unallocated)."""
    path = _pick(rng, _objects(h5)[1])
    if path:
        shape = rng.choice([(2**34,), (2**20, 2**20), (2**40, 1), (1 << 16, 1 << 16, 16), (2**62,)])
        dtype = rng.choice(["f4", "f8", "i8"])
        _replace(h5, path, lambda g, n: g.create_dataset(n, shape=shape, dtype=dtype, chunks=(1,) * len(shape)))


def group_dataset_swap(rng: random.Random, h5: h5py.File) -> None:
    groups, datasets = _objects(h5)
    path = _pick(rng, groups + datasets)
    if not path:
        return
    if path in groups:
        _replace(h5, path, lambda g, n: g.create_dataset(n, data=np.int64(1)))
    else:
        _replace(h5, path, lambda g, n: g.create_group(n).create_dataset("type", data=np.array("Input", dtype=STR)))


def add_link(rng: random.Random, h5: h5py.File) -> None:
    """A soft, external or looping hard link, or a dataset stored in an external file."""
    groups, datasets = _objects(h5)
    where = h5[_pick(rng, groups) or "/"]
    name = rng.choice(["metadata", "weight", "type", "extra", "nodes"])
    if name in where:
        del where[name]
    kind = rng.randrange(4)
    if kind == 0:
        where[name] = h5py.SoftLink(rng.choice(["/graph", "/nowhere", "/graph/nodes"]))
    elif kind == 1:
        where[name] = h5py.ExternalLink(rng.choice(["/etc/passwd", "../fuzz_canary.h5", "other.h5"]), "/graph")
    elif kind == 2:
        where[name] = h5["/graph"]  # a hard link back up: a loop
    else:
        where.create_dataset(name, shape=(16,), dtype="f4", external=[("../fuzz_canary.bin", 0, 64)])


def add_object(rng: random.Random, h5: h5py.File) -> None:
    groups, _ = _objects(h5)
    where = h5[_pick(rng, groups) or "/"]
    name = rng.choice(ODD_NAMES).replace("/", "%2F")
    if name not in where:
        if rng.random() < 0.5:
            where.create_dataset(name, data=_other_value(rng))
        else:
            where.create_group(name)


def mutate_edges(rng: random.Random, h5: h5py.File) -> None:
    if "graph/edges/src" not in h5 or "graph/edges/dst" not in h5:
        return
    src = [s.decode("utf-8", "replace") for s in np.atleast_1d(h5["graph/edges/src"][()])]
    dst = [s.decode("utf-8", "replace") for s in np.atleast_1d(h5["graph/edges/dst"][()])]
    names = list(h5["graph/nodes"]) if isinstance(h5.get("graph/nodes"), h5py.Group) else ["x"]
    op = rng.randrange(6)
    if op == 0 and src:
        i = rng.randrange(len(src))
        src.insert(i, src[i]), dst.insert(i, dst[i])  # duplicate edge
    elif op == 1 and src:
        del src[rng.randrange(len(src))]
    elif op == 2:
        n = rng.choice(names)
        src.append(n), dst.append(n)  # self loop
    elif op == 3 and dst:
        dst[rng.randrange(len(dst))] = rng.choice(names + ["missing", ""])
    elif op == 4:
        rng.shuffle(dst)
    else:
        src.append(rng.choice(names)), dst.append(rng.choice(names))
    for key, values in (("src", src), ("dst", dst)):
        del h5[f"graph/edges/{key}"]
        h5.create_dataset(f"graph/edges/{key}", data=np.array(values, dtype=STR))


def retype_node(rng: random.Random, h5: h5py.File) -> None:
    nodes = h5.get("graph/nodes")
    if isinstance(nodes, h5py.Group) and len(nodes):
        node = nodes[rng.choice(list(nodes))]
        if isinstance(node, h5py.Group):
            if "type" in node:
                del node["type"]
            node.create_dataset("type", data=np.array(rng.choice(list_primitives() + ["Graph", "nope"]), dtype=STR))


STRUCTURAL = [
    (delete_object, 3), (rename_object, 2), (retype_dataset, 3), (revalue_dataset, 6), (reshape_dataset, 3),
    (huge_shape, 2), (group_dataset_swap, 1), (add_link, 1), (add_object, 1), (mutate_edges, 3), (retype_node, 2),
]
VALUES_ONLY = [(revalue_dataset, 6), (reshape_dataset, 1), (mutate_edges, 1), (retype_node, 1)]


def _weighted(rng: random.Random, table) -> Callable:
    funcs, weights = zip(*table)
    return rng.choices(funcs, weights)[0]


def mutate_file(rng: random.Random, path: str, values_only: bool = False) -> None:
    """Apply 1 to 3 mutations to the .t1c file at `path` in place (bytes ones only without values_only)."""
    for _ in range(rng.randint(1, 3)):
        if not values_only and rng.random() < 0.25:
            with open(path, "rb") as f:
                data = mutate_bytes(rng, f.read())
            with open(path, "wb") as f:
                f.write(data)
            continue
        try:
            h5 = h5py.File(path, "r+")
        except OSError:
            return  # an earlier byte mutation broke the container: keep it as it is
        with h5:
            try:
                _weighted(rng, VALUES_ONLY if values_only else STRUCTURAL)(rng, h5)
            except (OSError, KeyError, ValueError, TypeError, RuntimeError):
                pass  # h5py refused this mutation on this file; the file stays valid HDF5
