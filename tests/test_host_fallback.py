"""onnx_to_ir(host_fallback=True): regions of unsupported nodes become HostRegion nodes run by onnxruntime.

Every result is compared with onnxruntime on the original model (max abs difference <= 1e-5 * max |output|),
directly in GraphExecutor, after a .t1c round trip and through ir_to_onnx (onnxruntime and OrtExecutor).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from converters import ConversionError, ConversionReport, UnsupportedOperatorError, ir_to_onnx, onnx_to_ir
from converters.coverage import REPORT_KEY
from converters.host_model import region_model
from onnx_ops import OrtExecutor
from talon import ir
from talon.bridge import ExecutorError, GraphExecutor


class Attention(nn.Module):
    """A vit-like block: patches, a class token (Concat), position embedding, attention (MatMul of two
    activations, Reshape, Transpose, Softmax, Gather of q/k/v) and the class token's head (Gather)."""

    def __init__(self, dim: int = 8, heads: int = 2, tokens: int = 4):
        super().__init__()
        self.heads = heads
        self.patch = nn.Conv2d(3, dim, 4, 4)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim))
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        b, n, d = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = ((q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5).softmax(-1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(b, n, d))
        return self.head(x[:, 0])


def export(module: nn.Module, x: torch.Tensor, dynamo: bool) -> onnx.ModelProto:
    """The module exported with a dynamic batch: by the dynamo exporter, or the TorchScript one at opset 17."""
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(module, (x,), f, dynamo=True, input_names=["x"], verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("batch")},))
        else:
            torch.onnx.export(module, (x,), f, dynamo=False, opset_version=17, input_names=["x"],
                              dynamic_axes={"x": {0: "batch"}})
    return onnx.load_from_string(f.getvalue())


def run_ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def assert_close(got, expected: np.ndarray) -> None:
    got = got.detach().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


def check_everywhere(graph: ir.Graph, x: np.ndarray, expected: np.ndarray, tmp_path) -> None:
    """The graph, its .t1c round trip and its ir_to_onnx form all compute `expected`."""
    assert_close(GraphExecutor(graph)(torch.from_numpy(x)), expected)
    ir.write(tmp_path / "g.t1c", graph)
    back = ir.read(tmp_path / "g.t1c")
    assert back.equals(graph), back.diff(graph)
    assert_close(GraphExecutor(back)(torch.from_numpy(x)), expected)
    exported = ir_to_onnx(graph)
    onnx.checker.check_model(exported)
    assert_close(run_ort(exported, x), expected)
    assert_close(OrtExecutor(exported)(x), expected)
    assert onnx_to_ir(exported).equals(graph)


def report(graph: ir.Graph) -> ConversionReport:
    return ConversionReport.from_metadata(graph.metadata[REPORT_KEY])


@pytest.fixture(scope="module")
def attention_models() -> dict[bool, onnx.ModelProto]:
    torch.manual_seed(0)
    module = Attention().eval()
    return {dynamo: export(module, torch.randn(2, 3, 8, 8), dynamo) for dynamo in (True, False)}


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript17"])
def test_attention_block_converts_with_host_fallback(attention_models, dynamo, tmp_path):
    model = attention_models[dynamo]
    graph = onnx_to_ir(model, host_fallback=True)
    x = np.random.default_rng(1).standard_normal((3, 3, 8, 8)).astype(np.float32)
    check_everywhere(graph, x, run_ort(model, x), tmp_path)
    found = report(graph)
    hosts = {n for n, node in graph.nodes.items() if isinstance(node, ir.HostRegion)}
    assert {r.name for r in found.regions} == hosts
    ops = {op for r in found.regions for op in r.counts.op_types}
    assert {"MatMul", "Softmax", "Transpose", "Gather"} <= ops
    assert found.total.nodes == found.native.nodes + sum(r.counts.nodes for r in found.regions)
    assert {"patch", "head"} <= set(graph.nodes)
    if dynamo:  # every shape is known: the linear layers stay native, MACs per sample counted by hand
        assert {"qkv", "proj"} <= set(graph.nodes)
        native = 8 * 2 * 2 * 3 * 4 * 4 + 5 * 8 * 24 + 5 * 8 * 8 + 8 * 5  # patch, qkv, proj, head
        assert (found.native.macs, found.total.macs) == (native, native + 2 * 2 * 5 * 5 * 4)  # + q @ k.T, a @ v


def _model(nodes, inits=(), shape=(2, 4)) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _hosts(graph: ir.Graph) -> list[ir.HostRegion]:
    return [n for n in graph.nodes.values() if isinstance(n, ir.HostRegion)]


def _ops(node: ir.HostRegion) -> list[str]:
    return [n.op_type for n in region_model(node).graph.node]


