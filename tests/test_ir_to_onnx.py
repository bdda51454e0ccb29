"""IR -> ONNX: every primitive passes the checker and runs in onnxruntime equal to the torch GraphExecutor
(10 steps with state), the metadata convention restores every node exactly, the fixtures reproduce their
stored outputs, run_sequence equals the step loop, and models are written atomically (external data too)."""

from __future__ import annotations

import os
import re

import numpy as np
import onnx
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import converters
from converters.errors import ConversionError
from converters.export import ARRAYS, METADATA, PARAMS, PRIMITIVE, jsonvalue
from converters.ir_to_onnx import DATA_MARK
from onnx_ops import OrtExecutor, OrtInputError, OrtStateError, reference_evaluator
from talon import ir
from talon.bridge.executor import ir_to_torch
from talon.ir.primitives import get_primitive

from conftest import fixture_manifest
from strategies import BUILDERS, LAYER_TYPES, graphs, input_shapes, node_for_shape

STEPS = 10
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
FEW = settings(SETTINGS, max_examples=8)


def _as_dict(out) -> dict:
    return out if isinstance(out, dict) else {"": out}


def _feed(xs: dict[str, np.ndarray], t: int | slice, torch_: bool = False):
    """The inputs of step(s) t, a single array when the graph has one Input."""
    step = {n: (torch.from_numpy(v[t]) if torch_ else v[t]) for n, v in xs.items()}
    return step if len(step) > 1 else next(iter(step.values()))


def _inputs(graph: ir.Graph, seed: int, batch: int = 2) -> dict[str, np.ndarray]:
    shapes = graph.infer_shapes()
    rng = np.random.default_rng(seed)
    return {n: (rng.standard_normal((STEPS, batch, *shapes[n])) * 1.5).astype(np.float32) for n in graph.inputs}


def _assert_close(got: dict, want: dict, tol: float = 1e-5) -> None:
    assert set(got) == set(want)
    for k in got:
        np.testing.assert_allclose(got[k], want[k], rtol=tol, atol=tol, err_msg=str(k))


def _restore(model: onnx.ModelProto, arrays: dict[str, np.ndarray]) -> dict[str, ir.Node]:
    """IR nodes rebuilt from the metadata_props convention alone (what onnx_to_ir relies on)."""
    protos = [*model.graph.node, *model.graph.input, *model.graph.output]
    nodes = {}
    for proto in protos:
        props = {p.key: p.value for p in proto.metadata_props}
        if PRIMITIVE not in props:
            continue
        fields = jsonvalue.decode(props[PARAMS])
        fields.update({f: arrays[init] for f, init in jsonvalue.decode(props[ARRAYS]).items()})
        meta = jsonvalue.decode(props[METADATA]) if METADATA in props else {}
        nodes[proto.name] = get_primitive(props[PRIMITIVE])(**fields, metadata=meta)
    return nodes


def check_graph(graph: ir.Graph, seed: int = 0, tol: float = 1e-5) -> onnx.ModelProto:
    """Checker, exact node restoration, and onnxruntime == torch GraphExecutor over STEPS with state
    (max abs diff <= tol; spikes, being 0/1, must then be identical)."""
    model = converters.ir_to_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    arrays = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    restored = _restore(model, arrays)
    assert set(restored) == set(graph.nodes)
    for name, node in graph.nodes.items():
        assert type(restored[name]) is type(node) and restored[name] == node, name
    props = {p.key: p.value for p in model.metadata_props}
    assert [tuple(e) for e in jsonvalue.decode(props["talon.edges"])] == graph.edges
    assert ir.Graph(restored, jsonvalue.decode(props["talon.edges"]), graph.metadata) == graph

    ort_ex = OrtExecutor(model, return_state=True)
    torch_ex = ir_to_torch(graph, return_state=True)
    assert set(ort_ex.state_nodes) == set(torch_ex.state_names)
    xs = _inputs(graph, seed)
    s_ort = s_torch = None
    steps = []
    for t in range(STEPS):
        out, s_ort = ort_ex(_feed(xs, t), s_ort)
        with torch.no_grad():
            ref, s_torch = torch_ex(_feed(xs, t, torch_=True), s_torch)
        _assert_close(_as_dict(out), {k: v.numpy() for k, v in _as_dict(ref).items()}, tol)
        for node in s_torch:
            _assert_close(dict(enumerate(s_ort[node])), {i: b.numpy() for i, b in enumerate(s_torch[node])}, tol)
        steps.append(_as_dict(out))
    seq, s_seq = ort_ex.run_sequence(_feed(xs, slice(None)))
    for k, v in _as_dict(seq).items():
        np.testing.assert_allclose(v, np.stack([s[k] for s in steps]), rtol=1e-6, atol=1e-6)
    for node in s_seq:
        for a, b in zip(s_seq[node], s_ort[node]):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    return model


