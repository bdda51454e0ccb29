"""Minimal reproductions of what the fuzzer (tools/fuzz.py) found, one per finding: each bad input must be
refused with the project's documented error for it (TalonFormatError naming file, node and field for .t1c
files; PrimitiveError naming the field; ConversionError or UnsupportedOperatorError naming the op and
attribute for ONNX; OrtModelError naming the model for OrtExecutor), never another exception, a hang or a
silent answer."""

from __future__ import annotations

import math
import re
import resource
import signal
import subprocess
import sys

import h5py
import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx import helper as h
from onnx import numpy_helper as nh

from converters import ir_to_onnx, onnx_to_ir
from converters.errors import ConversionError, UnsupportedOperatorError
from onnx_ops import OrtExecutor
from onnx_ops.errors import OrtModelError
from talon import ir
from talon.ir.errors import GraphError, PrimitiveError, TalonFormatError

F = TensorProto.FLOAT


def _refused_naming_the_weight(path, reason: str) -> None:
    """ir.read refuses the file with a TalonFormatError naming it, node 'fc' and field 'weight', and why."""
    with pytest.raises(TalonFormatError, match=reason) as refused:
        ir.read(path)
    assert (refused.value.path, refused.value.node, refused.value.field) == (str(path), "fc", "weight")
    assert str(refused.value).startswith(f"{path}: node 'fc', field 'weight': ")


def _affine_file(path) -> None:
    w = np.ones((2, 3), np.float32)
    ir.write(path, ir.Graph({"input": ir.Input((3,)), "fc": ir.Affine(weight=w), "output": ir.Output((2,))},
                            [("input", "fc"), ("fc", "output")]))


# -- .t1c reading ------------------------------------------------------------------------------------
HUGE = {
    (2**34,): r"a dataset of shape \(17179869184,\) and type float32 needs 68719476736 bytes, beyond the file's "
              r"budget of {size} bytes",
    (2**40, 2**20): r"shape \(1099511627776, 1048576\) describes more than 2\*\*62 bytes",
}


@pytest.mark.parametrize("shape", HUGE)
def test_t1c_dataset_declaring_a_huge_shape_is_refused(tmp_path, shape):
    # chunked and never written: the file stays tiny, numpy would be asked for terabytes
    path = tmp_path / "huge.t1c"
    _affine_file(path)
    with h5py.File(path, "r+") as f:
        del f["graph/nodes/fc/weight"]
        f["graph/nodes/fc"].create_dataset("weight", shape=shape, dtype="f4", chunks=(1,) * len(shape))
    _refused_naming_the_weight(path, HUGE[shape].format(size=path.stat().st_size))


def _replace_weight(path, make) -> None:
    """Swap the Affine's weight dataset for what `make(node_group)` creates."""
    with h5py.File(path, "r+") as f:
        del f["graph/nodes/fc/weight"]
        make(f["graph/nodes/fc"])


def test_t1c_compressed_dataset_is_refused(tmp_path):
    path = tmp_path / "gzip.t1c"
    _affine_file(path)
    _replace_weight(path, lambda g: g.create_dataset("weight", data=np.ones((2, 3), np.float32), compression="gzip"))
    _refused_naming_the_weight(path, "uses HDF5 filters")


def test_t1c_float_type_without_a_numpy_equivalent_is_refused(tmp_path):
    path = tmp_path / "ebias.t1c"
    _affine_file(path)
    float_type = h5py.h5t.IEEE_F32LE.copy()
    float_type.set_ebias(2**20)  # no numpy float has the range: h5py raises "Insufficient precision"
    _replace_weight(path, lambda g: h5py.h5d.create(g.id, b"weight", float_type, h5py.h5s.create_simple((2, 3))))
    _refused_naming_the_weight(path, "unreadable datatype")


def test_t1c_corrupt_global_heap_is_refused_without_hanging(tmp_path):
    # libhdf5 loops forever on a heap object that does not advance (free space of size 0); every string
    # lives in that heap, so reading any of them hangs unless the collection is checked first
    path = tmp_path / "heap.t1c"
    _affine_file(path)
    data = bytearray(path.read_bytes())
    first_object = data.index(b"GCOL") + 16  # after the collection header: index, refs, reserved, size
    data[first_object:first_object + 2] = b"\0\0"
    data[first_object + 8:first_object + 16] = b"\0" * 8
    path.write_bytes(bytes(data))
    code = (f"from talon import ir\ntry:\n    ir.read({str(path)!r})\nexcept ir.TalonFormatError as e:\n"
            "    print(e.path, e.node, e.field)\n    print(e)")
    # the bound is CPU time (a loop burns it; a busy machine does not): SIGXCPU after 120 s of it
    limit = lambda: resource.setrlimit(resource.RLIMIT_CPU, (120, resource.getrlimit(resource.RLIMIT_CPU)[1]))  # noqa: E731
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=limit)
    assert done.returncode != -signal.SIGXCPU, "ir.read looped on the corrupt heap"
    where, message = done.stdout.splitlines()  # the first string read is the graph's `type`
    assert where == f"{path} None type", done.stdout + done.stderr
    assert re.fullmatch(rf"{re.escape(str(path))}, field 'type': global heap at \d+ is corrupt \(.*\)", message)


