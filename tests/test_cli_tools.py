"""`talon analyze`, `compare`, the localising `verify`, --json on every command, pictures without Graphviz and the
shared input options, in-process (click's runner) on small graphs built here, checked against hand counts and
plain numpy simulations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from talon import ir
from talon.cli import cli, files, running


def invoke(*args: str, code: int = 0) -> str:
    """Run a command in this process; its exit code must be `code`; returns stdout."""
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout


def as_json(*args: str, code: int = 0) -> dict:
    doc = json.loads(invoke(*args, "--json", code=code))
    assert doc["version"] == 1
    return doc


def quarters(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Weights that are multiples of 1/4, so float32 sums are exact and spikes do not depend on summation order."""
    return (rng.integers(-4, 5, shape) / 4).astype(np.float32)


def mlp_graph() -> ir.Graph:
    """Input(4) -> Affine(3x4) -> LIF(3) -> SpikingAffine(2x3, 4 bits) -> LIF(2) -> Output."""
    rng = np.random.default_rng(0)

    def lif(n: int) -> ir.LIF:
        return ir.LIF(tau=np.full(n, 2.0, np.float32), r=np.ones(n, np.float32), v_leak=np.zeros(n, np.float32),
                      v_threshold=np.full(n, 0.5, np.float32))

    return ir.Graph({
        "input": ir.Input((4,)), "fc1": ir.Affine(quarters(rng, (3, 4)), quarters(rng, (3,))), "lif1": lif(3),
        "fc2": ir.SpikingAffine(quarters(rng, (2, 3)), quarters(rng, (2,)), weight_bits=4), "lif2": lif(2),
        "output": ir.Output((2,)),
    }, [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")])


CONV_W = quarters(np.random.default_rng(1), (2, 1, 3, 3))
FC_W = quarters(np.random.default_rng(2), (3, 32))


def conv_graph(fc_weight: np.ndarray = FC_W) -> ir.Graph:
    """Input(1,4,4) -> Conv2d(1->2, 3x3, padding 1) -> IF(2,4,4) -> Flatten -> Affine(3x32) -> IF(3) -> Output."""
    return ir.Graph({
        "input": ir.Input((1, 4, 4)), "conv": ir.Conv2d(CONV_W, None, padding=(1, 1)),
        "if1": ir.IF(r=np.ones((2, 4, 4), np.float32), v_threshold=np.ones((2, 4, 4), np.float32)),
        "flat": ir.Flatten(), "fc": ir.Affine(fc_weight), "if2": ir.IF(r=np.ones(3, np.float32),
                                                                        v_threshold=np.ones(3, np.float32)),
        "output": ir.Output((3,)),
    }, [("input", "conv"), ("conv", "if1"), ("if1", "flat"), ("flat", "fc"), ("fc", "if2"), ("if2", "output")])


def simulate_conv_snn(xs: np.ndarray, fc_weight: np.ndarray = FC_W) -> dict[str, np.ndarray]:
    """conv_graph in plain numpy loops: the convolution tap by tap, IF neurons v += x, spike at v >= 1, reset to 0."""
    steps, batch = xs.shape[:2]
    v1, v2 = np.zeros((batch, 2, 4, 4)), np.zeros((batch, 3))
    s1_all, s2_all = [], []
    for t in range(steps):
        padded = np.pad(xs[t].astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
        conv = np.zeros((batch, 2, 4, 4))
        for o in range(2):
            for y in range(4):
                for x in range(4):
                    conv[:, o, y, x] = (padded[:, 0, y:y + 3, x:x + 3] * CONV_W[o, 0]).sum(axis=(1, 2))
        v1 += conv
        s1 = (v1 >= 1).astype(np.float64)
        v1 *= 1 - s1
        v2 += s1.reshape(batch, 32) @ fc_weight.T.astype(np.float64)
        s2 = (v2 >= 1).astype(np.float64)
        v2 *= 1 - s2
        s1_all.append(s1)
        s2_all.append(s2)
    return {"if1": np.stack(s1_all), "if2": np.stack(s2_all)}


def conv_fanout_by_hand() -> np.ndarray:
    """For each input pixel of the 4x4 image, the (output channel, position, tap) triples reading it (padding 1)."""
    fan = np.zeros((4, 4), np.int64)
    for _o in range(2):
        for y in range(4):
            for x in range(4):
                for ky in range(3):
                    for kx in range(3):
                        i, j = y + ky - 1, x + kx - 1
                        if 0 <= i < 4 and 0 <= j < 4:
                            fan[i, j] += 1
    return fan


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    paths = {"mlp": tmp_path / "mlp.t1c", "conv": tmp_path / "conv.t1c"}
    ir.write(paths["mlp"], mlp_graph())
    ir.write(paths["conv"], conv_graph())
    return paths


def spikes_input(tmp_path: Path, steps: int = 6, batch: int = 2, seed: int = 3) -> tuple[Path, np.ndarray]:
    xs = (np.random.default_rng(seed).random((steps, batch, 1, 4, 4)) < 0.5).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, xs)
    return path, xs


# -- analyze ---------------------------------------------------------------------------------------
def test_analyze_counts_the_mlp_by_hand(models):
    doc = as_json("analyze", models["mlp"])
    assert doc["schema"] == "talon.analyze" and doc["run"] is None
    rows = {r["name"]: r for r in doc["nodes"]}
    # fc1: 3x4 weights + 3 biases; 12 synapses; 12 MACs; 15 float32 values = 60 bytes
    assert (rows["fc1"]["params"], rows["fc1"]["synapses"], rows["fc1"]["macs"], rows["fc1"]["weight_bytes"]) == \
        (15, 12, 12, 60)
    # lif1: 4 parameter arrays of 3; 3 neurons with one float32 state item (v) = 12 bytes
    assert (rows["lif1"]["params"], rows["lif1"]["neurons"], rows["lif1"]["state_bytes"]) == (12, 3, 12)
    # fc2: 2x3 + 2 values at 4 bits = 4 bytes
    assert (rows["fc2"]["params"], rows["fc2"]["synapses"], rows["fc2"]["macs"], rows["fc2"]["weight_bits"],
            rows["fc2"]["weight_bytes"]) == (8, 6, 6, 4, 4)
    assert rows["lif2"]["input_shapes"] == [[2]] and rows["lif2"]["output_shapes"] == [[2]]
    assert doc["totals"] == {"nodes": 6, "edges": 5, "params": 43, "neurons": 5, "synapses": 18, "macs": 18,
                             "weight_bytes": 60 + 48 + 4 + 32, "state_bytes": 20}
    assert doc["op_types"] == {"Affine": 1, "Input": 1, "LIF": 2, "Output": 1, "SpikingAffine": 1}


def test_analyze_counts_the_conv_snn_by_hand(models):
    doc = as_json("analyze", models["conv"])
    rows = {r["name"]: r for r in doc["nodes"]}
    # 2x1x3x3 weights; 2x4x4 outputs each reading 9 taps (zero padding included)
    assert (rows["conv"]["params"], rows["conv"]["synapses"], rows["conv"]["macs"]) == (20, 18, 288)
    assert (rows["if1"]["neurons"], rows["if1"]["state_bytes"], rows["if1"]["params"]) == (32, 128, 64)
    assert (rows["fc"]["synapses"], rows["fc"]["macs"]) == (96, 96)
    assert doc["totals"]["macs"] == 384 and doc["totals"]["neurons"] == 35 and doc["totals"]["synapses"] == 114


def test_analyze_counts_two_state_items_for_cuba_lif(tmp_path):
    n = np.ones(5, np.float32)
    graph = ir.Graph({"input": ir.Input((5,)), "cuba": ir.CubaLIF(tau_syn=2 * n, tau_mem=2 * n, r=n, v_leak=0 * n,
                                                                    v_threshold=n, w_in=n),
                      "output": ir.Output((5,))}, [("input", "cuba"), ("cuba", "output")])
    ir.write(tmp_path / "c.t1c", graph)
    row = as_json("analyze", tmp_path / "c.t1c")["nodes"][1]
    assert (row["neurons"], row["state_bytes"]) == (5, 5 * 2 * 4)  # v and i, float32


def test_analyze_run_measures_spikes_and_synaptic_operations(models, tmp_path):
    x, xs = spikes_input(tmp_path)
    doc = as_json("analyze", models["conv"], "--run", "--input", x)
    run = doc["run"]
    assert (run["steps"], run["batch"]) == (6, 2)
    expected = simulate_conv_snn(xs)
    layers = {a["name"]: a for a in run["layers"]}
    assert layers["if1"]["spikes"] == int(expected["if1"].sum()) > 0
    assert layers["if2"]["spikes"] == int(expected["if2"].sum()) > 0
    assert layers["if1"]["firing_rate"] == pytest.approx(expected["if1"].mean(), rel=1e-12)
    assert layers["if2"]["spikes_per_step"] == pytest.approx(expected["if2"].sum() / 12, rel=1e-12)
    conv_synops = int((xs[:, :, 0] * conv_fanout_by_hand()).sum())  # each input spike x the taps it reaches
    fc_synops = int(expected["if1"].sum()) * 3  # each if1 spike drives one weight per output
    assert layers["conv"]["synops"] == conv_synops and layers["conv"]["input_is_spikes"] is True
    assert layers["fc"]["synops"] == fc_synops
    assert run["totals"]["synops"] == conv_synops + fc_synops
    assert run["totals"]["spikes"] == int(expected["if1"].sum() + expected["if2"].sum())
    human = invoke("analyze", models["conv"], "--run", "--input", x)
    assert f"{conv_synops + fc_synops:,} synaptic operations" in human and "384 MACs per step" in human


def test_analyze_run_counts_feedback_inputs_from_the_previous_step(tmp_path):
    graph = ir.Graph({"input": ir.Input((2,)), "fc": ir.Affine(np.eye(2, dtype=np.float32)),
                      "if": ir.IF(r=np.ones(2, np.float32), v_threshold=np.ones(2, np.float32)),
                      "fb": ir.Affine(np.ones((2, 2), np.float32) * 0.25), "output": ir.Output((2,))},
                     [("input", "fc"), ("fc", "if"), ("if", "output"), ("if", "fb"), ("fb", "fc")], allow_cycles=True)
    ir.write(tmp_path / "cyc.t1c", graph)
    xs = np.array([[[1, 0]], [[0, 0]], [[1, 1]]], np.float32)
    np.save(tmp_path / "x.npy", xs)
    layers = {a["name"]: a for a in as_json("analyze", tmp_path / "cyc.t1c", "--run", "--input",
                                             tmp_path / "x.npy")["run"]["layers"]}
    # by hand: step 0 fc sees (1,0) -> if spikes (1,0); fb outputs (.25,.25) for step 1; fc at step 1 sees
    # (.25,.25) (2 non-zero values, 2 synapses each); v = (.25,.25), no spike; fb outputs 0 for step 2, where fc
    # sees (1,1) plus 0; fc's non-zero inputs: 1 + 2 + 2 = 5, times 2 synapses each
    assert layers["if"]["spikes"] == 1 + 0 + 2
    assert layers["fc"]["synops"] == 5 * 2 and layers["fc"]["input_is_spikes"] is False
    assert layers["fb"]["synops"] == 3 * 2


# -- compare ---------------------------------------------------------------------------------------
def test_compare_equal_and_reordered_graphs(models, tmp_path):
    graph = conv_graph()
    reordered = ir.Graph(dict(reversed(list(graph.nodes.items()))), list(reversed(graph.edges)))
    ir.write(tmp_path / "reordered.t1c", reordered)
    for other in (models["conv"], tmp_path / "reordered.t1c"):
        doc = as_json("compare", models["conv"], other, "--steps", "4", "--random", "bernoulli", "--rate", "0.5")
        assert doc["agree"] and doc["structure"]["equal"] and doc["structure"]["fields"] == []
        assert doc["runs"][0]["outputs"][0]["spike_agreement"] == 1.0 and doc["runs"][0]["divergence"] is None
    human = invoke("compare", models["conv"], tmp_path / "reordered.t1c", "--steps", "3")
    assert "structure: no differences" in human and "all outputs agree" in human


def test_compare_names_the_perturbed_weight_and_where_runs_part(models, tmp_path):
    weight = FC_W.copy()
    weight[1, 5] += 0.5
    ir.write(tmp_path / "perturbed.t1c", conv_graph(weight))
    x, xs = spikes_input(tmp_path)
    doc = as_json("compare", models["conv"], tmp_path / "perturbed.t1c", "--input", x, code=3)
    assert not doc["agree"] and not doc["structure"]["equal"]
    [field] = doc["structure"]["fields"]
    assert (field["node"], field["field"], field["max_diff"], field["within_tolerance"]) == ("fc", "weight", 0.5, False)
    spikes = simulate_conv_snn(xs)["if1"].reshape(6, 2, 32)
    t = int(np.argmax(spikes[:, :, 5].any(axis=1)))  # fc's neuron 1 first differs when flat neuron 5 first spikes
    b = int(np.argmax(spikes[t, :, 5]))
    assert doc["runs"][0]["divergence"]["layer"] == "fc"
    assert (doc["runs"][0]["divergence"]["timestep"], doc["runs"][0]["divergence"]["batch"],
            doc["runs"][0]["divergence"]["neuron"]) == (t, b, [1])
    assert abs(doc["runs"][0]["divergence"]["a"] - doc["runs"][0]["divergence"]["b"]) == 0.5
    human = invoke("compare", models["conv"], tmp_path / "perturbed.t1c", "--input", x, code=3)
    assert "node 'fc' field weight: largest difference 5.000e-01" in human
    assert f"first divergence: node 'fc', timestep {t}, batch item {b}, neuron (1,)" in human
    # within a tolerance that covers the change, the weights count as equal
    loose = as_json("compare", models["conv"], tmp_path / "perturbed.t1c", "--input", x, "--atol", "1", code=3)
    assert loose["structure"]["equal"] and loose["structure"]["fields"][0]["within_tolerance"]
    assert not loose["runs"][0]["agree"]  # but the spikes still differ


def test_compare_lists_added_removed_retyped_nodes_and_edges(models, tmp_path):
    graph = conv_graph()
    nodes = dict(graph.nodes)
    nodes["if2"] = ir.LIF(tau=np.full(3, 2.0, np.float32), r=np.ones(3, np.float32), v_leak=np.zeros(3, np.float32),
                          v_threshold=np.ones(3, np.float32))
    nodes["relu"] = ir.ReLU()
    del nodes["flat"]
    nodes["flatten"] = ir.Flatten()
    edges = [("input", "conv"), ("conv", "relu"), ("relu", "if1"), ("if1", "flatten"), ("flatten", "fc"),
             ("fc", "if2"), ("if2", "output")]
    ir.write(tmp_path / "changed.t1c", ir.Graph(nodes, edges))
    s = as_json("compare", models["conv"], tmp_path / "changed.t1c", "--steps", "2", code=3)["structure"]
    assert s["removed"] == ["flat"] and sorted(s["added"]) == ["flatten", "relu"]
    assert s["changed_type"] == [{"node": "if2", "a": "IF", "b": "LIF"}]
    assert s["edges_removed"] == [["conv", "if1"], ["if1", "flat"], ["flat", "fc"]]
    assert s["edges_added"] == [["conv", "relu"], ["relu", "if1"], ["if1", "flatten"], ["flatten", "fc"]]


def test_compare_refuses_models_with_different_input_shapes(models):
    result = CliRunner().invoke(cli, ["compare", str(models["conv"]), str(models["mlp"])])
    assert result.exit_code == 1 and "input shapes differ" in result.stderr


# -- verify ----------------------------------------------------------------------------------------
def test_verify_localises_one_changed_weight(models, tmp_path, monkeypatch):
    weight = FC_W.copy()
    weight[2, 7] -= 0.75
    real = running.backend_step

    def changed_on_onnxruntime(graph, backend):  # the onnxruntime run gets a graph with one weight changed
        if backend == "onnxruntime":
            nodes = dict(graph.nodes)
            nodes["fc"] = ir.Affine(weight)
            graph = ir.Graph(nodes, graph.edges)
        return real(graph, backend)

    monkeypatch.setattr(running, "backend_step", changed_on_onnxruntime)
    x, xs = spikes_input(tmp_path, seed=9)
    doc = as_json("verify", models["conv"], "--input", x, code=3)
    spikes = simulate_conv_snn(xs)["if1"].reshape(6, 2, 32)
    t = int(np.argmax(spikes[:, :, 7].any(axis=1)))
    divergence = doc["runs"][0]["divergence"]
    assert (divergence["layer"], divergence["timestep"], divergence["batch"], divergence["neuron"]) == \
        ("fc", t, int(np.argmax(spikes[t, :, 7])), [2])
    assert divergence["a"] - divergence["b"] == 0.75
    result = CliRunner().invoke(cli, ["verify", str(models["conv"]), "--input", str(x)])
    assert result.exit_code == 3 and "first divergence: node 'fc'" in result.stdout and "disagree" in result.stderr


def fixed_batch_onnx(path: Path) -> np.ndarray:
    """A Gemm model with its input fixed to batch 1, as torch.onnx.export writes; returns its weight."""
    w = np.arange(12, dtype=np.float32).reshape(3, 4) / 8
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1, name="fc")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return w


def test_verify_takes_the_batch_from_fixed_onnx_input_dims(tmp_path):
    fixed_batch_onnx(tmp_path / "fixed.onnx")
    doc = as_json("verify", tmp_path / "fixed.onnx", "--steps", "2")
    assert doc["batch"] == 1 and doc["agree"] and len(doc["runs"]) == 2
    assert doc["runs"][1]["left"] == "original .onnx on onnxruntime"
    assert "batch 1" in invoke("verify", tmp_path / "fixed.onnx", "--steps", "2")


# -- run, convert: --json and the smaller options ------------------------------------------------------
def test_run_onnx_on_onnxruntime_runs_the_file_itself(tmp_path, monkeypatch):
    w = fixed_batch_onnx(tmp_path / "m.onnx")
    monkeypatch.setattr(running, "backend_step", lambda *a: pytest.fail("re-exported instead of run as is"))
    xs = np.random.default_rng(0).standard_normal((3, 1, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", xs)
    doc = as_json("run", tmp_path / "m.onnx", "--backend", "onnxruntime", "--input", tmp_path / "x.npy",
                  "--save", tmp_path / "o.npz")
    assert doc["schema"] == "talon.run" and doc["file_as_is"] and doc["layers"] == []
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    expected = np.stack([session.run(None, {"x": x})[0] for x in xs])
    np.testing.assert_array_equal(np.load(tmp_path / "o.npz")["output"], expected)
    np.testing.assert_allclose(expected, xs @ w.T, rtol=1e-6)
    assert doc["outputs"]["output"]["shape"] == [3, 1, 3]
    human = invoke("run", tmp_path / "m.onnx", "--backend", "onnxruntime", "--input", tmp_path / "x.npy")
    assert "on onnxruntime (the file as is): 3 timesteps, batch 1; per-layer spikes are recorded on" in human


def test_run_json_reports_layers_like_the_table(models, tmp_path):
    x, xs = spikes_input(tmp_path)
    doc = as_json("run", models["conv"], "--input", x)
    expected = simulate_conv_snn(xs)
    assert [(r["layer"], r["neurons"], r["spikes"]) for r in doc["layers"]] == \
        [("if1", 32, int(expected["if1"].sum())), ("if2", 3, int(expected["if2"].sum()))]
    assert (doc["steps"], doc["batch"], doc["backend"]) == (6, 2, "torch")


def test_random_inputs_follow_the_chosen_distribution():
    graph = conv_graph()
    gauss = files.random_inputs(graph, 5, 2, 4)["input"]
    np.testing.assert_array_equal(gauss, np.random.default_rng(4).standard_normal((5, 2, 1, 4, 4)).astype(np.float32))
    uniform = files.random_inputs(graph, 5, 2, 4, "uniform")["input"]
    np.testing.assert_array_equal(uniform, np.random.default_rng(4).random((5, 2, 1, 4, 4)).astype(np.float32))
    spikes = files.random_inputs(graph, 50, 10, 4, "bernoulli", rate=0.25)["input"]
    expected = (np.random.default_rng(4).random((50, 10, 1, 4, 4)) < 0.25).astype(np.float32)
    np.testing.assert_array_equal(spikes, expected)
    with pytest.raises(files.CliError, match="unknown input distribution 'poisson'"):
        files.random_inputs(graph, 1, 1, 0, "poisson")


def test_seed_is_one_option_on_every_command(models, tmp_path):
    for command in (["run"], ["verify"], ["analyze", "--run"]):
        a = invoke(*command, models["mlp"], "--seed", "5", "--steps", "3", "--json")
        assert a == invoke(*command, models["mlp"], "--seed", "5", "--steps", "3", "--json")
    assert as_json("compare", models["mlp"], models["mlp"], "--seed", "5", "--steps", "3")["agree"]
    x, _ = spikes_input(tmp_path)
    result = CliRunner().invoke(cli, ["run", str(models["conv"]), "--input", str(x), "--seed", "2"])
    assert result.exit_code == 2 and "--input or --seed" in result.stderr


def test_convert_json_and_an_opset_refused_before_reading(models, tmp_path):
    doc = as_json("convert", models["mlp"], tmp_path / "m.onnx", "--opset", "21")
    assert doc == {"schema": "talon.convert", "version": 1, "source": str(models["mlp"]),
                   "destination": str(tmp_path / "m.onnx"), "nodes": 6, "edges": 5, "params": 43,
                   "bytes": (tmp_path / "m.onnx").stat().st_size}
    assert onnx.load(tmp_path / "m.onnx").opset_import[0].version == 21
    newest = onnx.defs.onnx_opset_version()
    for bad in ("5", str(newest + 1)):
        result = CliRunner().invoke(cli, ["convert", str(tmp_path / "missing.t1c"), str(tmp_path / "o.onnx"),
                                          "--opset", bad])
        assert result.exit_code == 2 and f"outside the opsets TALON writes with this onnx (20..{newest})" in \
            result.stderr, result.stderr


# -- pictures --------------------------------------------------------------------------------------
def test_inspect_draws_svg_without_graphviz_with_dashed_feedback(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    graph = ir.Graph({"input": ir.Input((2,)), "fc": ir.Affine(np.eye(2, dtype=np.float32)),
                      "if": ir.IF(r=np.ones(2, np.float32), v_threshold=np.ones(2, np.float32)),
                      "fb": ir.Affine(np.eye(2, dtype=np.float32)), "output": ir.Output((2,))},
                     [("input", "fc"), ("fc", "if"), ("if", "output"), ("if", "fb"), ("fb", "fc")], allow_cycles=True)
    ir.write(tmp_path / "cyc.t1c", graph)
    invoke("inspect", tmp_path / "cyc.t1c", "-o", tmp_path / "g.svg")
    svg = (tmp_path / "g.svg").read_text()
    for name in ("cyc.t1c", "input", "fc", "if", "fb", "output", "Affine", "IF", "2"):
        assert f">{name}</text>" in svg
    assert "stroke-dasharray" in svg  # the feedback edge fb -> fc (shaft and head), no other edge below
    ir.write(tmp_path / "chain.t1c", ir.Graph({n: graph.nodes[n] for n in ("input", "fc", "if", "output")},
                                              [("input", "fc"), ("fc", "if"), ("if", "output")]))
    invoke("inspect", tmp_path / "chain.t1c", "-o", tmp_path / "chain.svg")
    assert "stroke-dasharray" not in (tmp_path / "chain.svg").read_text()
    invoke("inspect", tmp_path / "cyc.t1c", "-o", tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_layers_follow_the_longest_forward_path():
    from talon.cli.plots import layered

    graph = ir.Graph({"input": ir.Input((2,)), "a": ir.ReLU(), "b": ir.ReLU(), "skip": ir.Skip(),
                      "output": ir.Output((2,))},
                     [("input", "a"), ("a", "b"), ("b", "skip"), ("input", "skip"), ("skip", "output")])
    assert layered(graph) == {"input": 0, "a": 1, "b": 2, "skip": 3, "output": 4}


def test_raster_has_a_title_and_axis_labels(models, tmp_path):
    pytest.importorskip("matplotlib")
    x, _ = spikes_input(tmp_path)
    invoke("run", models["conv"], "--input", x, "--raster", tmp_path / "r.svg")
    svg = (tmp_path / "r.svg").read_text()
    assert "conv.t1c on torch: spike raster, batch item 0" in svg
    assert "timestep" in svg and "neuron" in svg and "if1: " in svg