@pytest.mark.parametrize("type_name", [t for t in LAYER_TYPES if t in BUILDERS])
@FEW
@given(data=st.data())
def test_every_layer_primitive(type_name: str, data) -> None:
    ranks, _ = BUILDERS[type_name]
    shape = data.draw(input_shapes(ranks))
    node = data.draw(node_for_shape(type_name, shape))
    graph = ir.Graph(
        {"input": ir.Input(shape), "layer": node, "output": ir.Output((1,))}, [("input", "layer"), ("layer", "output")]
    )
    graph.nodes["output"] = ir.Output(graph.infer_shapes()["layer"])
    check_graph(graph, data.draw(st.integers(0, 2**31)))


@SETTINGS
@given(graph=graphs(metadata=True), seed=st.integers(0, 2**31))
def test_random_graphs_with_routing_and_several_inputs_outputs(graph: ir.Graph, seed: int) -> None:
    # several layers deep, rounding differences (BLAS summation order) compound past 1e-5
    check_graph(graph, seed, tol=1e-4)


def test_reference_evaluator_equals_onnxruntime() -> None:
    rng = np.random.default_rng(5)
    nodes = {
        "input": ir.Input((2, 6, 6)),
        "conv": ir.SepConv2d(
            depthwise_weight=rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
            pointwise_weight=rng.standard_normal((4, 2, 1, 1)).astype(np.float32),
            padding=(1, 1),
        ),
        "lif": ir.LIF(
            tau=np.full((4, 6, 6), 3, np.float32),
            r=np.ones((4, 6, 6), np.float32),
            v_leak=np.zeros((4, 6, 6), np.float32),
            v_threshold=np.full((4, 6, 6), 0.5, np.float32),
        ),
        "split": ir.ChannelSplit(split_sections=(1, 3)),
        "pool": ir.SumPool2d(kernel_size=(2, 2)),
        "cat": ir.Concat(dim=1),
        "output": ir.Output((4, 3, 3)),
    }
    edges = [
        ("input", "conv"),
        ("conv", "lif"),
        ("lif", "pool"),
        ("pool", "split"),
        ("split", "cat"),
        ("split", "output2"),
        ("cat", "output"),
    ]
    nodes["output"], nodes["output2"] = ir.Output((1, 3, 3)), ir.Output((3, 3, 3))
    model = check_graph(ir.Graph(nodes, edges))
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    feeds = {"input": x, "lif.v_in": rng.uniform(0, 0.5, (2, 4, 6, 6)).astype(np.float32)}
    ex = OrtExecutor(model, return_state=True)
    out, state = ex(x, {"lif": (feeds["lif.v_in"],)})
    ref = dict(zip([o.name for o in model.graph.output], reference_evaluator(model).run(None, feeds)))
    for k, v in out.items():
        np.testing.assert_allclose(v, ref[k], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state["lif"][0], ref["lif.v_out"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("entry", fixture_manifest(), ids=lambda e: e["name"])
def test_fixtures_reproduce_their_stored_outputs(entry: dict, fixtures_dir) -> None:
    graph = ir.read(fixtures_dir / entry["file"])
    data = np.load(fixtures_dir / entry["npz"])
    ex = OrtExecutor(converters.ir_to_onnx(graph), return_state=True)
    state = None
    for t in range(entry["timesteps"]):
        out, state = ex(data["inputs"][t], state)
        if entry["stateful"]:
            np.testing.assert_array_equal(out, data["outputs"][t])  # spikes
            for node in entry["state_keys"]:
                np.testing.assert_allclose(state[node][0], data[f"state__{node}"][t], atol=1e-5, rtol=0)
        else:
            np.testing.assert_allclose(out, data["outputs"][t], atol=entry["atol"], rtol=entry["rtol"])
    ys, final = ex.run_sequence(data["inputs"])
    np.testing.assert_allclose(ys, data["outputs"], atol=1e-5, rtol=1e-5)
    for node in entry["state_keys"]:
        np.testing.assert_allclose(final[node][0], state[node][0], atol=1e-6)
    check_graph(graph)


def _mlp(n_in: int = 5) -> ir.Graph:
    rng = np.random.default_rng(7)
    return ir.Graph(
        {
            "input": ir.Input((n_in,)),
            "fc": ir.Affine(weight=rng.standard_normal((4, n_in)).astype(np.float32), bias=np.zeros(4, np.float32)),
            "lif": ir.LIF(
                tau=np.full(4, 2, np.float32),
                r=np.ones(4, np.float32),
                v_leak=np.zeros(4, np.float32),
                v_threshold=np.full(4, 0.3, np.float32),
            ),
            "output": ir.Output((4,)),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "output")],
        metadata={"name": "mlp", "dt": 1.0},
    )


def test_executor_errors_name_the_input_or_node_and_expected_shape() -> None:
    ex = OrtExecutor(converters.ir_to_onnx(_mlp()), return_state=True)
    x = np.zeros((3, 5), np.float32)
    with pytest.raises(OrtInputError, match=r"input 'input' expects shape \(batch,5\), got \(3, 4\)"):
        ex(np.zeros((3, 4), np.float32))
    with pytest.raises(OrtInputError, match=r"missing \['input'\], unexpected \['x'\]"):
        ex({"x": x})
    with pytest.raises(OrtStateError, match=r"\['fc'\] are not stateful nodes of this model; they are \['lif'\]"):
        ex(x, {"fc": (np.zeros((3, 4), np.float32),)})
    with pytest.raises(OrtStateError, match=r"state\['lif'\]\[0\] has shape \(3, 5\); node 'lif' expects \(3, 4\)"):
        ex(x, {"lif": np.zeros((3, 5), np.float32)})
    with pytest.raises(OrtInputError, match=r"expects shape \(T,batch,5\)"):
        ex.run_sequence(x)
    out, state = ex(torch.ones(3, 5), {"lif": torch.zeros(3, 4)})  # torch tensors and a bare membrane work too
    assert isinstance(out, np.ndarray) and state["lif"][0].shape == (3, 4)


def test_graph_metadata_and_node_names_are_kept() -> None:
    model = converters.ir_to_onnx(_mlp())
    props = {p.key: p.value for p in model.metadata_props}
    assert jsonvalue.decode(props["talon.metadata"]) == {"name": "mlp", "dt": 1.0}
    assert [n.name for n in model.graph.node] == ["fc", "lif", "output"]
    assert [i.name for i in model.graph.input] == ["input", "lif.v_in"]
    assert [o.name for o in model.graph.output] == ["output", "lif.v_out"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_refusals() -> None:
    with pytest.raises(ConversionError, match="opset 17 is too old"):
        converters.ir_to_onnx(_mlp(), opset=17)
    g = _mlp()
    cyclic = ir.Graph(g.nodes, [*g.edges, ("lif", "fc")], allow_cycles=True)
    with pytest.raises(ir.GraphError, match="acyclic"):
        converters.ir_to_onnx(cyclic)


def test_save_onnx_is_atomic_and_creates_folders(tmp_path) -> None:
    model = converters.ir_to_onnx(_mlp())
    path = tmp_path / "a" / "b" / "mlp.onnx"
    converters.save_onnx(model, path)
    assert sorted(os.listdir(path.parent)) == ["mlp.onnx"]  # no temporary left behind
    assert onnx.load(path) == model
    x = np.ones((1, 5), np.float32)
    np.testing.assert_array_equal(OrtExecutor(path)(x), OrtExecutor(model)(x))


def test_save_onnx_uses_external_data_above_the_threshold(tmp_path) -> None:
    model = converters.ir_to_onnx(_mlp(n_in=1000))  # 16 kB of weights
    path = tmp_path / "big" / "mlp.onnx"
    converters.save_onnx(model, path, external_data_threshold=10_000)
    files = sorted(os.listdir(path.parent))
    assert len(files) == 2 and files[0] == "mlp.onnx" and re.fullmatch(r"mlp\.onnx\.[0-9a-f]{12}\.data", files[1])
    assert os.path.getsize(path) < 10_000 < os.path.getsize(path.parent / files[1])
    head = onnx.load(path, load_external_data=False)
    assert any(i.data_location == onnx.TensorProto.EXTERNAL for i in head.graph.initializer)
    loaded = onnx.load(path)
    assert loaded.graph.node == model.graph.node
    for a, b in zip(loaded.graph.initializer, model.graph.initializer):
        assert a.name == b.name and np.array_equal(onnx.numpy_helper.to_array(a), onnx.numpy_helper.to_array(b))
    x = np.ones((2, 1000), np.float32)
    np.testing.assert_array_equal(OrtExecutor(path)(x), OrtExecutor(model)(x))
    converters.save_onnx(model, path, external_data_threshold=10_000)  # a new data file replaces the old one
    assert os.listdir(path.parent) != files and len(os.listdir(path.parent)) == 2
    np.testing.assert_array_equal(OrtExecutor(path)(x), OrtExecutor(model)(x))
    converters.save_onnx(model, path)  # below the threshold: one self-contained file replaces them
    assert onnx.load(path, load_external_data=False) == model
    assert os.listdir(path.parent) == ["mlp.onnx"]


def test_save_onnx_keeps_the_data_file_a_re_saved_unloaded_model_reads(tmp_path) -> None:
    model = converters.ir_to_onnx(_mlp(n_in=1000))
    path = tmp_path / "mlp.onnx"
    x = np.ones((2, 1000), np.float32)
    converters.save_onnx(model, path, external_data_threshold=0)
    (ours,) = [n for n in os.listdir(tmp_path) if n.endswith(".data")]
    converters.save_onnx(onnx.load(path, load_external_data=False), path, external_data_threshold=0)
    assert ours in os.listdir(tmp_path)
    np.testing.assert_array_equal(OrtExecutor(path)(x), OrtExecutor(model)(x))


def test_save_onnx_removes_no_data_file_it_did_not_write(tmp_path) -> None:
    model = converters.ir_to_onnx(_mlp(n_in=1000))
    path = tmp_path / "mlp.onnx"
    converters.save_onnx(model, path, external_data_threshold=0)
    (ours,) = [n for n in os.listdir(tmp_path) if n.endswith(".data")]
    os.rename(tmp_path / ours, tmp_path / "weights.bin")  # a data file of the user's naming, referred to
    head = onnx.load(path, load_external_data=False)
    for entry in (e for t in head.graph.initializer for e in t.external_data if e.key == "location"):
        entry.value = "weights.bin"
    path.write_bytes(head.SerializeToString())
    foreign = tmp_path / "mlp.onnx.0123456789ab.data"  # save_onnx's naming, not referred to
    foreign.write_bytes(b"user data")
    converters.save_onnx(model, path)
    assert sorted(os.listdir(tmp_path)) == ["mlp.onnx", foreign.name, "weights.bin"]


def test_save_onnx_aligns_large_external_tensors_and_keeps_the_model_unchanged(tmp_path) -> None:
    inits = [onnx.numpy_helper.from_array(np.arange(3, dtype=np.float32), "b"),
             onnx.numpy_helper.from_array(np.ones((2**10, 2**8), np.float32), "w")]  # 1 MB after 12 bytes
    graph = onnx.helper.make_graph([], "g", [], [onnx.helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, None)],
                                   inits)
    model = onnx.helper.make_model(graph)
    before = model.SerializeToString()
    path = tmp_path / "m.onnx"
    converters.save_onnx(model, path, external_data_threshold=0)
    assert model.SerializeToString() == before
    head = onnx.load(path, load_external_data=False)
    offsets = {t.name: int(next(e.value for e in t.external_data if e.key == "offset")) for t in head.graph.initializer}
    assert offsets == {"b": len(DATA_MARK), "w": 4096}  # after the mark that identifies save_onnx's data files
    loaded = onnx.load(path)
    for a, b in zip(loaded.graph.initializer, model.graph.initializer):
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(a), onnx.numpy_helper.to_array(b))


