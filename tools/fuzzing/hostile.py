"""Structure-aware hostile inputs, one builder per class of issue 12 (reads outside the folder, native aborts,
exponential walks, FIFOs, memory bombs, oversized shapes, writer/reader disagreement, racing and killed
writes, permissions, odd .t1c dtypes, malformed NIR, executor states, ONNX shape lies, the CLI).

Each builder `make(rng, case_dir)` returns a zero-argument callable that feeds the input to the project and
checks what came out: `Misconversion` for a silently wrong result, `Escape` for bytes of the canary file
(which lies outside the case folder) inside a result. Builders pick the class from the case's random source.
"""

from __future__ import annotations

import os
import random
import signal
import stat
import time
from typing import Any, Callable

import h5py
import numpy as np
import onnx
import torch
from h5py import h5t
from onnx import TensorProto
from onnx import helper as h
from onnx import numpy_helper as nh

from . import seeds

CANARY = "fuzz_canary.bin"


class Misconversion(Exception):
    """The project returned a result that is wrong (a silent misconversion)."""


class Escape(Exception):
    """A result holds bytes of the canary file, which lies outside the case's folder."""


def canary_path(case_dir: str) -> str:
    return os.path.join(os.path.dirname(case_dir), CANARY)


def check_no_canary(graph: Any) -> None:
    """Escape when any array of the graph holds a 16-byte run of the canary (bytes 0..255 repeated)."""
    marks = [bytes(range(i, i + 16)) for i in range(0, 240, 16)]
    for node in getattr(graph, "nodes", {}).values():
        for value in vars(node).values():
            if isinstance(value, np.ndarray) and value.dtype != object:
                raw = value.tobytes()
                if any(m in raw for m in marks):
                    raise Escape(f"a result array holds canary bytes ({value.dtype}, shape {value.shape})")


# -- .t1c: DAGs, shared and fill-value datasets, odd dtypes, deep metadata, FIFOs (classes 4, 5, 6, 8, 11) --------
def _t1c_seed(rng: random.Random, case_dir: str) -> str:
    _, data = rng.choice(seeds.t1c_files())
    path = os.path.join(case_dir, "case.t1c")
    with open(path, "wb") as f:
        f.write(data)
    return path


def _array_fields(h5: h5py.File) -> list[str]:
    found = []
    h5["graph/nodes"].visititems(lambda n, o: found.append(f"graph/nodes/{n}") if isinstance(o, h5py.Dataset)
                                 and o.dtype.kind == "f" and o.ndim >= 1 else None)
    return found


def _t1c_dag(rng: random.Random, h5: h5py.File) -> None:
    meta = h5.require_group("graph/metadata")
    depth = rng.randint(8, 40)
    groups = [meta.create_group(f"g{i}") for i in range(depth)]
    for i in range(depth - 1):
        groups[i]["a"], groups[i]["b"] = groups[i + 1], groups[i + 1]
    groups[-1]["leaf"] = np.arange(4)


def _t1c_shared(rng: random.Random, h5: h5py.File) -> None:
    meta = h5.require_group("graph/metadata")
    ds = meta.create_dataset("big", data=np.zeros(rng.choice([1 << 10, 1 << 16]), np.float32))
    for i in range(rng.randint(2, 3000)):
        meta[f"k{i}"] = ds
    fields = _array_fields(h5)
    if fields and rng.random() < 0.5:
        target = rng.choice(fields)
        for other in fields:
            if other != target and h5[other].shape == h5[target].shape:
                del h5[other]
                h5[other] = h5[target]


def _t1c_fill(rng: random.Random, h5: h5py.File) -> None:
    meta = h5.require_group("graph/metadata")
    for i in range(rng.randint(1, 1500)):
        meta.create_dataset(f"fill{i}", shape=(1 << 18,), dtype=np.float64, chunks=(1 << 12,), fillvalue=1.5)


