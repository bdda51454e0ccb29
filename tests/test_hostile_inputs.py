"""Hostile inputs, round 2: one regression per class (reads outside the folder, native aborts, exponential
walks, FIFOs, memory bombs, shape limits, writer/reader agreement, racing writes, modes, odd dtypes, NIR,
executor states, ONNX shape lies, the CLI). The structure-aware fuzz targets are in tools/fuzzing/hostile.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import h5py
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto
from onnx import helper as h
from onnx import numpy_helper as nh

from converters import ConversionError, ir_to_onnx, nir_to_ir, onnx_to_ir, save_onnx
from converters.errors import UnsupportedOperatorError
from onnx_ops import OrtExecutor, OrtModelError, OrtStateError
from onnx_ops.guard import MAX_INLINED_NODES, survives
from talon import ir
from talon.bridge import StateError, ir_to_torch
from talon.ir import GraphError, TalonFormatError
from talon.ir.primitives.base import MAX_NUMEL

nir = pytest.importorskip("nir")


def _mlp(n: int = 3) -> ir.Graph:
    return ir.Graph({"input": ir.Input((n,)), "fc": ir.Affine(weight=np.arange(n * n, dtype=np.float32).reshape(n, n)),
                     "output": ir.Output((n,))}, [("input", "fc"), ("fc", "output")])


def _model(nodes, inputs, inits=(), opset=18, functions=()) -> onnx.ModelProto:
    graph = h.make_graph(nodes, "g", inputs, [h.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                         initializer=list(inits))
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset), h.make_opsetid("local", 1)],
                        functions=list(functions))


X = h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])


# -- 1. NIR reads outside the folder ------------------------------------------------------------------------------
def _nir_file(path: Path) -> None:
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                                "fc": nir.Affine(weight=np.eye(2, dtype=np.float32), bias=np.zeros(2, np.float32)),
                                "output": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("input", "fc"), ("fc", "output")], type_check=False)
    nir.write(str(path), graph)


@pytest.mark.parametrize("how", ["external link", "soft link", "external storage"])
def test_nir_links_and_external_storage_are_refused_before_anything_is_read(tmp_path: Path, how: str):
    secret = tmp_path.parent / f"{tmp_path.name}-secret.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    path = tmp_path / "evil.nir"
    _nir_file(path)
    with h5py.File(path, "r+") as f:
        del f["node/nodes/fc/weight"]
        if how == "external link":
            f["node/nodes/fc/weight"] = h5py.ExternalLink(str(secret), "/w")
        elif how == "soft link":
            f["node/nodes/fc/weight"] = h5py.SoftLink("/node/nodes/fc/bias")
        else:
            f.create_dataset("node/nodes/fc/weight", shape=(2, 2), dtype=np.float32, external=[(str(secret), 0, 16)])
    with pytest.raises(ConversionError, match="link|outside the file"):
        nir_to_ir(path, dt=1e-4)


# -- 2. one external-data check for every onnxruntime entry point ------------------------------------------------
def _external_sparse_constant(location: str) -> onnx.ModelProto:
    values = TensorProto(name="v", dims=[2], data_type=TensorProto.FLOAT, data_location=TensorProto.EXTERNAL)
    values.external_data.add(key="location", value=location)
    sparse = onnx.SparseTensorProto(values=values, indices=nh.from_array(np.array([0, 3], np.int64), "i"), dims=[6])
    return _model([h.make_node("Constant", [], ["c"], sparse_value=sparse), h.make_node("Add", ["x", "c"], ["y"])], [X])


def test_external_sparse_attributes_are_refused_in_memory(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.bin").write_bytes(b"\0" * 8)
    with pytest.raises(OrtModelError, match="'w.bin'.*without its folder"):
        OrtExecutor(_external_sparse_constant("w.bin"))


def test_hard_linked_external_data_is_refused_by_both_readers(tmp_path: Path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 8)
    folder = tmp_path / "model"
    folder.mkdir()
    os.link(outside, folder / "w.bin")
    onnx.save(_external_sparse_constant("w.bin"), folder / "m.onnx")
    with pytest.raises(OrtModelError, match="hard links"):
        OrtExecutor(folder / "m.onnx")
    with pytest.raises(ConversionError, match="hard links"):
        onnx_to_ir(folder / "m.onnx")


# -- 3. native aborts --------------------------------------------------------------------------------------------
def _split(num_outputs: int) -> onnx.ModelProto:
    outs = [h.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3]) for n in ("a", "b")]
    graph = h.make_graph([h.make_node("Split", ["x"], ["a", "b"], axis=1, num_outputs=num_outputs)], "g", [X], outs)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])


def test_split_whose_num_outputs_disagrees_is_refused_instead_of_aborting():
    with pytest.raises(UnsupportedOperatorError, match="num_outputs is 1 but the node has 2 outputs"):
        onnx_to_ir(_split(1))
    with pytest.raises(OrtModelError, match="num_outputs is 1"):
        OrtExecutor(_split(1))
    assert onnx_to_ir(_split(2)).nodes  # the consistent node still converts


def test_an_abort_in_native_code_is_seen_from_the_parent():
    assert survives(lambda: os.abort()) == 6
    assert survives(lambda: 1 / 0) is None  # exceptions are the parent's to see


# -- 4. exponential work -----------------------------------------------------------------------------------------
def test_hard_linked_group_dag_is_refused_in_one_pass(tmp_path: Path):
    path = tmp_path / "dag.t1c"
    ir.write(path, _mlp())
    with h5py.File(path, "r+") as f:
        groups = [f.create_group(f"graph/metadata/g{i}") for i in range(60)]  # 2**60 paths as a tree
        for a, b in zip(groups, groups[1:]):
            a["l"], a["r"] = b, b
    with pytest.raises(TalonFormatError, match="second link to an object"):
        ir.read(path)


def _nested(depth: int, recursive: bool = False) -> onnx.ModelProto:
    functions = []
    for i in range(depth):
        last = i == depth - 1
        callee = "f0" if recursive and last else f"f{i + 1}"
        body = [h.make_node("Relu", ["x"], ["y"])] if last and not recursive else [
            h.make_node(callee, ["x"], ["t"], domain="local"), h.make_node(callee, ["t"], ["y"], domain="local")]
        functions.append(h.make_function("local", f"f{i}", ["x"], ["y"], body,
                                         [h.make_opsetid("", 18), h.make_opsetid("local", 1)]))
    return _model([h.make_node("f0", ["x"], ["y"], domain="local")], [X], functions=functions)


def test_function_inlining_is_bounded_and_recursion_refused():
    with pytest.raises(ConversionError, match=f"more than {MAX_INLINED_NODES} nodes"):
        onnx_to_ir(_nested(40))
    with pytest.raises(OrtModelError, match="calls itself"):
        OrtExecutor(_nested(3, recursive=True))
    np.testing.assert_array_equal(OrtExecutor(_nested(4))(np.array([[-1, 2, -3, 4, -5, 6]], np.float32)),
                                  [[0, 2, 0, 4, 0, 6]])


# -- 5. FIFOs ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("read", [ir.read, onnx_to_ir])
def test_fifo_paths_are_refused_without_blocking(tmp_path: Path, read):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises((TalonFormatError, ConversionError), match="FIFO"):
        read(fifo)


# -- 6. memory budgets -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["shared", "fill"])
def test_datasets_beyond_the_files_size_are_refused(tmp_path: Path, how: str):
    path = tmp_path / "bomb.t1c"
    ir.write(path, _mlp())
    with h5py.File(path, "r+") as f:
        if how == "shared":
            ds = f.create_dataset("graph/metadata/big", data=np.zeros(1024, np.float32))
            for i in range(50):
                f[f"graph/metadata/k{i}"] = ds
        else:
            for i in range(20):
                f.create_dataset(f"graph/metadata/f{i}", shape=(1 << 16,), chunks=(1024,), dtype=np.float64,
                                 fillvalue=1.0)
    with pytest.raises(TalonFormatError, match="second link|never written|budget"):
        ir.read(path)


def test_constant_folding_does_not_evaluate_oversized_results():
    import converters.cleanup as cleanup

    shape = nh.from_array(np.array([cleanup.FOLD_LIMIT, 2], np.int64), "s")
    model = _model([h.make_node("ConstantOfShape", ["s"], ["c"]), h.make_node("ReduceSum", ["c"], ["r"], keepdims=0),
                    h.make_node("Add", ["x", "r"], ["y"])], [X], [shape])
    with pytest.raises(UnsupportedOperatorError, match="Add"):  # r is left computed (folded, Add would be a bias)
        onnx_to_ir(model)


# -- 7. shape limits ---------------------------------------------------------------------------------------------
def test_shapes_beyond_the_limit_are_refused_before_allocation():
    with pytest.raises(GraphError, match=f"more than {MAX_NUMEL} elements"):
        ir.Graph({"input": ir.Input((2**31,)), "output": ir.Output((2**31,))}, [("input", "output")]).infer_shapes()
    pads = nh.from_array(np.array([0, 0, 0, 2**40], np.int64), "p")
    with pytest.raises(UnsupportedOperatorError, match="more than"):
        onnx_to_ir(_model([h.make_node("Pad", ["x", "p"], ["y"])], [X], [pads]))


# -- 8. the writer refuses what the reader refuses ----------------------------------------------------------------
def test_metadata_too_deep_or_self_referencing_is_refused_by_the_writer(tmp_path: Path):
    path = tmp_path / "m.t1c"
    ir.write(path, _mlp())
    before = path.read_bytes()
    deep: dict = {}
    inner = deep
    for _ in range(70):
        inner["d"] = {}
        inner = inner["d"]
    loop: dict = {}
    loop["me"] = loop
    for metadata in (deep, loop):
        graph = _mlp()
        graph.metadata = metadata
        with pytest.raises(TalonFormatError, match="nested more than"):
            ir.write(path, graph)
    assert path.read_bytes() == before  # the good file is untouched


# -- 9 and 10. kills, races, modes -------------------------------------------------------------------------------
def test_save_onnx_sweeps_data_files_left_by_a_killed_writer(tmp_path: Path):
    path = tmp_path / "m.onnx"
    model = ir_to_onnx(_mlp())
    save_onnx(model, path, external_data_threshold=0)
    from converters.ir_to_onnx import DATA_MARK

    orphan = tmp_path / "m.onnx.0123456789ab.data"  # what a writer killed before its model was in place leaves
    orphan.write_bytes(DATA_MARK + b"\0" * 64)
    stale = tmp_path / ".m.onnx.0123456789ab.tmp"  # a killed writer's temporary file (no O_TMPFILE)
    stale.write_bytes(b"partial")
    save_onnx(model, path, external_data_threshold=0)
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 2 and names[0] == "m.onnx" and names[1].endswith(".data"), names
    np.testing.assert_array_equal(OrtExecutor(path)(np.ones((1, 3), np.float32)), np.ones((1, 3)) @ _mlp().nodes["fc"].weight.T)


def test_rewriting_keeps_the_files_mode(tmp_path: Path):
    for path, write in ((tmp_path / "m.t1c", lambda p: ir.write(p, _mlp())),
                        (tmp_path / "m.onnx", lambda p: save_onnx(ir_to_onnx(_mlp()), p))):
        write(path)
        os.chmod(path, 0o600)
        write(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# -- 11. odd .t1c dtypes -----------------------------------------------------------------------------------------
def test_big_endian_weights_read_in_native_order_and_write_back(tmp_path: Path):
    path = tmp_path / "be.t1c"
    graph = _mlp()
    ir.write(path, graph)
    with h5py.File(path, "r+") as f:
        del f["graph/nodes/fc/weight"]
        f["graph/nodes/fc/weight"] = graph.nodes["fc"].weight.astype(">f4")
    read = ir.read(path)
    assert read.nodes["fc"].weight.dtype == np.float32 and read.nodes["fc"].weight.dtype.isnative
    np.testing.assert_array_equal(read.nodes["fc"].weight, graph.nodes["fc"].weight)
    ir.write(tmp_path / "back.t1c", read)
    assert not read.diff(ir.read(tmp_path / "back.t1c"))


@pytest.mark.parametrize("kind", ["float128", "int128", "time", "huge int", "zero by huge"])
def test_values_that_cannot_round_trip_are_refused(tmp_path: Path, kind: str):
    path = tmp_path / "odd.t1c"
    ir.write(path, _mlp())
    with h5py.File(path, "r+") as f:
        if kind == "float128":
            del f["graph/nodes/fc/weight"]
            f["graph/nodes/fc/weight"] = np.ones((3, 3), np.longdouble)
        elif kind in ("int128", "time"):
            t = h5py.h5t.STD_I64LE.copy() if kind == "int128" else h5py.h5t.UNIX_D64LE.copy()
            if kind == "int128":
                t.set_size(16)
            h5py.h5d.create(f["graph/metadata"].id if "graph/metadata" in f else f.create_group("graph/metadata").id,
                            b"odd", t, h5py.h5s.create_simple((2,)))
        elif kind == "huge int":
            f["graph/nodes/output/shape"][...] = 0
            del f["graph/nodes/output/shape"]
            f["graph/nodes/output/shape"] = np.array([2**64 - 1], np.uint64)
        else:
            f.create_dataset("graph/metadata/z", shape=(0, 2**62), dtype=np.float32)
    with pytest.raises(TalonFormatError):
        ir.read(path)
    graph = _mlp()
    graph.nodes["fc"].weight = np.ones((3, 3), np.longdouble)
    with pytest.raises(TalonFormatError, match="at most 64-bit"):
        ir.write(path, graph)


# -- 12. NIR import errors and time constants ------------------------------------------------------------------------
def _lif_graph(tau: float) -> "nir.NIRGraph":
    return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                               "lif": nir.LIF(tau=np.full(2, tau), r=np.ones(2), v_leak=np.zeros(2),
                                              v_threshold=np.ones(2)),
                               "output": nir.Output(output_type={"output": np.array([2])})},
                        edges=[("input", "lif"), ("lif", "output")], type_check=False)


def test_nir_dt_and_time_constants_are_validated():
    with pytest.raises(ConversionError, match="dt must be a number"):
        nir_to_ir(_lif_graph(1e-2), dt="0.1")
    with pytest.raises(ConversionError, match="'lif'.*tau / dt"):
        nir_to_ir(_lif_graph(1e-2), dt=1.0)  # tau shorter than one step
    with pytest.raises(ConversionError, match="'lif'.*tau / dt"):
        nir_to_ir(_lif_graph(1e-2), dt=1e-300)  # tau / dt overflows float32
    lif = nir_to_ir(_lif_graph(1e-2), dt=1e-3).nodes["lif"]
    np.testing.assert_array_equal(lif.tau, np.float32(1e-2 / 1e-3))


def test_malformed_nir_files_give_typed_errors(tmp_path: Path):
    path = tmp_path / "bad.nir"
    _nir_file(path)
    with h5py.File(path, "r+") as f:
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc/weight"] = np.array("text", dtype=h5py.string_dtype())
    with pytest.raises(ConversionError, match="bad.nir: not a readable NIR file: AttributeError"):
        nir_to_ir(path, dt=1e-4)


# -- 13. executor states and dtypes ----------------------------------------------------------------------------------
def _cuba() -> ir.Graph:
    n = 3
    return ir.Graph({"input": ir.Input((n,)),
                     "cuba": ir.CubaLIF(tau_syn=np.full(n, 2.0, np.float32), tau_mem=np.full(n, 3.0, np.float32),
                                        r=np.ones(n, np.float32), v_leak=np.zeros(n, np.float32),
                                        v_threshold=np.ones(n, np.float32), w_in=np.ones(n, np.float32)),
                     "output": ir.Output((n,))}, [("input", "cuba"), ("cuba", "output")])


def test_every_state_item_is_checked_and_states_must_be_dicts():
    x = torch.ones(2, 3)
    ex = ir_to_torch(_cuba(), return_state=True)
    with pytest.raises(StateError, match=r"state\['cuba'\]\[1\] has shape \(7, 3\)"):
        ex(x, {"cuba": (torch.zeros(2, 3), torch.zeros(7, 3))})
    with pytest.raises(StateError, match="must be a dict"):
        ex(x, [torch.zeros(2, 3)])
    ort = OrtExecutor(ir_to_onnx(_cuba()), return_state=True)
    with pytest.raises(OrtStateError, match="must be a dict"):
        ort(x.numpy(), [np.zeros((2, 3), np.float32)])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float8_e4m3fn])
def test_ort_executor_feeds_bfloat16_and_float8_exactly(dtype):
    x = (torch.arange(6).reshape(2, 3) / 4).to(dtype)
    graph = _mlp()
    out = OrtExecutor(ir_to_onnx(graph))(x)
    np.testing.assert_array_equal(out, x.float().numpy() @ graph.nodes["fc"].weight.T)


# -- 14. onnx_to_ir checks the graph it returns --------------------------------------------------------------------
def test_inconsistent_onnx_shapes_and_talon_metadata_are_refused():
    w = nh.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    x = h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5, 5])
    with pytest.raises(ConversionError, match="pads"):
        onnx_to_ir(_model([h.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1], kernel_shape=[3, 3])], [x], [w]))
    slope = nh.from_array(np.ones(5, np.float32), "s")
    with pytest.raises(ConversionError):
        onnx_to_ir(_model([h.make_node("PRelu", ["x", "s"], ["y"])], [X], [slope]))
    from converters.export import jsonvalue

    with pytest.raises(ValueError, match="more memory than"):
        jsonvalue.decode('{"__array__": ["a"], "dtype": "|S1000000000", "shape": [1]}')


# -- 15. the command line --------------------------------------------------------------------------------------------
def test_cli_prints_names_as_data_and_fails_in_one_typed_line(tmp_path: Path):
    from click.testing import CliRunner

    from talon.cli.app import cli

    name = "[/bold]\x1b[31m"
    graph = ir.Graph({"input": ir.Input((3,)), name: ir.Affine(weight=np.eye(3, dtype=np.float32)),
                      "output": ir.Output((3,))}, [("input", name), (name, "output")])
    ir.write(tmp_path / "m.t1c", graph)
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path / "m.t1c")])
    assert result.exit_code == 0 and "[/bold]\\x1b[31m" in result.output and "\x1b" not in result.output
    np.save(tmp_path / "c.npy", np.ones((1, 3), np.complex64))
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "m.t1c"), "--input", str(tmp_path / "c.npy")])
    assert result.exit_code == 1 and result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'c.npy'}: input 'input' holds complex64 values; inputs must be real numbers "
        "(complex, text and object arrays are refused)"]


def test_a_cycle_of_values_is_refused_not_walked_forever():
    """A malformed model whose values form a cycle (y feeds the node that makes y) ends in a typed error;
    the data walk (fuzz case onnx/7/1128) used to spin on it."""
    nodes = [h.make_node("Add", ["x", "y"], ["s"]), h.make_node("Relu", ["s"], ["y"]), h.make_node("Relu", ["y"], ["z"])]
    graph = h.make_graph(nodes, "cycle", [h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                         [h.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])])
    with pytest.raises(ConversionError):
        onnx_to_ir(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]))
