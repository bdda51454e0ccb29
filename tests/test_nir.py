"""NIR interchange: IR -> NIR -> IR round trips, and NIR graphs (written with nir.write) run by our torch
executors against a numpy simulation of NIR's continuous-time definitions discretised with forward Euler."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

nir = pytest.importorskip("nir", reason="NIR interchange needs the optional 'nir' package (pip install talon-ir-bridge[nir])")

from converters.errors import ConversionError  # noqa: E402
from converters.nir import NIRConversionWarning, ir_to_nir, nir_to_ir, save_nir  # noqa: E402
from talon import bridge, ir  # noqa: E402

from nir_reference import MARGIN, run_reference  # noqa: E402
from strategies import BUILDERS, input_shapes, node_for_shape  # noqa: E402

NIR_TYPES = ("Affine", "SpikingAffine", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "LIF", "IF", "LI",
             "Integrator", "CubaLIF", "Threshold", "Scale")


def run_ours(graph: ir.Graph, xs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return bridge.ir_to_torch(graph).run_sequence(torch.from_numpy(xs.astype(np.float32))).numpy()


def _arr(rng, n, low, high):
    return rng.uniform(low, high, n).astype(np.float32)


def feedforward_nir(rng, n_in=4, n=6) -> "nir.NIRGraph":
    """Input -> Affine -> LIF -> Linear -> CubaLIF -> Scale -> Affine -> IF -> ... -> LI -> Output, plus I and Threshold."""
    w = lambda o, i: rng.normal(0, 1.0, (o, i)).astype(np.float32)  # noqa: E731
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "fc1": nir.Affine(weight=w(n, n_in), bias=_arr(rng, n, -0.2, 0.5)),
        "lif": nir.LIF(tau=_arr(rng, n, 2e-3, 2e-2), r=_arr(rng, n, 0.5, 2), v_leak=_arr(rng, n, -0.1, 0.1),
                       v_threshold=_arr(rng, n, 0.3, 1.0)),
        "fc2": nir.Linear(weight=w(n, n)),
        "cuba": nir.CubaLIF(tau_syn=_arr(rng, n, 2e-3, 1e-2), tau_mem=_arr(rng, n, 3e-3, 2e-2), r=_arr(rng, n, 0.5, 2),
                            v_leak=np.zeros(n, np.float32), v_threshold=_arr(rng, n, 0.05, 0.3),
                            w_in=_arr(rng, n, 0.5, 2)),
        "scale": nir.Scale(scale=_arr(rng, n, 0.5, 2)),
        "fc3": nir.Affine(weight=w(n, n), bias=_arr(rng, n, 0, 0.3)),
        "if_": nir.IF(r=_arr(rng, n, 100, 400), v_threshold=_arr(rng, n, 0.5, 1.5)),
        "integ": nir.I(r=_arr(rng, n, 200, 1000)),
        "thr": nir.Threshold(threshold=_arr(rng, n, 0.05, 0.5)),
        "li": nir.LI(tau=_arr(rng, n, 2e-3, 1e-2), r=_arr(rng, n, 0.5, 2), v_leak=_arr(rng, n, -0.1, 0.1)),
        "output": nir.Output(output_type=np.array([n])),
    }
    chain = ["input", "fc1", "lif", "fc2", "cuba", "scale", "fc3", "if_", "integ", "thr", "li", "output"]
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:])))


# -- round trips ---------------------------------------------------------------------------------------------
@st.composite
def nir_expressible_graphs(draw) -> ir.Graph:
    """A chain Input -> layers NIR expresses (float32, as TALON neurons run) -> Output."""
    shape = draw(input_shapes())
    nodes, edges, prev = {"input": ir.Input(shape)}, [], "input"
    for i in range(draw(st.integers(1, 5))):
        fitting = [t for t in NIR_TYPES if len(shape) in BUILDERS[t][0] and (len(shape) == 1 or "Affine" not in t)]
        node = draw(node_for_shape(draw(st.sampled_from(fitting)), shape, np.float32))
        if isinstance(node, ir.AvgPool2d):
            assume(not node.ceil_mode and (node.count_include_pad or not any(node.padding)))
        if isinstance(node, ir.SumPool2d):
            assume(not node.ceil_mode)
        name = f"{type(node).__name__.lower()}_{i}"
        nodes[name] = node
        edges.append((prev, name))
        shape = tuple(ir.Graph(nodes, edges).infer_shapes()[name])
        prev = name
    nodes["output"] = ir.Output(shape)
    edges.append((prev, "output"))
    return ir.Graph(nodes, edges)


@settings(max_examples=25, deadline=None)
@given(graph=nir_expressible_graphs(), dt=st.sampled_from([1.0, 1e-3, 1e-4, 0.37]))
def test_ir_nir_ir_round_trip_is_exact(tmp_path_factory, graph, dt):
    back = without_dt(nir_to_ir(ir_to_nir(graph, dt=dt), dt=dt), dt)
    assert back.equals(graph), back.diff(graph)
    path = tmp_path_factory.mktemp("rt") / "graph.nir"
    save_nir(graph, path, dt=dt)
    from_file = without_dt(nir_to_ir(path, dt=dt), dt)
    assert from_file.equals(graph), from_file.diff(graph)
    if not any(_nir_mistypes(n) for n in graph.nodes.values()):
        nir.read(path)  # NIR's own reader type-checks every edge of what we wrote


def without_dt(graph: ir.Graph, dt: float) -> ir.Graph:
    """An imported graph less the dt it keeps in its metadata, which must be the one it was imported with."""
    assert graph.metadata.pop("nir.dt") == dt
    return graph


def _nir_mistypes(node: ir.Node) -> bool:
    """nir 1.0.8 types convolutions ignoring groups and taking the kernel as square (weight.shape[2] for every dim)."""
    return isinstance(node, (ir.Conv1d, ir.Conv2d)) and (node.groups > 1 or len(set(node.weight.shape[2:])) > 1)


def test_round_trip_through_a_nir_file_keeps_metadata_and_spiking_affine(tmp_path):
    rng = np.random.default_rng(0)
    graph = ir.Graph({
        "input": ir.Input((3,)),
        "fc": ir.SpikingAffine(weight=_arr(rng, (4, 3), -1, 1), bias=_arr(rng, 4, -1, 1), weight_bits=4,
                               accumulator_bits=12, spike_mode="graded"),
        "lif": ir.LIF(tau=_arr(rng, 4, 2, 9), r=_arr(rng, 4, 1, 2), v_leak=_arr(rng, 4, 0, 0.1),
                      v_threshold=np.ones(4, np.float32)),
        "output": ir.Output((4,)),
    }, [("input", "fc"), ("fc", "lif"), ("lif", "output")], metadata={"model": "mlp", "epochs": 3})
    graph.nodes["lif"].metadata = {"layer": "hidden"}
    save_nir(graph, tmp_path / "model.nir", dt=1e-3)
    back = without_dt(nir_to_ir(tmp_path / "model.nir", dt=1e-3), 1e-3)
    assert back.equals(graph), back.diff(graph)
    written = nir.read(tmp_path / "model.nir")
    np.testing.assert_allclose(written.nodes["lif"].tau, graph.nodes["lif"].tau.astype(np.float64) * 1e-3, rtol=1e-12)


# -- NIR graphs against the continuous-time definitions --------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), dt=st.sampled_from([1e-3, 5e-4]))
def test_nir_file_runs_like_the_euler_discretised_definition(tmp_path_factory, seed, dt):
    rng = np.random.default_rng(seed)
    graph = feedforward_nir(rng)
    path = tmp_path_factory.mktemp("nir") / "ff.nir"
    nir.write(path, graph)
    xs = rng.uniform(0, 1.5, (30, 3, 4))
    expected, margin = run_reference(nir.read(path), xs, dt)
    assume(margin > MARGIN)
    got = run_ours(nir_to_ir(path, dt=dt), xs)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_conv_pool_flatten_graph_from_file_matches_the_definition(tmp_path):
    rng = np.random.default_rng(3)
    c_w = rng.normal(0, 0.5, (4, 2, 3, 3)).astype(np.float32)
    nodes = {
        "input": nir.Input(input_type=np.array([2, 8, 8])),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=c_w, stride=1, padding="same", dilation=1, groups=1,
                           bias=np.full(4, 0.1, np.float32)),
        "lif": nir.LIF(tau=np.full((4, 8, 8), 4e-3), r=np.ones((4, 8, 8)), v_leak=np.zeros((4, 8, 8)),
                       v_threshold=np.full((4, 8, 8), 0.4)),
        "sum": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([4, 2, 2])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 1, (3, 16)).astype(np.float32), bias=np.zeros(3, np.float32)),
        "output": nir.Output(output_type=np.array([3])),
    }
    chain = ["input", "conv", "lif", "sum", "avg", "flat", "fc", "output"]
    nir.write(tmp_path / "conv.nir", nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:]))))
    xs = rng.uniform(0, 1, (12, 2, 2, 8, 8))
    expected, margin = run_reference(nir.read(tmp_path / "conv.nir"), xs, 1e-3)
    assert margin > MARGIN
    graph = nir_to_ir(tmp_path / "conv.nir", dt=1e-3)
    assert graph.nodes["conv"].padding == (1, 1)
    np.testing.assert_allclose(run_ours(graph, xs), expected, rtol=1e-5, atol=1e-5)


def test_recurrent_nir_graph_imports_as_a_cyclic_graph_run_by_the_cyclic_executor(tmp_path):
    rng = np.random.default_rng(5)
    n = 5
    nodes = {
        "input": nir.Input(input_type=np.array([3])),
        "fc": nir.Affine(weight=rng.normal(0, 1, (n, 3)).astype(np.float32), bias=np.zeros(n, np.float32)),
        "rnn": nir.NIRGraph(nodes={  # a nested subgraph, as snnTorch's importer builds for RLeaky
            "input": nir.Input(input_type=np.array([n])),
            "lif": nir.LIF(tau=np.full(n, 5e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5)),
            "w_rec": nir.Affine(weight=rng.normal(0, 0.8, (n, n)).astype(np.float32), bias=np.full(n, 0.05, np.float32)),
            "output": nir.Output(output_type=np.array([n])),
        }, edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")]),
        "output": nir.Output(output_type=np.array([n])),
    }
    nir.write(tmp_path / "rnn.nir", nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "rnn"), ("rnn", "output")]))
    graph = nir_to_ir(tmp_path / "rnn.nir", dt=1e-3)
    assert graph.allow_cycles and graph.back_edges() == [("rnn.w_rec", "rnn.lif")]
    assert set(graph.nodes) == {"input", "fc", "rnn.lif", "rnn.w_rec", "output"}
    flat = nir.NIRGraph(nodes={"input": nodes["input"], "fc": nodes["fc"], "lif": nodes["rnn"].nodes["lif"],
                               "w_rec": nodes["rnn"].nodes["w_rec"], "output": nodes["output"]},
                        edges=[("input", "fc"), ("fc", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    xs = rng.uniform(0, 1, (25, 2, 3))
    expected, margin = run_reference(flat, xs, 1e-3)
    assert margin > MARGIN and 0 < expected.sum() < expected.size
    ex = bridge.CyclicGraphExecutor.from_graph(graph, timesteps=1, return_state=True)
    state, got = None, []
    with torch.no_grad():
        for x in xs:
            out, state = ex(torch.from_numpy(x.astype(np.float32)), state)
            got.append(out[0].numpy())
    np.testing.assert_array_equal(np.stack(got), expected)


# -- thresholds and resets: exact where possible, said where not -----------------------------------------
def _if_graph(v_reset: float = 0.0):
    return nir.NIRGraph.from_list(nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.full(1, v_reset)))


def test_strict_threshold_is_converted_exactly_where_the_membrane_hits_it():
    xs = np.full((6, 1, 1), 0.5)  # v = 0.5, 1.0 (NIR: 1.0 > 1.0 is false), 1.5 -> spike, ...
    expected, _ = run_reference(_if_graph(), xs, 1.0)
    np.testing.assert_array_equal(expected[:, 0, 0], [0, 0, 1, 0, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(run_ours(nir_to_ir(_if_graph(), dt=1.0), xs), expected)


def test_kept_threshold_warns_naming_the_node_and_strict_refuses():
    xs = np.full((6, 1, 1), 0.5)
    with pytest.warns(NIRConversionWarning, match=r"NIR node 'if' \(IF\): NIR fires when v > v_threshold"):
        graph = nir_to_ir(_if_graph(), dt=1.0, exact_threshold=False)
    np.testing.assert_array_equal(run_ours(graph, xs)[:, 0, 0], [0, 1, 0, 1, 0, 1])  # spikes at equality
    with pytest.raises(ConversionError, match=r"'if' \(IF\).*strict=True"):
        nir_to_ir(_if_graph(), dt=1.0, exact_threshold=False, strict=True)


def test_nonzero_v_reset_warns_and_matches_the_definition_started_at_v_reset():
    rng = np.random.default_rng(2)
    n = 4
    lif = nir.LIF(tau=np.full(n, 3e-3), r=np.ones(n), v_leak=np.full(n, 0.1), v_threshold=np.full(n, 0.6),
                  v_reset=np.full(n, -0.3))
    graph = nir.NIRGraph.from_list(nir.Affine(weight=rng.normal(0, 1, (n, 2)).astype(np.float32),
                                              bias=np.full(n, 0.4, np.float32)), lif)
    with pytest.warns(NIRConversionWarning, match=r"NIR node 'lif' \(LIF\): v_reset is non-zero"):
        ours = nir_to_ir(graph, dt=1e-3)
    xs = rng.uniform(0, 1, (40, 2, 2))
    expected, margin = run_reference(graph, xs, 1e-3, v0={"lif": -0.3})
    assert margin > MARGIN and expected.sum() > 0
    np.testing.assert_array_equal(run_ours(ours, xs), expected)
    with pytest.raises(ConversionError, match="'lif' .*v_reset"):
        nir_to_ir(graph, dt=1e-3, strict=True)


# -- errors ---------------------------------------------------------------------------------------------
def test_import_errors_name_the_problem(tmp_path):
    with pytest.raises(ConversionError, match="pass dt="):
        nir_to_ir(_if_graph())
    with pytest.raises(ConversionError, match="dt must be a positive"):
        nir_to_ir(_if_graph(), dt=-1)
    with pytest.raises(ConversionError, match="no such NIR file"):
        nir_to_ir(tmp_path / "missing.nir", dt=1.0)
    (tmp_path / "bad.nir").write_bytes(b"not hdf5")
    with pytest.raises(ConversionError, match="not a readable NIR file"):
        nir_to_ir(tmp_path / "bad.nir", dt=1.0)
    with pytest.raises(ConversionError, match="nir.NIRGraph or a path"):
        nir_to_ir(42, dt=1.0)
    delayed = nir.NIRGraph.from_list(nir.Delay(delay=np.ones(2)))
    with pytest.raises(ConversionError, match=r"'delay' \(Delay\)"):
        nir_to_ir(delayed, dt=1.0)
    strided = nir.NIRGraph.from_list(nir.Conv2d(input_shape=(6, 6), weight=np.ones((1, 1, 3, 3), np.float32),
                                                stride=2, padding="same", dilation=1, groups=1, bias=np.zeros(1)))
    with pytest.raises(ConversionError, match="'conv2d'.*asymmetric padding"):
        nir_to_ir(strided, dt=1.0)


def test_export_lists_every_node_nir_cannot_express():
    graph = ir.Graph({
        "input": ir.Input((1, 4, 4)),
        "pool": ir.MaxPool2d(kernel_size=2),
        "avg": ir.AvgPool2d(kernel_size=1, ceil_mode=True),
        "relu": ir.ReLU(features=1),
        "output": ir.Output((1, 2, 2)),
    }, [("input", "pool"), ("pool", "avg"), ("avg", "relu"), ("relu", "output")])
    with pytest.raises(ConversionError) as err:
        ir_to_nir(graph, dt=1.0)
    text = str(err.value)
    assert "'pool' (MaxPool2d): no NIR node type" in text and "'relu' (ReLU)" in text and "'avg' (AvgPool2d): ceil_mode" in text


def test_missing_nir_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(ImportError, match=r"pip install talon-ir-bridge\[nir\]"):
        nir_to_ir("model.nir", dt=1.0)


# -- the NIR-derived primitives everywhere else: torch export, onnxruntime ----------------------------------
class _NIRModules(torch.nn.Module):
    """Every NIR-derived module in one network; `step` carries their states like a user's loop would."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(4)
        n = 5
        self.pool = bridge.SumPool2dModule((2, 2), (2, 2))
        self.flat = torch.nn.Flatten()
        self.fc = torch.nn.Linear(8, n)
        self.cuba = bridge.CubaLIFModule(_arr(rng, n, 1.5, 4), _arr(rng, n, 2, 6), _arr(rng, n, 0.5, 2),
                                         _arr(rng, n, -0.1, 0.1), _arr(rng, n, 0.1, 0.4), _arr(rng, n, 0.5, 2))
        self.li = bridge.LIModule(_arr(rng, n, 2, 5), _arr(rng, n, 0.5, 2), _arr(rng, n, -0.1, 0.1))
        self.integ = bridge.IntegratorModule(_arr(rng, n, 0.2, 0.8))
        self.thr = bridge.ThresholdModule(_arr(rng, n, 0.1, 1.0))

    def forward(self, x):
        return self.step(x, {})[0]

    def step(self, x, state: dict):
        """One timestep from `state` (module name -> state tuple): (output, next state)."""
        y = self.fc(self.flat(self.pool(x)))
        nxt = {}
        for name in ("cuba", "li", "integ"):
            y, *nxt[name] = getattr(self, name)(y, *state.get(name, ()))
        return self.thr(y), nxt