def _odd_dataset(rng: random.Random, group: h5py.Group, name: str, like: np.ndarray | None) -> None:
    kind = rng.choice(["int128", "bigendian", "float128", "huge_uint", "zero_huge", "rank32", "time", "complex"])
    shape = (4,) if like is None else like.shape
    if kind == "bigendian":
        group.create_dataset(name, data=(np.arange(int(np.prod(shape))).reshape(shape) if like is None else like)
                             .astype(">f4"))
    elif kind == "float128":
        group.create_dataset(name, data=np.ones(shape, np.longdouble))
    elif kind == "complex":
        group.create_dataset(name, data=np.ones(shape, np.complex64))
    elif kind == "huge_uint":
        group.create_dataset(name, data=np.full(shape if rng.random() < 0.5 else (), 2**64 - 1, np.uint64))
    elif kind == "zero_huge":
        group.create_dataset(name, shape=(0, 2**62), dtype=np.float32)
    elif kind == "rank32":
        group.create_dataset(name, data=np.ones((1,) * 32, np.float32))
    else:  # types h5py cannot map to numpy, built at the low level
        if kind == "int128":
            base = h5t.STD_I64LE.copy()
            base.set_size(16)
        else:
            base = h5t.UNIX_D64LE.copy()
        h5py.h5d.create(group.id, name.encode(), base, h5py.h5s.create_simple((2,)))


def _t1c_dtypes(rng: random.Random, h5: h5py.File) -> None:
    fields = _array_fields(h5)
    if fields and rng.random() < 0.7:
        path = rng.choice(fields)
        like = h5[path][()]
        parent, _, name = path.rpartition("/")
        del h5[path]
        _odd_dataset(rng, h5[parent], name, like)
    else:
        _odd_dataset(rng, h5.require_group("graph/metadata"), "odd", None)


def _t1c_deep(rng: random.Random, h5: h5py.File) -> None:
    group = h5.require_group("graph/metadata")
    for i in range(rng.choice([63, 64, 65, 66, 200])):
        group = group.create_group("d")
    group["x"] = 1


def t1c_case(rng: random.Random, case_dir: str) -> Callable[[], Any]:
    from talon import ir

    path = _t1c_seed(rng, case_dir)
    kind = rng.choice(["dag", "shared", "fill", "dtypes", "dtypes", "deep", "fifo"])
    if kind == "fifo":
        os.unlink(path)
        os.mkfifo(path)
    else:
        with h5py.File(path, "r+") as h5:
            {"dag": _t1c_dag, "shared": _t1c_shared, "fill": _t1c_fill, "dtypes": _t1c_dtypes,
             "deep": _t1c_deep}[kind](rng, h5)

    def run() -> None:
        graph = ir.read(path)
        check_no_canary(graph)
        back = os.path.join(case_dir, "back.t1c")
        ir.write(back, graph)  # a read graph can always be written back ...
        diff = graph.diff(ir.read(back))
        if diff:  # ... and reads back the same
            raise Misconversion(f"written back and read again, the graph differs: {diff[:3]}")
    return run


# -- NIR: links, external storage, DAGs, nesting, bombs, type confusion, dt and tau (classes 1, 4, 6, 12) -------
def _nir_seed(rng: random.Random, path: str) -> None:
    import nir

    n = rng.choice([2, 3, 4])
    nodes = {"input": nir.Input(input_type={"input": np.array([n])}),
             "fc": nir.Affine(weight=np.ones((n, n), np.float32), bias=np.zeros(n, np.float32)),
             "lif": nir.LIF(tau=np.full(n, 1e-2), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n)),
             "cuba": nir.CubaLIF(tau_syn=np.full(n, 1e-2), tau_mem=np.full(n, 2e-2), r=np.ones(n),
                                 v_leak=np.zeros(n), v_threshold=np.ones(n), w_in=np.ones(n)),
             "output": nir.Output(output_type={"output": np.array([n])})}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "cuba"), ("cuba", "output")]
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))