def test_regions_are_maximal_connected_pieces(tmp_path):
    model = _model([helper.make_node("Cos", ["x"], ["a"]), helper.make_node("Sin", ["a"], ["b"]),
                    helper.make_node("Relu", ["b"], ["c"]), helper.make_node("Cos", ["c"], ["y"])])
    graph = onnx_to_ir(model, host_fallback=True)
    assert sorted(_ops(n) for n in _hosts(graph)) == [["Cos"], ["Cos", "Sin"]]
    assert [type(graph.nodes[n]).__name__ for n in graph.topological_order()].count("ReLU") == 1
    found = report(graph)
    assert (found.total.nodes, found.native.nodes) == (4, 1)
    assert sorted(tuple(r.counts.op_types.items()) for r in found.regions) == [(("Cos", 1),), (("Cos", 1), ("Sin", 1))]
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    check_everywhere(graph, x, run_ort(model, x), tmp_path)


def test_regions_that_would_close_a_cycle_are_merged_with_the_nodes_between(tmp_path):
    # h1 -> h2 directly and h1 -> relu -> h3 -> relu -> h2: contracting {h1, h2} and {h3} alone would
    # give a cycle, so both regions and the two Relu nodes between them become one region.
    model = _model([helper.make_node("Cos", ["x"], ["h1"]), helper.make_node("Relu", ["h1"], ["r1"]),
                    helper.make_node("Sin", ["r1"], ["h3"]), helper.make_node("Relu", ["h3"], ["r2"]),
                    helper.make_node("Max", ["h1", "r2"], ["y"])])
    graph = onnx_to_ir(model, host_fallback=True)
    (host,) = _hosts(graph)
    assert _ops(host) == ["Cos", "Relu", "Sin", "Relu", "Max"]
    assert not graph.is_cyclic
    assert report(graph).native.nodes == 0
    x = np.random.default_rng(0).uniform(0.1, 2, (2, 4)).astype(np.float32)
    check_everywhere(graph, x, run_ort(model, x), tmp_path)


def test_a_region_with_several_inputs_and_outputs(tmp_path):
    # a PRelu of two native activations, then a Sin; both host results feed native nodes
    model = _model([helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["x"], ["b"]),
                    helper.make_node("PRelu", ["a", "b"], ["p"]), helper.make_node("Sin", ["p"], ["s"]),
                    helper.make_node("Relu", ["p"], ["rp"]), helper.make_node("Tanh", ["s"], ["ts"]),
                    helper.make_node("Add", ["rp", "ts"], ["y"])])
    graph = onnx_to_ir(model, host_fallback=True)
    (host,) = _hosts(graph)
    assert (len(host.region_inputs), len(host.region_outputs)) == (2, 2)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    check_everywhere(graph, x, run_ort(model, x), tmp_path)


def test_without_host_fallback_the_conversion_is_refused(attention_models):
    with pytest.raises(UnsupportedOperatorError) as info:
        onnx_to_ir(attention_models[True])
    assert "MatMul" in {n.op_type for n in info.value.nodes}


def test_a_native_model_gets_a_full_native_report():
    model = _model([helper.make_node("Relu", ["x"], ["y"])])
    graph = onnx_to_ir(model, host_fallback=True)
    assert report(graph).is_native and report(graph).share("nodes") == 1.0
    plain = onnx_to_ir(model)
    assert list(graph.nodes) == list(plain.nodes) and graph.edges == plain.edges


def test_report_round_trips_through_metadata():
    graph = onnx_to_ir(_model([helper.make_node("Cos", ["x"], ["y"])]), host_fallback=True)
    found = report(graph)
    assert ConversionReport.from_metadata(found.to_metadata()) == found
    assert found.lines()[1] == f"host region {found.regions[0].name}: 1 nodes (Cos), 0 parameters, 0 MACs"


def test_static_batch_regions_run_in_chunks_of_that_batch():
    # Reshape to a constant shape with the batch 2 baked in: the region runs 2 samples at a time
    model = _model([helper.make_node("Reshape", ["x", "shape"], ["r"]), helper.make_node("Cos", ["r"], ["c"]),
                    helper.make_node("Reshape", ["c", "back"], ["y"])],
                   inits=[], shape=(2, 4))
    model.graph.initializer.extend([numpy_helper.from_array(np.array([2, 2, 2], np.int64), "shape"),
                                    numpy_helper.from_array(np.array([2, 4], np.int64), "back")])
    graph = onnx_to_ir(model, host_fallback=True)
    (host,) = _hosts(graph)
    assert host.batch == 2
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    expected = np.concatenate([run_ort(model, x[i : i + 2]) for i in range(0, 6, 2)])
    assert_close(GraphExecutor(graph)(torch.from_numpy(x)), expected)
    with pytest.raises(ExecutorError, match="batch of 2"):
        GraphExecutor(graph)(torch.from_numpy(x[:3]))


def _region_node(model: onnx.ModelProto, **fields) -> ir.HostRegion:
    values = {"in_shapes": "[[4]]", "out_shapes": "[[4]]", **fields}
    return ir.HostRegion(model=np.frombuffer(model.SerializeToString(), np.uint8).copy(), **values)