def test_several_inputs_need_a_dict_with_one_batch() -> None:
    graph = ir.Graph(
        {"a": ir.Input((3,)), "b": ir.Input((3,)), "sum": ir.Skip(), "out": ir.Output((3,))},
        [("a", "sum"), ("b", "sum"), ("sum", "out")],
    )
    ex = OrtExecutor(converters.ir_to_onnx(graph))
    ones = np.ones((2, 3), np.float32)
    with pytest.raises(OrtInputError, match=r"several inputs \['a', 'b'\]: pass a dict"):
        ex(ones)
    with pytest.raises(OrtInputError, match="disagree on their batch"):
        ex({"a": ones, "b": np.ones((1, 3), np.float32)})
    np.testing.assert_array_equal(ex({"a": ones, "b": 2 * ones}), 3 * ones)


@pytest.mark.parametrize(
    "node, shape",
    [
        (ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(1, 1), dilation=(2, 1), ceil_mode=True), (2, 4, 5)),
        (ir.MaxPool2d(kernel_size=(2, 2), stride=(3, 3), ceil_mode=True), (2, 4, 3)),
        (ir.AvgPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(1, 1), ceil_mode=True), (2, 4, 5)),
        (
            ir.AvgPool2d(kernel_size=(3, 3), stride=(3, 3), padding=(1, 1), ceil_mode=True, count_include_pad=False),
            (2, 5, 6),
        ),
    ],
    ids=["max-dilated", "max", "avg-counting-pad", "avg"],
)
def test_ceil_mode_pooling_where_onnx_and_torch_rules_differ(node, shape) -> None:
    # torch drops a last window starting in the end padding; onnx shape inference does not
    graph = ir.Graph(
        {"input": ir.Input(shape), "pool": node, "output": ir.Output((1,))}, [("input", "pool"), ("pool", "output")]
    )
    graph.nodes["output"] = ir.Output(graph.infer_shapes()["pool"])
    check_graph(graph)