def _nir_mutate(rng: random.Random, h5: h5py.File, case_dir: str) -> None:
    weight = "node/nodes/fc/weight"
    kind = rng.choice(["external_link", "soft_link", "external_storage", "dag", "nest", "bomb", "confuse",
                       "missing", "edges"])
    if kind == "external_link":
        del h5[weight]
        h5[weight] = h5py.ExternalLink(canary_path(case_dir), "/x")
    elif kind == "soft_link":
        del h5[weight]
        h5[weight] = h5py.SoftLink("/node/nodes/fc/bias")
    elif kind == "external_storage":
        shape = h5[weight].shape
        del h5[weight]
        h5.create_dataset(weight, shape=shape, dtype=np.uint8 if rng.random() < 0.5 else np.float32,
                          external=[(canary_path(case_dir), 0, 4096)])
    elif kind == "dag":
        meta = h5.require_group("node/metadata")
        groups = [meta.create_group(f"g{i}") for i in range(rng.randint(8, 40))]
        for a, b in zip(groups, groups[1:]):
            a["x"], a["y"] = b, b
        groups[-1]["leaf"] = np.arange(3)
    elif kind == "nest":
        group = h5["node"]
        for _ in range(rng.choice([10, 40, 120])):
            inner = group.require_group("nodes").create_group("sub")
            inner.create_dataset("type", data="NIRGraph", dtype=h5py.string_dtype())
            inner.create_dataset("edges", data=np.zeros((0, 2), "S1"))
            group = inner
    elif kind == "bomb":
        del h5[weight]
        h5.create_dataset(weight, shape=(1 << 20, 1 << 20), dtype=np.float32, chunks=(256, 256),
                          compression="gzip")
    elif kind == "confuse":
        target = rng.choice(["node/nodes/fc/weight", "node/nodes/lif/tau", "node/nodes/cuba/w_in",
                             "node/nodes/input/shape", "node/nodes/fc/type"])
        del h5[target]
        value = rng.choice([np.array("text", dtype=h5py.string_dtype()), np.float64(3.0), np.zeros((2, 2, 2, 2)),
                            np.array([], np.float32), np.array([np.nan, np.inf])])
        h5.create_dataset(target, data=value)
    elif kind == "missing":
        del h5[rng.choice(["node/nodes/fc/bias", "node/nodes/lif/tau", "node/edges", "node/nodes/cuba/r"])]
    else:
        del h5["node/edges"]
        h5.create_dataset("node/edges", data=np.array([[b"input", b"nowhere"], [b"fc", b"lif"]]))


def nir_case(rng: random.Random, case_dir: str) -> Callable[[], Any]:
    from converters import nir_to_ir

    path = os.path.join(case_dir, "case.nir")
    _nir_seed(rng, path)
    if rng.random() < 0.8:
        with h5py.File(path, "r+") as h5:
            _nir_mutate(rng, h5, case_dir)
    dt = rng.choice([1e-4, 1e-4, 1e-3, 5e-2, 1.0, 1e-300, "0.1", 0.0, float("nan"), True])

    def run() -> None:
        graph = nir_to_ir(path, dt=dt)
        check_no_canary(graph)
        for node in graph.nodes.values():
            for field in ("tau", "tau_mem", "tau_syn"):
                tau = getattr(node, field, None)
                if tau is not None and not (np.all(np.isfinite(tau)) and np.all(np.asarray(tau) >= 1)):
                    raise Misconversion(f"{field} {tau} (in steps) makes decay factors outside [0, 1)")
    return run


# -- ONNX: malformed single nodes, inlining bombs, external data, folding and shape bombs, shape lies ---------
_SKIP_OPS = {"If", "Loop", "Scan", "SequenceMap", "Optional", "OptionalGetElement", "OptionalHasElement"}


def _random_node_model(rng: random.Random) -> onnx.ModelProto:
    """One node of a random default-domain operator with random arity and attributes (often wrong)."""
    schemas = [s for s in onnx.defs.get_all_schemas() if s.domain == "" and s.name not in _SKIP_OPS
               and not s.deprecated and s.since_version <= 18]
    schema = rng.choice(sorted(schemas, key=lambda s: s.name))
    n_in = max(0, min(schema.min_input + rng.choice([-1, 0, 0, 1, 2]), 6))
    n_out = max(1, min(schema.min_output + rng.choice([-1, 0, 0, 1, 2]), 6))
    attrs = {}
    for name, attr in schema.attributes.items():
        if rng.random() < 0.5:
            attrs[name] = rng.choice([0, 1, 2, 3, -1, 7, 2**31, 0.5, [1, 1, 1], [0, 0, 0, 0], [2] * 5, "x"])
    if schema.name == "Split":
        attrs["num_outputs"] = rng.choice([1, 2, 3, n_out])
    dims = rng.choice([[1, 4], [1, 2, 3, 3], [2], [1, 1, 4, 4]])
    inputs = [f"x{i}" for i in range(n_in)]
    node = h.make_node(schema.name, inputs, [f"y{i}" for i in range(n_out)], **attrs)
    graph = h.make_graph([node], "g", [h.make_tensor_value_info(n, TensorProto.FLOAT, dims) for n in inputs],
                         [h.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None) for i in range(n_out)])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])