def test_to_ir_exports_the_nir_derived_modules_as_their_primitives():
    torch.manual_seed(3)  # weights and inputs fixed, so that some neurons fire and some do not
    model = _NIRModules().eval()
    xs = torch.rand(8, 2, 2, 4, 4) * 2
    graph = bridge.to_ir(model, xs[0])
    assert {n: type(graph.nodes[n]).__name__ for n in ("pool", "cuba", "li", "integ", "thr")} == {
        "pool": "SumPool2d", "cuba": "CubaLIF", "li": "LI", "integ": "Integrator", "thr": "Threshold"}
    ours, state, carried, fired = bridge.ir_to_torch(graph, return_state=True), {}, {}, 0
    with torch.no_grad():
        for x in xs:
            expected, carried = model.step(x, carried)
            got, state = ours(x, state)
            assert torch.equal(got, expected)
            fired += int(expected.sum())
    assert torch.equal(state["cuba"][1], carried["cuba"][1])  # the synaptic current is the second state item
    assert 0 < fired < xs.shape[0] * 2 * 5


def test_imported_nir_graph_runs_identically_on_onnxruntime():
    from converters import ir_to_onnx
    from onnx_ops import OrtExecutor

    graph = nir_to_ir(feedforward_nir(np.random.default_rng(11)), dt=1e-3)
    xs = np.random.default_rng(12).uniform(0, 1.5, (20, 3, 4)).astype(np.float32)
    got = OrtExecutor(ir_to_onnx(graph)).run_sequence(xs)
    np.testing.assert_allclose(got, run_ours(graph, xs), rtol=1e-6, atol=1e-6)