# -- fields and shapes beyond what float32 and int64 hold --------------------------------------------------
def test_elu_alpha_beyond_float32_is_refused_when_the_node_is_built():
    with pytest.raises(PrimitiveError, match=r"^ELU\.alpha: must be finite and within float32 range") as refused:
        ir.ELU(alpha=1e308)
    assert (refused.value.primitive, refused.value.field) == ("ELU", "alpha")
    assert float(ir.ELU(alpha=3.0e38).alpha) == 3.0e38  # the float32 range itself is accepted


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e39])
def test_float_fields_beyond_float32_are_refused_naming_the_field(value):
    reason = f"must be finite and within float32 range, got {value!r}"
    with pytest.raises(PrimitiveError, match=rf"^ReLU\.negative_slope: {re.escape(reason)}$") as refused:
        ir.ReLU(negative_slope=value)
    assert refused.value.field == "negative_slope"


def test_pad_value_may_be_infinite_but_not_nan():
    assert ir.Pad(padding=(1, 1), value=-math.inf).value == -math.inf  # what max-pool importers pad with
    with pytest.raises(PrimitiveError, match=r"^Pad\.value: ") as refused:
        ir.Pad(padding=(1, 1), value=math.nan)
    assert refused.value.field == "value"


def _flatten_graph(shape: tuple[int, ...]) -> ir.Graph:
    return ir.Graph({"input": ir.Input(shape), "flat": ir.Flatten(start_dim=0, end_dim=-1),
                     "output": ir.Output((1,))}, [("input", "flat"), ("flat", "output")])


def test_a_shape_over_the_size_bound_is_refused_where_it_is_declared():
    # numel() multiplied in int64 and wrapped: (2**62, 4) flattened to (0,) silently
    limit = 2**28  # the documented bound on elements per sample (1 GiB of float32)
    with pytest.raises(GraphError, match=rf"^node 'input': output shape \(4611686018427387904, 4\) has more than "
                                         rf"{limit} elements per sample"):
        _flatten_graph((2**62, 4)).infer_shapes()
    assert _flatten_graph((2**14, 2**14)).infer_shapes()["flat"] == (limit,)  # the bound itself: exact


# -- onnx_to_ir ----------------------------------------------------------------------------------------
def _model(nodes, inits=(), x=("N", 2, 4, 4), y=None, opset: int = 17) -> onnx.ModelProto:
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", F, list(x))],
                         [h.make_tensor_value_info("y", F, y)], list(inits))
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], ir_version=9)


def _attribute_of_wrong_type(node: onnx.NodeProto, name: str, value) -> onnx.NodeProto:
    node.attribute.append(h.make_attribute(name, value))
    return node


WRONG_ATTRIBUTES = {
    "Concat axis as ints": _model([_attribute_of_wrong_type(h.make_node("Concat", ["x", "x"], ["y"]), "axis", [1, 2])]),
    "Softmax axis as ints": _model([_attribute_of_wrong_type(h.make_node("Softmax", ["x"], ["y"]), "axis", [1])]),
    "MaxPool without kernel_shape": _model([h.make_node("MaxPool", ["x"], ["y"])]),
    "BatchNormalization epsilon as floats": _model(
        [_attribute_of_wrong_type(h.make_node("BatchNormalization", ["x", *"sbmv"], ["y"]), "epsilon", [0.1])],
        [nh.from_array(np.ones(2, np.float32), n) for n in "sbmv"]),
}


WRONG_ATTRIBUTE_REASONS = {
    "Concat axis as ints": "Concat (node '', opset 17): attribute 'axis' must be of type INT, got INTS",
    "Softmax axis as ints": "Softmax (node '', opset 17): attribute 'axis' must be of type INT, got INTS",
    "MaxPool without kernel_shape": "MaxPool (node '', opset 17): lacks its required attribute 'kernel_shape'",
    "BatchNormalization epsilon as floats":
        "BatchNormalization (node '', opset 17): attribute 'epsilon' must be of type FLOAT, got FLOATS",
}


@pytest.mark.parametrize("case", WRONG_ATTRIBUTES)
def test_attribute_of_the_wrong_type_or_missing_is_refused_naming_the_node(case):
    with pytest.raises(UnsupportedOperatorError) as refused:
        onnx_to_ir(WRONG_ATTRIBUTES[case])
    lines = str(refused.value).splitlines()
    op = WRONG_ATTRIBUTES[case].graph.node[-1].op_type
    assert lines[:3] == [f"1 ONNX node(s) cannot be converted to TALON IR ({op} x1):", f"  {op} (1):",
                         f"    - {WRONG_ATTRIBUTE_REASONS[case]}"]