def _cos() -> onnx.ModelProto:
    model = _model([helper.make_node("Cos", ["x"], ["y"])], shape=("batch", 4))
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4]))
    return model


def test_region_models_are_read_safely():
    with pytest.raises(ConversionError, match="not a serialized ONNX model"):
        region_model(ir.HostRegion(model=np.frombuffer(b"\xff\xff\xff", np.uint8).copy(), in_shapes="[[4]]",
                                   out_shapes="[[4]]"))
    external = _cos()
    external.graph.node[0].CopyFrom(helper.make_node("Add", ["x", "w"], ["y"]))
    w = numpy_helper.from_array(np.ones(4, np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="/etc/passwd")
    external.graph.initializer.append(w)
    with pytest.raises(ConversionError, match="external"):
        region_model(_region_node(external))
    with pytest.raises(ConversionError, match=r"input shapes \[\[4\]\] disagree with the node's \[\(5,\)\]"):
        region_model(_region_node(_cos(), in_shapes="[[5]]", out_shapes="[[5]]"))
    with pytest.raises(ConversionError, match="external"):  # the executor refuses it too, before any session
        GraphExecutor(ir.Graph({"x": ir.Input((4,)), "h": _region_node(external), "y": ir.Output((4,))},
                               [("x", "h"), ("h", "y")]))


@pytest.mark.parametrize("fields, field", [
    ({"model": np.zeros(3, np.float32)}, "model"),
    ({"in_shapes": "[[4]"}, "in_shapes"),
    ({"out_shapes": "[]"}, "out_shapes"),
    ({"in_shapes": "[[-1]]"}, "in_shapes"),
    ({"batch": -1}, "batch"),
])
def test_bad_host_region_fields_are_refused(fields, field):
    values = {"model": np.frombuffer(_cos().SerializeToString(), np.uint8).copy(), "in_shapes": "[[4]]",
              "out_shapes": "[[4]]", **fields}
    with pytest.raises(ir.PrimitiveError, match=f"HostRegion.{field}"):
        ir.HostRegion(**values)


def test_a_graph_input_read_only_by_a_region_and_a_region_output_that_is_the_graph_output(tmp_path):
    model = _model([helper.make_node("Cos", ["x"], ["y"])])
    graph = onnx_to_ir(model, host_fallback=True)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    check_everywhere(graph, x, run_ort(model, x), tmp_path)


# -- random DAGs of native and host ops ------------------------------------------------------------------
UNARY = {"Relu": True, "Sigmoid": True, "Cos": False, "Sin": False}  # op -> has a TALON equivalent
BINARY = {"Add": True, "PRelu": False, "Max": False}  # PRelu with a computed slope


@st.composite
def dags(draw) -> onnx.ModelProto:
    """A random DAG of 2..7 unary or binary ops over earlier values, every sink summed into the output."""
    values, nodes, used = ["x"], [], set()
    for i in range(draw(st.integers(2, 7))):
        if len(values) > 1 and draw(st.booleans()):
            op = draw(st.sampled_from(sorted(BINARY)))
            a, b = draw(st.lists(st.sampled_from(values), min_size=2, max_size=2, unique=True))
            inputs = [a, b]
        else:
            op, inputs = draw(st.sampled_from(sorted(UNARY))), [draw(st.sampled_from(values))]
        used.update(inputs)
        nodes.append(helper.make_node(op, inputs, [f"v{i}"]))
        values.append(f"v{i}")
    sinks = [v for v in values[1:] if v not in used]
    nodes.append(helper.make_node("Sum", sinks, ["y"]) if len(sinks) > 1 else helper.make_node("Identity", sinks, ["y"]))
    return _model(nodes)


def _host_to_host(graph: ir.Graph) -> list[tuple[str, str]]:
    """(region, region) pairs joined by an edge or by passthrough Skips only: such regions are not maximal."""
    pairs = []
    for name, node in graph.nodes.items():
        if not isinstance(node, ir.HostRegion):
            continue
        stack = list(graph.successors(name))
        while stack:
            nxt = stack.pop()
            if isinstance(graph.nodes[nxt], ir.HostRegion):
                pairs.append((name, nxt))
            elif isinstance(graph.nodes[nxt], ir.Skip) and graph.nodes[nxt].kind == "passthrough":
                stack.extend(graph.successors(nxt))
    return pairs


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=dags())
def test_random_dags_convert_exactly_into_maximal_regions(model, tmp_path):
    graph = onnx_to_ir(model, host_fallback=True)
    assert not graph.is_cyclic and not _host_to_host(graph)
    found = report(graph)
    host_ops = sum(not {**UNARY, **BINARY}.get(n.op_type, True) for n in model.graph.node)
    assert found.total.nodes - found.native.nodes >= host_ops
    assert bool(found.regions) == bool(host_ops)
    x = np.random.default_rng(0).uniform(0.1, 1.5, (2, 4)).astype(np.float32)
    check_everywhere(graph, x, run_ort(model, x), tmp_path)
