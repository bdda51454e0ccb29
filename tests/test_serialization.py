""".t1c files: fixtures of the established toolchain, exact round trips, bad files, atomic writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talon import ir
from talon.ir import TalonFormatError, serialization
from talon.ir import _atomic
from talon.ir.primitives import base

from conftest import fixture_manifest
from strategies import BUILTIN_TYPES, graphs, metadata_dicts, node_names, primitive_nodes

MANIFEST = fixture_manifest()


def _has_tmpfile() -> bool:
    fd = _atomic.open_anonymous(tempfile.gettempdir())
    if fd is not None:
        os.close(fd)
    return fd is not None


HAS_TMPFILE = _has_tmpfile()


def h5_tree(path: Path) -> dict[str, tuple]:
    """Every object of an HDF5 file read with plain h5py: dtype, shape, raw value, attributes."""
    out: dict[str, tuple] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            raw = obj[()]
            value = raw.tobytes() if isinstance(raw, np.ndarray) and raw.dtype != object else repr(raw)
            out[name] = (str(obj.dtype), obj.shape, value, obj.compression, dict(obj.attrs))
        else:
            out[name] = ("group", dict(obj.attrs))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
        out["/"] = ("root", dict(f.attrs))
    return out


def small_graph(weight: np.ndarray | None = None) -> ir.Graph:
    w = np.arange(12, dtype=np.float32).reshape(3, 4) if weight is None else weight
    return ir.Graph(
        {"input": ir.Input((4,)), "fc": ir.Affine(weight=w, bias=np.ones(w.shape[0], np.float32)),
         "output": ir.Output((w.shape[0],))},
        [("input", "fc"), ("fc", "output")],
    )


# -- fixtures of the established toolchain ---------------------------------------------------
@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["name"])
def test_fixture_values_match_plain_h5py(fixtures_dir, entry):
    path = fixtures_dir / entry["file"]
    graph = ir.read(path)
    assert {n: type(node).__name__ for n, node in graph.nodes.items()} == entry["node_types"]
    assert [list(e) for e in graph.edges] == entry["edges"]
    with h5py.File(path, "r") as f:
        for name, group in f["graph/nodes"].items():
            node = graph.nodes[name]
            for field, ds in group.items():
                if field == "type":
                    continue
                value, expected = getattr(node, field), ds[()]
                if isinstance(expected, bytes):
                    assert value == expected.decode(), (name, field)
                elif isinstance(value, np.ndarray):
                    assert value.dtype == expected.dtype and np.array_equal(value, expected), (name, field)
                elif isinstance(value, tuple):
                    assert list(value) == expected.tolist(), (name, field)
                else:
                    assert value == expected.item() and type(value) is type(expected.item()), (name, field)


def test_fixture_keeps_float64_lif(fixtures_dir):
    lif = ir.read(fixtures_dir / "conv_snn.t1c").nodes["lif1"]
    assert lif.tau.dtype == np.float64 and lif.tau.shape == (4, 6, 6)


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["name"])
def test_rewritten_fixture_has_the_established_layout(fixtures_dir, tmp_path, entry):
    """Our writer reproduces every dataset, dtype, shape and value of the established file."""
    out = tmp_path / entry["file"]
    ir.write(out, ir.read(fixtures_dir / entry["file"]))
    assert h5_tree(out) == h5_tree(fixtures_dir / entry["file"])


# -- round trips ---------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=graphs(names=node_names(), metadata=True, cycles=True))
def test_random_graph_round_trip(tmp_path, graph):
    path = tmp_path / "g.t1c"
    ir.write(path, graph)
    back = ir.read(path)
    assert back.equals(graph), back.diff(graph)
    assert back.edges == graph.edges
    assert back.back_edges() == graph.back_edges()
    assert back.infer_shapes() == graph.infer_shapes()


@pytest.mark.parametrize("type_name", BUILTIN_TYPES)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_each_primitive_round_trips(tmp_path, type_name, data):
    node = data.draw(primitive_nodes([type_name]))
    node.metadata = data.draw(metadata_dicts(1))
    graph = ir.Graph({"node": node})
    ir.write(tmp_path / "n.t1c", graph)
    back = ir.read(tmp_path / "n.t1c").nodes["node"]
    assert type(back) is type(node) and back == node
    for f in ir.primitive_fields(node):  # dtypes too, not just values
        a, b = getattr(node, f.name), getattr(back, f.name)
        assert type(a) is type(b) and getattr(a, "dtype", None) == getattr(b, "dtype", None)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=metadata_dicts())
def test_metadata_round_trip(tmp_path, meta):
    graph = ir.Graph({"x": ir.Input((2,), metadata=meta)}, metadata=meta)
    ir.write(tmp_path / "m.t1c", graph)
    back = ir.read(tmp_path / "m.t1c")
    assert base.values_equal(back.metadata, meta) and base.values_equal(back.nodes["x"].metadata, meta)


def test_metadata_lists_become_arrays_and_numpy_scalars_keep_dtype(tmp_path):
    meta = {"l": [1, 2], "s": ["a", "bcd"], "f32": np.float32(1.5), "i64": np.int64(3), "none": None, "d": {}}
    ir.write(tmp_path / "m.t1c", ir.Graph({"x": ir.Input((2,))}, metadata=meta))
    back = ir.read(tmp_path / "m.t1c").metadata
    assert back["l"].dtype == np.int64 and back["l"].tolist() == [1, 2]
    assert back["s"].tolist() == ["a", "bcd"]
    assert type(back["f32"]) is np.float32 and back["f32"] == 1.5
    assert type(back["i64"]) is int and back["none"] is None and back["d"] == {}


def test_names_are_verbatim_or_escaped(tmp_path):
    names = {"layer.0.fc": "layer.0.fc", "/conv/Conv_1": "%2Fconv%2FConv_1", "50%": "50%25", ".": "%2E", "..": ".."}
    nodes = {"in": ir.Input((3,))}
    edges = []
    for name in names:
        nodes[name] = ir.ReLU()
        edges.append(("in", name))
    graph = ir.Graph(nodes, edges, metadata={"a/b": {"%": 1}})
    ir.write(tmp_path / "n.t1c", graph)
    with h5py.File(tmp_path / "n.t1c", "r") as f:
        assert set(f["graph/nodes"]) == {"in", *names.values()}
        assert [s.decode() for s in f["graph/edges/dst"][()]] == list(names.values())
        assert list(f["graph/metadata"]) == ["a%2Fb"] and list(f["graph/metadata/a%2Fb"]) == ["%25"]
    assert ir.read(tmp_path / "n.t1c").equals(graph)


def test_read_orders_nodes_topologically(tmp_path):
    ir.write(tmp_path / "g.t1c", small_graph())
    assert list(ir.read(tmp_path / "g.t1c").nodes) == ["input", "fc", "output"]


def test_file_layout_details(tmp_path):
    acyclic = small_graph()
    cyclic = ir.Graph(
        {"i": ir.Input((2,)), "a": ir.ReLU(), "b": ir.Tanh(), "o": ir.Output((2,))},
        [("i", "a"), ("a", "b"), ("b", "a"), ("b", "o")], allow_cycles=True,
    )
    ir.write(tmp_path / "a.t1c", acyclic)
    ir.write(tmp_path / "c.t1c", cyclic)
    tree = h5_tree(tmp_path / "a.t1c")
    assert "graph/allow_cycles" not in tree and "graph/metadata" not in tree
    assert all(not entry[-1] for entry in tree.values())  # no attributes anywhere
    assert all(entry[3] is None for entry in tree.values() if entry[0] != "group" and len(entry) == 5)
    assert tree["version"][2] == repr(b"0.0.1")
    with h5py.File(tmp_path / "c.t1c", "r") as f:
        assert f["graph/allow_cycles"][()] is np.True_
    assert ir.read(tmp_path / "c.t1c").equals(cyclic)


def test_omitted_optional_fields_get_their_defaults(tmp_path):
    path = tmp_path / "d.t1c"
    ir.write(path, ir.Graph({
        "relu": ir.ReLU(), "gelu": ir.GELU(), "elu": ir.ELU(), "soft": ir.Softmax(), "drop": ir.Dropout(),
        "ln": ir.LayerNorm(normalized_shape=(3,)), "hr": ir.HybridRegion(mode="ann"),
        "bn": ir.BatchNorm1d(num_features=2, running_mean=np.zeros(2), running_var=np.ones(2)),
        "pool": ir.MaxPool2d(kernel_size=3),
    }))
    with h5py.File(path, "a") as f:
        for field in ("relu/negative_slope", "gelu/approximate", "elu/alpha", "soft/dim", "drop/p", "ln/eps",
                      "bn/eps", "bn/momentum", "pool/stride"):
            del f[f"graph/nodes/{field}"]
    nodes = ir.read(path).nodes
    assert nodes["relu"].negative_slope == 0.0 and nodes["gelu"].approximate is True
    assert nodes["elu"].alpha == 1.0 and nodes["soft"].dim == -1 and nodes["drop"].p == 0.5
    assert nodes["ln"].eps == 1e-5 and nodes["bn"].eps == 1e-5 and nodes["bn"].momentum == 0.1
    assert nodes["hr"].name is None and nodes["pool"].stride == (3, 3)


def test_integral_floats_and_scalars_are_accepted_for_integer_fields(tmp_path):
    path = tmp_path / "f.t1c"
    ir.write(path, ir.Graph({"up": ir.Upsample(scale_factor=2), "ln": ir.LayerNorm(normalized_shape=(3,)),
                             "pool": ir.MaxPool2d(kernel_size=2)}))
    with h5py.File(path, "a") as f:
        _replace(f, "graph/nodes/up/scale_factor", np.float64(3.0))
        _replace(f, "graph/nodes/ln/normalized_shape", np.int64(3))
        _replace(f, "graph/nodes/pool/stride", np.array([1.0, 2.0]))
    nodes = ir.read(path).nodes
    assert nodes["up"].scale_factor == 3 and type(nodes["up"].scale_factor) is int
    assert nodes["ln"].normalized_shape == (3,) and nodes["pool"].stride == (1, 2)


def test_unknown_extra_datasets_are_ignored(tmp_path):
    path = tmp_path / "x.t1c"
    ir.write(path, small_graph())
    with h5py.File(path, "a") as f:
        f["graph/nodes/fc/future_field"] = np.arange(3)
    assert ir.read(path).equals(small_graph())


# -- user primitives -----------------------------------------------------------------------
@pytest.fixture
def private_registry(monkeypatch):
    """Register test-only primitives without leaking them into other tests."""
    monkeypatch.setattr(base, "_PRIMITIVES", dict(base._PRIMITIVES))


def test_user_registered_primitive_round_trips(tmp_path, private_registry):
    @ir.register_primitive
    class Gain(ir.Node):
        gain: np.ndarray = ir.param("array")
        window: tuple = ir.param("ints", (1, 1), length=2)
        count: int = ir.param("int", 3)
        scale: float = ir.param("float", 0.5)
        enabled: bool = ir.param("bool", False)
        label: str = ir.param("str", None)
        features: int = ir.param("dims", None)

    node = Gain(gain=np.array([1.5, 2.5], np.float64), window=2, count=7, enabled=True, label="g/1", features=(2, 3))
    ir.write(tmp_path / "u.t1c", ir.Graph({"g": node}))
    back = ir.read(tmp_path / "u.t1c").nodes["g"]
    assert type(back) is Gain and back == node and back.window == (2, 2) and back.label == "g/1"
    assert back.scale == 0.5 and back.features == (2, 3)


def test_register_refuses_reserved_or_undeclared_fields(private_registry):
    with pytest.raises(ir.RegistryError, match="type"):
        @ir.register_primitive
        class Bad(ir.Node):
            type: str = ir.param("str", "x")


# -- refusals on write ---------------------------------------------------------------------
@pytest.mark.parametrize("value", [{1, 2}, b"raw", object(), 2**64, "nul\x00", [1, "a"], [[1], [1, 2]], np.array([object()])])
def test_unstorable_metadata_is_refused_before_touching_disk(tmp_path, value):
    target = tmp_path / "new" / "g.t1c"
    graph = small_graph()
    graph.nodes["fc"].metadata = {"deep": {"bad": value}}
    with pytest.raises(TalonFormatError) as err:
        ir.write(target, graph)
    assert err.value.node == "fc" and err.value.field == "metadata" and "deep/bad" in str(err.value)
    assert not (tmp_path / "new").exists()


def test_unstorable_names_are_refused_before_touching_disk(tmp_path):
    graph = ir.Graph({"bad\udc80": ir.ReLU()})
    with pytest.raises(TalonFormatError, match="UTF-8") as err:
        ir.write(tmp_path / "g.t1c", graph)
    assert err.value.node == "bad\udc80"
    with pytest.raises(TalonFormatError, match="UTF-8"):
        ir.write(tmp_path / "g.t1c", ir.Graph({"x": ir.ReLU()}, metadata={"k\udc80": 1}))
    assert os.listdir(tmp_path) == []


def test_unregistered_or_invalid_nodes_are_refused(tmp_path, private_registry):
    class Loose(ir.Node):
        pass

    graph = small_graph()
    graph.nodes["loose"] = Loose()
    with pytest.raises(TalonFormatError, match="not a registered primitive"):
        ir.write(tmp_path / "g.t1c", graph)
    graph = small_graph()
    graph.nodes["fc"].bias = np.zeros(5, np.float32)  # changed after construction
    with pytest.raises(TalonFormatError) as err:
        ir.write(tmp_path / "g.t1c", graph)
    assert (err.value.node, err.value.field) == ("fc", "bias")
    graph = small_graph()
    graph.edges.append(("output", "ghost"))
    with pytest.raises(TalonFormatError, match="ghost"):
        ir.write(tmp_path / "g.t1c", graph)
    assert os.listdir(tmp_path) == []


# -- bad files -----------------------------------------------------------------------------
def corrupted(tmp_path: Path, edit) -> Path:
    """A valid file of small_graph(), then edited with plain h5py."""
    path = tmp_path / "bad.t1c"
    ir.write(path, small_graph())
    with h5py.File(path, "a") as f:
        edit(f)
    return path


def _replace(f: h5py.File, name: str, value) -> None:
    del f[name]
    f[name] = value


BAD_FILES = {
    "no graph group": (lambda f: f.__delitem__("graph"), None, "graph"),
    "graph is a dataset": (lambda f: (f.__delitem__("graph"), f.create_dataset("graph", data=1)), None, "graph"),
    "no graph type": (lambda f: f.__delitem__("graph/type"), None, "type"),
    "wrong graph type": (lambda f: _replace(f, "graph/type", "Network"), None, "type"),
    "node without type": (lambda f: f.__delitem__("graph/nodes/fc/type"), "fc", "type"),
    "unknown node type": (lambda f: _replace(f, "graph/nodes/fc/type", "Quantum"), "fc", "type"),
    "missing required field": (lambda f: f.__delitem__("graph/nodes/fc/weight"), "fc", "weight"),
    "string for an array": (lambda f: _replace(f, "graph/nodes/fc/weight", "abc"), "fc", "weight"),
    "group for a field": (lambda f: (f.__delitem__("graph/nodes/fc/weight"), f.create_group("graph/nodes/fc/weight")), "fc", "weight"),
    "2-D shape": (lambda f: _replace(f, "graph/nodes/input/shape", np.ones((2, 2), np.int64)), "input", "shape"),
    "float shape": (lambda f: _replace(f, "graph/nodes/input/shape", np.array([4.5])), "input", "shape"),
    "fractional int": (lambda f: _replace(f, "graph/nodes/input/shape", np.float64(2.5)), "input", "shape"),
    "string shape": (lambda f: _replace(f, "graph/nodes/input/shape", "4"), "input", "shape"),
    "bias mismatch": (lambda f: _replace(f, "graph/nodes/fc/bias", np.ones(7, np.float32)), "fc", "bias"),
    "edge to missing node": (lambda f: _replace(f, "graph/edges/dst", np.array(["fc", "ghost"], dtype=h5py.string_dtype())), "ghost", "edges"),
    "edge length mismatch": (lambda f: _replace(f, "graph/edges/dst", np.array(["fc"], dtype=h5py.string_dtype())), None, "edges"),
    "edges not strings": (lambda f: _replace(f, "graph/edges/src", np.array([1, 2])), None, "edges/src"),
    "missing edges/dst": (lambda f: f.__delitem__("graph/edges/dst"), None, "edges"),
    "self loop": (lambda f: _replace(f, "graph/edges/dst", np.array(["fc", "fc"], dtype=h5py.string_dtype())), None, None),
    "soft link": (lambda f: f.__setitem__("graph/nodes/fc/extra", h5py.SoftLink("/version")), "fc", None),
    "external link": (lambda f: f.__setitem__("graph/nodes/ext", h5py.ExternalLink("/etc/hostname", "/x")), None, None),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_refused_naming_node_and_field(tmp_path, case):
    edit, node, field = BAD_FILES[case]
    path = corrupted(tmp_path, edit)
    with pytest.raises(TalonFormatError) as err:
        ir.read(path)
    assert err.value.path == str(path) and str(path) in str(err.value)
    assert err.value.node == node and err.value.field == field


def test_cycle_without_allow_cycles_is_refused(tmp_path):
    cyclic = ir.Graph({"i": ir.Input((2,)), "a": ir.ReLU(), "b": ir.Tanh()}, [("i", "a"), ("a", "b"), ("b", "a")],
                      allow_cycles=True)
    path = tmp_path / "c.t1c"
    ir.write(path, cyclic)
    with h5py.File(path, "a") as f:
        del f["graph/allow_cycles"]
    with pytest.raises(TalonFormatError, match="cycles"):
        ir.read(path)


def test_unknown_type_lists_the_known_ones(tmp_path):
    path = corrupted(tmp_path, BAD_FILES["unknown node type"][0])
    with pytest.raises(TalonFormatError, match="Quantum.*Affine.*LIF"):
        ir.read(path)


def test_external_storage_is_refused(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.ones(12, np.float32).tobytes())
    path = corrupted(tmp_path, lambda f: (
        f.__delitem__("graph/nodes/fc/weight"),
        f.create_dataset("graph/nodes/fc/weight", shape=(3, 4), dtype=np.float32, external=[(str(raw), 0, 48)]),
    ))
    with pytest.raises(TalonFormatError, match="outside the file") as err:
        ir.read(path)
    assert (err.value.node, err.value.field) == ("fc", "weight")


@pytest.mark.parametrize("content", [b"", b"not an hdf5 file at all\n" * 10, "truncated"])
def test_non_hdf5_or_truncated_file(tmp_path, content):
    path = tmp_path / "x.t1c"
    if content == "truncated":
        ir.write(path, small_graph(np.ones((64, 64), np.float32)))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(TalonFormatError) as err:
        ir.read(path)
    assert err.value.path == str(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        ir.read(tmp_path / "nope.t1c")
    with pytest.raises(TalonFormatError):
        ir.read(tmp_path)


# -- atomic writes -------------------------------------------------------------------------
def test_write_creates_parent_folders_and_honours_umask(tmp_path):
    target = tmp_path / "models" / "deep" / "g.t1c"
    ir.write(str(target), small_graph())
    assert ir.read(target).equals(small_graph())
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.fixture(params=["anonymous", "named"])
def temp_mode(request, monkeypatch):
    """Run a test with the O_TMPFILE path and with the named-temp fallback."""
    if request.param == "named":
        monkeypatch.setattr(_atomic, "open_anonymous", lambda folder: None)
    elif not HAS_TMPFILE:
        pytest.skip("no O_TMPFILE here")
    return request.param


def test_failing_write_keeps_existing_file_and_leaves_nothing(tmp_path, monkeypatch, temp_mode):
    target = tmp_path / "g.t1c"
    ir.write(target, small_graph())
    before = target.read_bytes()

    def explode(group, tree):
        group.create_dataset("partial", data=np.ones(1000))
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(serialization, "_write_tree", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ir.write(target, small_graph(np.zeros((5, 4), np.float32)))
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["g.t1c"]


def test_replacing_write_in_both_modes(tmp_path, temp_mode):
    target = tmp_path / "g.t1c"
    ir.write(target, small_graph())
    other = small_graph(np.full((2, 4), 7, np.float64))
    ir.write(target, other)
    assert ir.read(target).equals(other) and os.listdir(tmp_path) == ["g.t1c"]


def test_write_onto_a_directory_is_refused(tmp_path):
    (tmp_path / "d.t1c").mkdir()
    with pytest.raises(IsADirectoryError):
        ir.write(tmp_path / "d.t1c", small_graph())
    assert os.listdir(tmp_path) == ["d.t1c"]


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from talon import ir
    from talon.ir import serialization

    original = serialization._write_tree

    def slow_tree(group, tree):  # write the big weights, then stall so the parent kills us mid-write
        group.create_dataset("scratch", data=np.ones((2048, 2048), np.float32))
        print("writing", flush=True)
        time.sleep(60)

    serialization._write_tree = slow_tree
    weight = np.random.default_rng(0).standard_normal((1024, 4096)).astype(np.float32)
    graph = ir.Graph({"input": ir.Input((4096,)), "fc": ir.Affine(weight=weight), "output": ir.Output((1024,))},
                     [("input", "fc"), ("fc", "output")])
    ir.write(sys.argv[1], graph)
""")


@pytest.mark.skipif(not HAS_TMPFILE, reason="needs O_TMPFILE")
def test_sigkill_mid_write_leaves_target_intact_and_no_stray_files(tmp_path):
    target = tmp_path / "g.t1c"
    ir.write(target, small_graph())
    before = target.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout.readline().strip() == b"writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["g.t1c"]