def _nested_functions(rng: random.Random) -> onnx.ModelProto:
    depth, recursive = rng.randint(5, 45), rng.random() < 0.2
    functions = []
    for i in range(depth):
        callee = f"f{0 if recursive and i == depth - 1 else i + 1}"
        body = ([h.make_node("Relu", ["x"], ["y"])] if i == depth - 1 and not recursive else
                [h.make_node(callee, ["x"], ["t"], domain="local"), h.make_node(callee, ["t"], ["y"], domain="local")])
        functions.append(h.make_function("local", f"f{i}", ["x"], ["y"], body,
                                         [h.make_opsetid("", 18), h.make_opsetid("local", 1)]))
    graph = h.make_graph([h.make_node("f0", ["x"], ["y"], domain="local")], "g",
                         [h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                         [h.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18), h.make_opsetid("local", 1)], functions=functions)


def _external_attribute(rng: random.Random, case_dir: str) -> str:
    """A Constant whose sparse (or dense) value is external: outside the folder, or a hard link to the canary."""
    location = rng.choice(["../" + CANARY, "w.bin", CANARY])
    if location == "w.bin":
        os.link(canary_path(case_dir), os.path.join(case_dir, "w.bin"))
    values = TensorProto(name="v", dims=[4], data_type=TensorProto.FLOAT, data_location=TensorProto.EXTERNAL)
    values.external_data.add(key="location", value=location)
    indices = nh.from_array(np.arange(4, dtype=np.int64), "i")
    if rng.random() < 0.6:
        node = h.make_node("Constant", [], ["c"], sparse_value=onnx.SparseTensorProto(values=values, indices=indices,
                                                                                         dims=[8]))
    else:
        node = h.make_node("Constant", [], ["c"], value=values)
    graph = h.make_graph([node, h.make_node("Add", ["x", "c"], ["y"])], "g",
                         [h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                         [h.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = os.path.join(case_dir, "m.onnx")
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 18)]), path)
    return path


def _bomb(rng: random.Random) -> onnx.ModelProto:
    """Small models whose folding or shapes ask for gigabytes or more."""
    kind = rng.choice(["fold", "upsample", "pad", "conv_pads", "prelu", "conv_padding"])
    x = h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])
    inits, nodes = [], []
    if kind == "fold":
        inits = [nh.from_array(np.array([1 << 14, 1 << 14], np.int64), "s")]
        nodes = [h.make_node("ConstantOfShape", ["s"], ["c"]), h.make_node("ReduceSum", ["c"], ["r"], keepdims=0),
                 h.make_node("Add", ["x", "r"], ["y"])]
    elif kind == "upsample":
        inits = [nh.from_array(np.array([1, 1, 2**20, 2**20], np.float32), "sc")]
        nodes = [h.make_node("Resize", ["x", "", "sc"], ["y"], mode="nearest")]
    elif kind == "pad":
        inits = [nh.from_array(np.array([0, 0, 0, 2**40, 0, 0, 0, 2**40], np.int64), "p")]
        nodes = [h.make_node("Pad", ["x", "p"], ["y"])]
    elif kind in ("conv_pads", "conv_padding"):
        inits = [nh.from_array(np.ones((2, 1, 3, 3), np.float32), "w")]
        pads = [1, 1, 1] if kind == "conv_pads" else [2**20] * 4
        nodes = [h.make_node("Conv", ["x", "w"], ["y"], pads=pads, kernel_shape=[3, 3])]
    else:
        inits = [nh.from_array(np.ones(3, np.float32), "s")]
        x = h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
        nodes = [h.make_node("PRelu", ["x", "s"], ["y"])]
    graph = h.make_graph(nodes, "g", [x], [h.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])


def _tampered_export(rng: random.Random) -> onnx.ModelProto:
    """A talon export whose talon.* metadata disagrees with its nodes or asks for huge dtypes."""
    from converters import ir_to_onnx

    model = ir_to_onnx(seeds.graphs()["mlp"])
    holders = [n for n in model.graph.node if any(p.key == "talon.arrays" for p in n.metadata_props)]
    holder = rng.choice(holders)
    prop = next(p for p in holder.metadata_props if p.key == "talon.arrays")
    if rng.random() < 0.5:
        other = [i.name for i in model.graph.initializer if i.name not in holder.input]
        prop.value = prop.value.replace(prop.value.split('"')[3], rng.choice(other)) if other else prop.value
    else:
        meta = next((p for p in holder.metadata_props if p.key == "talon.params"), None)
        if meta is not None:
            meta.value = '{"x": {"__array__": [1], "dtype": "|S1000000000", "shape": [1]}}'
    return model