def test_truncated_initializer_data_is_refused():
    w = nh.from_array(np.ones((4, 3), np.float32), "w")
    w.raw_data = w.raw_data[:-2]
    model = _model([h.make_node("Gemm", ["x", "w"], ["y"], transB=1)], [w], x=("N", 3))
    with pytest.raises(UnsupportedOperatorError, match=r"Gemm \(node '', opset 17\): constant 'w' \(FLOAT, "
                                                       r"shape \[4,3\]\): its data cannot be read"):
        onnx_to_ir(model)


def test_value_declared_twice_is_refused():
    model = _model([h.make_node("Relu", ["x"], ["r"]), h.make_node("Sigmoid", ["x"], ["r"]),
                    h.make_node("Tanh", ["r"], ["y"])], x=("N", 3))
    with pytest.raises(ConversionError, match=r"^ONNX model 'g': reading the model into onnx_ir failed"):
        onnx_to_ir(model)


def _talon_export() -> onnx.ModelProto:
    graph = ir.Graph({"input": ir.Input((3,)), "relu": ir.ReLU(), "output": ir.Output((3,))},
                     [("input", "relu"), ("relu", "output")])
    return ir_to_onnx(graph)


CORRUPT_EDGES = {
    "number": ("1.5", "talon.edges must be a JSON list, got float"),
    "truncated": ("[", "talon.edges is not a valid talon JSON value: JSONDecodeError"),
    "deep": ("[" * 100000 + "]" * 100000, "talon.edges is not a valid talon JSON value: RecursionError"),
    "short-edge": ('[["input"]]', "talon.edges: every edge must be a [source, destination] pair of names, got ['input']"),
    "int-names": ('[[1, 2]]', "talon.edges: every edge must be a [source, destination] pair of names, got [1, 2]"),
}


@pytest.mark.parametrize("case", CORRUPT_EDGES)
def test_corrupt_talon_edges_property_is_refused(case):
    edges, reason = CORRUPT_EDGES[case]
    model = _talon_export()
    for prop in model.metadata_props:
        if prop.key == "talon.edges":
            prop.value = edges
    with pytest.raises(ConversionError, match=f"^{re.escape(reason)}"):
        onnx_to_ir(model)


# -- OrtExecutor -------------------------------------------------------------------------------------
def test_ort_refuses_a_file_that_is_not_an_onnx_model(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"\x08\x0e:\xff\xff\xff\xff\x0f garbage")
    with pytest.raises(OrtModelError, match=rf"^{re.escape(repr(str(path)))} is not an ONNX model: "):
        OrtExecutor(path)


def test_ort_refuses_an_invalid_graph():
    model = _model([h.make_node("Relu", ["y"], ["r"]), h.make_node("Relu", ["r"], ["y"])], x=("N", 3))
    with pytest.raises(OrtModelError, match=r"^onnxruntime failed to load model 'g': .*the graph is not acyclic"):
        OrtExecutor(model)


def test_ort_refuses_an_input_without_an_element_type():
    model = _model([h.make_node("Relu", ["x"], ["y"])], x=("N", 3))
    model.graph.input[0].type.tensor_type.elem_type = 0
    with pytest.raises(OrtModelError, match=r"^model 'g': input 'x' is not a tensor of a known element type"):
        OrtExecutor(model)


def test_ort_state_input_with_a_symbolic_feature_dim_is_refused():
    model = ir_to_onnx(ir.Graph(
        {"input": ir.Input((3,)), "lif": ir.LIF(tau=np.full(3, 2.0, np.float32), r=np.ones(3, np.float32),
                                                v_leak=np.zeros(3, np.float32), v_threshold=np.ones(3, np.float32)),
         "output": ir.Output((3,))}, [("input", "lif"), ("lif", "output")]))
    state = next(i for i in model.graph.input if i.name != "input")
    state.type.tensor_type.shape.dim[1].dim_param = "F"
    with pytest.raises(OrtModelError, match=r"state input 'lif.v_in' has shape \[None, None\]; a state input needs "
                                           r"a batch dim followed by fixed feature dims"):
        OrtExecutor(model)  # its rest value (zeros of the feature shape) cannot be built


def test_ort_refuses_unknown_talon_ops():
    model = _model([h.make_node("Split", ["x"], ["y"], domain="talon")], x=("N", 3))
    model.opset_import.append(h.make_opsetid("talon", 1))
    with pytest.raises(OrtModelError, match=r"^model 'g': model uses unknown talon ops \['Split'\]; known: \["):
        OrtExecutor(model)