def test_clamp_is_a_standard_clip_and_round_trips_exactly() -> None:
    clamps = {"relu6": ir.Clamp(0.0, 6.0), "low": ir.Clamp(-0.3, None, features=(3, 4)), "high": ir.Clamp(None, 0.7)}
    names = ["input", *clamps, "output"]
    graph = ir.Graph({"input": ir.Input((3, 4)), **clamps, "output": ir.Output((3, 4))}, list(zip(names, names[1:])))
    model = check_graph(graph)
    assert [(n.op_type, n.domain) for n in model.graph.node][:3] == [("Clip", "")] * 3
    assert converters.onnx_to_ir(model).equals(graph)
    x = (np.random.default_rng(3).standard_normal((2, 3, 4)) * 5).astype(np.float32)
    got = OrtExecutor(model)(x)
    want = np.clip(np.clip(np.clip(x, 0, 6), np.float32(-0.3), None), None, np.float32(0.7))
    np.testing.assert_array_equal(got, want)
    del model.metadata_props[:]  # a plain ONNX model now: the standard Clip importer reads the same clamps
    plain = converters.onnx_to_ir(model)
    assert [(type(n).__name__, n.params().get("min_value"), n.params().get("max_value")) for n in plain.nodes.values()
            if isinstance(n, ir.Clamp)] == [("Clamp", 0.0, 6.0), ("Clamp", float(np.float32(-0.3)), None),
                                           ("Clamp", None, float(np.float32(0.7)))]


def test_a_node_whose_array_is_read_through_a_helper_node_round_trips():
    # an Affine over tokens (rank-2 features) reads its weight through an aux Transpose
    weight, bias = np.arange(24, dtype=np.float32).reshape(3, 8), np.ones(3, np.float32)
    graph = ir.Graph({"x": ir.Input((5, 8)), "fc": ir.Affine(weight=weight, bias=bias), "y": ir.Output((5, 3))},
                  [("x", "fc"), ("fc", "y")])
    assert converters.onnx_to_ir(converters.ir_to_onnx(graph)).equals(graph)