def onnx_case(rng: random.Random, case_dir: str) -> Callable[[], Any]:
    from converters import onnx_to_ir
    from onnx_ops import OrtExecutor

    kind = rng.choice(["node", "node", "node", "functions", "external", "bomb", "tampered"])
    model: Any = {"node": lambda: _random_node_model(rng), "functions": lambda: _nested_functions(rng),
                  "external": lambda: _external_attribute(rng, case_dir), "bomb": lambda: _bomb(rng),
                  "tampered": lambda: _tampered_export(rng)}[kind]()
    if kind == "external" and rng.random() < 0.5:
        model = onnx.load(model, load_external_data=False)  # in memory: no folder at all
    use_ort = rng.random() < 0.5

    def run() -> None:
        if use_ort:
            OrtExecutor(model)
        else:
            check_no_canary(onnx_to_ir(model))
    return run


# -- executors: every state item, list states, bfloat16/float8 inputs (class 13) -----------------------------------
def state_case(rng: random.Random, case_dir: str) -> Callable[[], Any]:
    from converters import ir_to_onnx
    from onnx_ops import OrtExecutor
    from talon import ir
    from talon.bridge import ir_to_torch

    n = 3
    graph = ir.Graph({"input": ir.Input((n,)), "fc": ir.Affine(weight=np.eye(n, dtype=np.float32)),
                      "cuba": ir.CubaLIF(tau_syn=np.full(n, 2.0, np.float32), tau_mem=np.full(n, 3.0, np.float32),
                                         r=np.ones(n, np.float32), v_leak=np.zeros(n, np.float32),
                                         v_threshold=np.ones(n, np.float32), w_in=np.ones(n, np.float32)),
                      "output": ir.Output((n,))},
                     [("input", "fc"), ("fc", "cuba"), ("cuba", "output")])
    batch = 2
    dtype = rng.choice([torch.float32, torch.bfloat16, torch.float16, torch.float8_e4m3fn, torch.float64, torch.int64])
    x = torch.ones(batch, n).to(dtype)
    good = torch.zeros(batch, n)
    item = rng.choice([good, torch.zeros(7, n), torch.zeros(batch, n + 1), torch.zeros(n), [0.0] * n, "v", None])
    state: Any = rng.choice([{"cuba": (good, item)}, {"cuba": [good, item]}, [good], (good,), {"cuba": item},
                             {"cuba": (item,)}, {"nope": (good,)}, None])
    backend = rng.choice(["torch", "ort"])

    def run() -> None:
        if backend == "torch":
            ex = ir_to_torch(graph, return_state=True)
        else:
            ex = OrtExecutor(ir_to_onnx(graph), return_state=True)
        out, new = ex(x, state)
        if tuple(out.shape)[0] != batch or any(tuple(t.shape)[0] != batch for t in new["cuba"]):
            raise Misconversion(f"batch {batch} in, output {tuple(out.shape)} and state "
                                f"{[tuple(t.shape) for t in new['cuba']]} out")
    return run