def test_convert_reads_and_writes_nir_files_by_extension(tmp_path):
    from converters import convert

    graph = nir_to_ir(feedforward_nir(np.random.default_rng(8)), dt=1e-3)
    ir.write(tmp_path / "model.t1c", graph)
    convert(tmp_path / "model.t1c", tmp_path / "model.nir", dt=1e-3)
    assert set(nir.read(tmp_path / "model.nir").nodes) == set(graph.nodes)
    back = convert(tmp_path / "model.nir", tmp_path / "back.t1c", dt=1e-3)
    assert back.equals(graph) and ir.read(tmp_path / "back.t1c").equals(graph)
    with pytest.raises(ConversionError, match="pass dt="):
        convert(tmp_path / "model.nir", tmp_path / "again.t1c")


def test_a_failed_nir_write_keeps_the_existing_file(tmp_path, monkeypatch):
    graph = nir_to_ir(feedforward_nir(np.random.default_rng(8)), dt=1e-3)
    target = tmp_path / "model.nir"
    save_nir(graph, target, dt=1e-3)
    before = target.read_bytes()

    def broken_write(f, nir_graph):
        f.write(b"partial")
        raise OSError("disk full (injected)")

    monkeypatch.setattr(nir, "write", broken_write)
    with pytest.raises(OSError, match="injected"):
        save_nir(graph, target, dt=1e-3)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nir"]