# -- writers: refuse what the reader refuses, kills and races leave nothing, modes kept (classes 8, 9, 10) ----------
def writes_case(rng: random.Random, case_dir: str) -> Callable[[], Any]:
    from converters import ir_to_onnx, save_onnx
    from talon import ir

    kind = rng.choice(["metadata", "metadata", "mode", "kill"])
    path = os.path.join(case_dir, "w.t1c" if kind != "kill" else "m.onnx")
    graph = seeds.graphs()["mlp"]

    def metadata() -> None:
        depth = rng.choice([10, 63, 64, 65, 80])
        meta: dict = {}
        inner = meta
        for _ in range(depth):
            inner["d"] = {}
            inner = inner["d"]
        if rng.random() < 0.3:
            inner["self"] = meta
        if rng.random() < 0.3:
            loop: list = [1]
            loop.append(loop)
            inner["loop"] = loop
        inner["x"] = rng.choice([1, 2**70, np.ones((1,) * 33, np.float32), np.ones(2, np.longdouble), "s"])
        graph.metadata = meta
        ir.write(path, graph)
        diff = graph.diff(ir.read(path))
        if diff:
            raise Misconversion(f"metadata written then read back differs: {diff[:2]}")

    def mode() -> None:
        ir.write(path, graph)
        wanted = rng.choice([0o600, 0o640, 0o644, 0o664])
        os.chmod(path, wanted)
        ir.write(path, graph)
        if stat.S_IMODE(os.stat(path).st_mode) != wanted:
            raise Misconversion(f"rewriting changed the mode {oct(wanted)} to {oct(os.stat(path).st_mode)}")

    def kill() -> None:
        model = ir_to_onnx(graph)
        pid = os.fork()
        if pid == 0:  # pragma: no cover  (the child writes until killed)
            try:
                while True:
                    save_onnx(model, path, external_data_threshold=0)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        save_onnx(model, path, external_data_threshold=0)
        names = sorted(os.listdir(case_dir))
        if len(names) != 2 or not any(n.endswith(".data") for n in names):
            raise Misconversion(f"after a killed writer and one more save the folder holds {names}")

    return {"metadata": metadata, "mode": mode, "kill": kill}[kind]


# -- the command line: names as data, one typed line per failure (classes 5, 15) -----------------------------------
def cli_case(rng: random.Random, case_dir: str) -> Callable[[], Any]:
    from click.testing import CliRunner

    from talon import ir
    from talon.cli.app import cli

    names = ["[/bold]", "\x1b[31mred", "a\rb", "[link=file:///etc/passwd]x[/link]", "\x07bell", "ok"]
    name = rng.choice(names)
    graph = ir.Graph({"input": ir.Input((3,)), name: ir.Affine(weight=np.eye(3, dtype=np.float32)),
                      "output": ir.Output((3,))}, [("input", name), (name, "output")])
    model = os.path.join(case_dir, "m.t1c")
    ir.write(model, graph)
    inputs = os.path.join(case_dir, "in.npy")
    kind = rng.choice(["inspect", "run", "complex", "object", "raster", "fifo", "convert"])
    args = ["inspect", model]
    if kind == "run":
        args = ["run", model, "--steps", "2"]
    elif kind == "complex":
        np.save(inputs, np.ones((1, 3), np.complex64))
        args = ["run", model, "--input", inputs]
    elif kind == "object":
        np.save(inputs, np.array([None, 1, "x"], dtype=object), allow_pickle=True)
        args = ["run", model, "--input", inputs]
    elif kind == "raster":
        args = ["run", model, "--steps", "2", "--raster", os.path.join(case_dir, "out.txt")]
    elif kind == "fifo":
        fifo = os.path.join(case_dir, "pipe.onnx")
        os.mkfifo(fifo)
        args = ["inspect", fifo]
    elif kind == "convert":
        args = ["convert", model, os.path.join(case_dir, "m.onnx")]

    def run() -> None:
        result = CliRunner().invoke(cli, args, catch_exceptions=True)
        text = result.output + (result.stderr if result.stderr_bytes is not None else "")
        if "\x1b" in text or "\x07" in text or "\r" in text.replace("\r\n", "\n"):
            raise Misconversion(f"raw control characters reached the terminal: {text[:200]!r}")
        if result.exit_code not in (0, 1):
            raise Misconversion(f"exit status {result.exit_code}: {text[-300:]!r}")
        if result.exit_code == 1:
            errors = [line for line in result.stderr.splitlines() if line.strip()]
            if len(errors) != 1 or not errors[0].startswith("error: ") or "--debug for the traceback" in errors[0]:
                raise Misconversion(f"a failure printed {errors[-3:]!r}, not one line from a typed error")
        if kind in ("complex", "object", "raster", "fifo") and result.exit_code == 0:
            raise Misconversion(f"{kind} input accepted with exit status 0")
    return run


BUILDERS: dict[str, Callable[[random.Random, str], Callable[[], Any]]] = {
    "t1c_hostile": t1c_case, "nir": nir_case, "onnx_hostile": onnx_case, "state": state_case,
    "writes": writes_case, "cli": cli_case,
}


def run_built(case: Callable[[], Any]) -> Any:
    """Run a built case (the Target.run of every hostile target)."""
    return case()

