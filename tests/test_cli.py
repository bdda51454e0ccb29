"""The `talon` command: every command and every error path through a real subprocess (exit codes, one-line
errors, --debug), and the numeric checks against the established fixtures in-process (click's runner),
which spares a torch start-up per case."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from click.testing import CliRunner
from conftest import FIXTURES, ROOT, fixture_manifest
from talon import ir
from talon.cli import cli

MANIFEST = {entry["name"]: entry for entry in fixture_manifest()}
SNN = FIXTURES / "snn_mlp.t1c"


def talon(*args: str, cwd: Path | None = None, env: dict | None = None, code: str | None = None):
    """Run `python -m talon ARGS` (or `python -c CODE ARGS`) and return the completed process."""
    head = ["-c", code, *args] if code else ["-m", "talon", *args]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, *head], capture_output=True, text=True, cwd=cwd, env=full_env)


def ok(*args: str, **kwargs):
    """Run a command that must succeed (in this process unless a working folder or environment is given)."""
    if kwargs:
        result = talon(*args, **kwargs)
        assert result.returncode == 0, result.stderr
        return result
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def inproc(*args: str, code: int = 0) -> str:
    """Run the command in this process and return its stdout; the exit code must be `code`."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout


def failed(*args: str, **kwargs) -> str:
    """Run a command that must fail: exit code 1, exactly one line on stderr, no traceback; returns that line.

    In this process (click's runner) unless a working folder or environment is given."""
    if kwargs:
        result = talon(*args, **kwargs)
        code, stdout, stderr = result.returncode, result.stdout, result.stderr
    else:
        result = CliRunner().invoke(cli, list(args))
        code, stdout, stderr = result.exit_code, result.stdout, result.stderr
    assert code == 1, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


def fixture_inputs(tmp_path: Path, name: str) -> tuple[Path, np.lib.npyio.NpzFile]:
    data = np.load(FIXTURES / f"{name}.npz")
    path = tmp_path / "x.npy"
    np.save(path, data["inputs"])
    return path, data


def h5_param_count(path: Path) -> int:
    """Float array elements stored in a .t1c file's node groups, counted with plain h5py."""
    total = 0
    with h5py.File(path, "r") as f:
        for group in f["graph/nodes"].values():
            total += sum(d.size for d in group.values() if isinstance(d, h5py.Dataset) and d.dtype.kind == "f"
                         and d.ndim > 0)
    return total


def unsupported_model(path: Path) -> list[str]:
    """An ONNX model with two operators no converter supports; returns their node names."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Cos", ["x"], ["a"], name="my_cos"),
             helper.make_node("Relu", ["a"], ["b"], name="fine_relu"),
             helper.make_node("Sin", ["b"], ["y"], name="my_sin")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return ["my_cos", "my_sin"]


# -- version, help, primitives -----------------------------------------------------------------------
def test_version_matches_the_package_metadata():
    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert ok("--version").stdout.strip() == f"talon {declared}"


def test_console_script_and_module_agree():
    script = Path(sys.executable).with_name("talon")
    if not script.exists():
        pytest.skip("the talon console script is not installed in this environment")
    result = subprocess.run([str(script), "primitives", "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(ok("primitives", "--json").stdout)


def test_primitives_lists_every_registered_primitive_with_its_fields():
    rows = json.loads(ok("primitives", "--json").stdout)
    assert [r["name"] for r in rows] == ir.list_primitives()
    lif = next(r for r in rows if r["name"] == "LIF")
    assert [f["name"] for f in lif["fields"]] == ["tau", "r", "v_leak", "v_threshold", "reset_mode"]
    assert [f["required"] for f in lif["fields"]] == [True] * 4 + [False] and lif["flags"] == ["stateful"]
    split = next(r for r in rows if r["name"] == "ChannelSplit")
    assert split["flags"] == ["multi_output"]
    table = ok("primitives").stdout
    assert all(name in table for name in ir.list_primitives())


def test_usage_error_exits_2():
    result = talon("run", str(SNN), "--backend", "tensorflow")
    assert result.returncode == 2 and "tensorflow" in result.stderr


# -- inspect -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_inspect_json_matches_the_file(name):
    path = FIXTURES / MANIFEST[name]["file"]
    info = json.loads(ok("inspect", str(path), "--json").stdout)
    assert {n["name"]: n["type"] for n in info["nodes"]} == MANIFEST[name]["node_types"]
    assert info["edges"] == MANIFEST[name]["edges"]
    assert info["totals"]["params"] == h5_param_count(path)
    assert info["file"]["bytes"] == path.stat().st_size
    out_shape = {n["name"]: n["output_shapes"] for n in info["nodes"]}
    assert out_shape["output"] == [MANIFEST[name]["output_shape"][1:]]
    assert out_shape["input"] == [MANIFEST[name]["input_shape"][1:]]


def test_inspect_counts_lif_neurons_and_bytes():
    info = json.loads(ok("inspect", str(FIXTURES / "conv_snn.t1c"), "--json").stdout)
    data = np.load(FIXTURES / "conv_snn.npz")
    neurons = sum(int(np.prod(data[k].shape[2:])) for k in ("state__lif1", "state__lif2"))
    assert info["totals"]["neurons"] == {"LIF": neurons}
    with h5py.File(FIXTURES / "conv_snn.t1c", "r") as f:
        nbytes = sum(d.nbytes for g in f["graph/nodes"].values() for d in g.values()
                     if isinstance(d, h5py.Dataset) and d.dtype.kind == "f" and d.ndim > 0)
    assert info["totals"]["bytes"] == nbytes
    inputs = {n["name"]: n["input_shapes"] for n in info["nodes"]}
    assert inputs["flat"] == [[4, 3, 3]] and inputs["input"] == []


def test_inspect_table_shows_nodes_edges_totals_and_metadata(tmp_path):
    graph = ir.read(SNN)
    graph.metadata = {"author": "cli test", "epochs": 3}
    path = tmp_path / "meta.t1c"
    ir.write(path, graph)
    text = ok("inspect", str(path)).stdout
    for name, kind in MANIFEST["snn_mlp"]["node_types"].items():
        assert name in text and kind in text
    assert "lif1 -> fc2" in text
    assert f"{graph.num_params():,} parameters" in text and "20 LIF" in text
    assert '"author": "cli test"' in text


def test_inspect_dot_has_every_node_and_edge(tmp_path):
    dot = ok("inspect", str(SNN), "--dot").stdout
    assert dot.startswith("digraph")
    for src, dst in MANIFEST["snn_mlp"]["edges"]:
        assert f'"{src}" -> "{dst}";' in dot
    ok("inspect", str(SNN), "-o", str(tmp_path / "g.dot"))
    assert (tmp_path / "g.dot").read_text() == dot


def test_inspect_picture_with_or_without_graphviz(tmp_path):
    target = tmp_path / "g.svg"
    ok("inspect", str(SNN), "-o", str(target))  # without Graphviz, matplotlib draws it (tests/test_cli_tools.py)
    assert target.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert "unknown picture extension" in failed("inspect", str(SNN), "-o", str(tmp_path / "g.jpg"))


# -- errors shared by every command ------------------------------------------------------------------
@pytest.mark.parametrize("command", [["inspect"], ["run"], ["verify"]])
def test_missing_file(command, tmp_path):
    line = failed(*command, str(tmp_path / "absent.t1c"))
    assert "absent.t1c" in line and "no such file" in line


@pytest.mark.parametrize("command", [["inspect"], ["run"], ["verify"], ["convert", "out.t1c"]])
def test_unknown_extension(command, tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"x")
    args = [command[0], str(path), *command[1:]]
    assert "unknown extension '.pt'" in failed(*args, cwd=tmp_path)


def test_bad_t1c_file_and_debug_traceback(tmp_path):
    bad = tmp_path / "bad.t1c"
    bad.write_bytes(b"this is not HDF5")
    assert "bad.t1c" in failed("inspect", str(bad))
    for args in (["--debug", "inspect", str(bad)], ["inspect", str(bad), "--debug"]):
        result = talon(*args)
        assert result.returncode == 1
        assert "Traceback (most recent call last)" in result.stderr and "TalonFormatError" in result.stderr


def test_unsupported_operators_are_all_listed(tmp_path):
    names = unsupported_model(tmp_path / "odd.onnx")
    line = failed("inspect", str(tmp_path / "odd.onnx"))
    assert all(n in line for n in names) and "fine_relu" not in line


def test_convert_refusal_is_a_table_suggesting_host_fallback(tmp_path):
    names = unsupported_model(tmp_path / "odd.onnx")
    result = talon("convert", str(tmp_path / "odd.onnx"), str(tmp_path / "odd.t1c"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    rows = [line.replace("│", " ").split() for line in result.stderr.splitlines()]
    assert ["Cos", "1", "my_cos"] in [r[:3] for r in rows] and ["Sin", "1", "my_sin"] in [r[:3] for r in rows]
    assert "fine_relu" not in result.stderr and str(tmp_path / "odd.onnx") in result.stderr.replace("\n", "")
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "--host-fallback" in result.stderr
    assert not (tmp_path / "odd.t1c").exists()


def test_convert_with_host_fallback_reports_the_native_share(tmp_path):
    unsupported_model(tmp_path / "odd.onnx")
    result = ok("convert", str(tmp_path / "odd.onnx"), str(tmp_path / "odd.t1c"), "--host-fallback")
    assert "TALON-native: 1/3 ONNX nodes (33.3%)" in result.stdout
    assert "host region host: 1 nodes (Cos)" in result.stdout and "host region host_1: 1 nodes (Sin)" in result.stdout
    assert ok("inspect", str(tmp_path / "odd.t1c")).stdout.count("host region") == 2


# -- run ---------------------------------------------------------------------------------------------
def test_run_prints_per_layer_spikes_and_saves_outputs(tmp_path):
    x, data = fixture_inputs(tmp_path, "snn_mlp")
    out = tmp_path / "out.npz"
    result = ok("run", str(SNN), "--input", str(x), "--save", str(out))
    np.testing.assert_allclose(np.load(out)["output"], data["outputs"], atol=1e-5)
    spikes, neurons = int(data["outputs"].sum()), data["outputs"].shape[-1]
    rows = [line.replace("│", " ").split() for line in result.stdout.splitlines()]
    assert ["lif2", str(neurons), str(spikes), f"{spikes / data['outputs'].size:.4f}"] in rows, result.stdout
    assert any(row[:1] == ["lif1"] for row in rows)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
@pytest.mark.parametrize("name", ["snn_mlp", "conv_snn"])
def test_run_reproduces_the_established_outputs(name, backend, tmp_path):
    x, data = fixture_inputs(tmp_path, name)
    out = tmp_path / "out.npz"
    inproc("run", str(FIXTURES / f"{name}.t1c"), "--backend", backend, "--input", str(x), "--save", str(out))
    saved = np.load(out)
    np.testing.assert_allclose(saved["output"], data["outputs"], atol=1e-5)
    np.testing.assert_array_equal(saved["spikes.lif2"], data["outputs"])


def test_run_constant_input_repeats_over_steps(tmp_path):
    data = np.load(FIXTURES / "snn_mlp.npz")
    x, repeated = tmp_path / "x0.npy", tmp_path / "rep.npy"
    np.save(x, data["inputs"][0])
    np.save(repeated, np.repeat(data["inputs"][:1], 4, axis=0))
    inproc("run", str(SNN), "--input", str(x), "--steps", "4", "--save", str(tmp_path / "a.npz"))
    inproc("run", str(SNN), "--input", str(repeated), "--save", str(tmp_path / "b.npz"))
    a, b = np.load(tmp_path / "a.npz")["output"], np.load(tmp_path / "b.npz")["output"]
    assert a.shape == (4, 3, 4)
    np.testing.assert_array_equal(a, b)


def test_run_random_seed_is_reproducible_and_sets_shapes(tmp_path):
    a, b, c = (tmp_path / f"{k}.npz" for k in "abc")
    inproc("run", str(SNN), "--seed", "7", "--steps", "5", "--batch", "2", "--save", str(a))
    inproc("run", str(SNN), "--seed", "7", "--steps", "5", "--batch", "2", "--save", str(b), "--backend",
           "onnxruntime")
    inproc("run", str(SNN), "--seed", "8", "--steps", "5", "--batch", "2", "--save", str(c))
    assert np.load(a)["output"].shape == (5, 2, 4)
    assert set(np.load(a).files) == {"output", "spikes.lif1", "spikes.lif2"}
    np.testing.assert_array_equal(np.load(a)["spikes.lif1"], np.load(b)["spikes.lif1"])
    assert not np.array_equal(np.load(a)["spikes.lif1"], np.load(c)["spikes.lif1"])


def test_run_bad_input_shape(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((10, 3, 11), dtype=np.float32))
    line = failed("run", str(SNN), "--input", str(x))
    assert "bad input array shape (10, 3, 11)" in line and "(T, B, 10)" in line
    np.save(x, np.zeros((10, 3, 10), dtype=np.float32))
    assert "--steps is 4" in failed("run", str(SNN), "--input", str(x), "--steps", "4")
    npz = tmp_path / "x.npz"
    np.savez(npz, other=np.zeros((3, 10), np.float32))
    assert "no array for input(s) ['input']" in failed("run", str(SNN), "--input", str(npz))


def test_run_input_and_random_are_exclusive(tmp_path):
    x, _ = fixture_inputs(tmp_path, "snn_mlp")
    result = talon("run", str(SNN), "--input", str(x), "--random", "bernoulli")
    assert result.returncode == 2 and "--random" in result.stderr


def test_run_raster_png(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "raster.png"
    inproc("run", str(SNN), "--steps", "6", "--raster", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_raster_without_matplotlib(tmp_path):
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('matplotlib hidden for this test')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(shadow.parent), str(ROOT)])}
    line = failed("run", str(SNN), "--steps", "2", "--raster", str(tmp_path / "r.png"), env=env)
    assert "matplotlib" in line and "pip install" in line
    assert not (tmp_path / "r.png").exists()


# -- verify ------------------------------------------------------------------------------------------
def test_verify_through_the_command():
    result = ok("verify", str(SNN), "--steps", "4")
    assert "all outputs agree" in result.stdout and "torch vs onnxruntime" in result.stdout
    assert "100.00%" in result.stdout


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_verify_agrees_on_the_fixtures(name):
    out = inproc("verify", str(FIXTURES / MANIFEST[name]["file"]), "--steps", "5")
    assert "all outputs agree" in out
    assert ("100.00%" in out) == MANIFEST[name]["stateful"]  # spike agreement is shown for spiking outputs


def test_verify_onnx_input_compares_the_original_file_too(tmp_path):
    onnx_path = tmp_path / "m.onnx"
    inproc("convert", str(SNN), str(onnx_path))
    out = inproc("verify", str(onnx_path), "--steps", "3")
    assert "original .onnx on onnxruntime vs converted IR on torch" in out and "all outputs agree" in out


def test_verify_exits_3_on_disagreement():
    perturb = (
        "import sys, talon.cli.running as r\n"
        "real = r.onnxruntime_step\n"
        "def noisy(*a, **k):\n"
        "    step = real(*a, **k)\n"
        "    def wrapped(x, s):\n"
        "        out, s = step(x, s)\n"
        "        return {n: 1.0 - v for n, v in out.items()}, s\n"
        "    return wrapped\n"
        "r.onnxruntime_step = noisy\n"
        "from talon.cli import main\n"
        "sys.argv[0] = 'talon'\n"
        "main()\n"
    )
    result = talon("verify", str(SNN), "--steps", "3", code=perturb)
    assert result.returncode == 3, result.stderr
    assert "DIFFERS" in result.stdout and "disagree" in result.stderr


# -- convert -----------------------------------------------------------------------------------------
def test_convert_reports_what_it_wrote(tmp_path):
    onnx_path = tmp_path / "m.onnx"
    line = ok("convert", str(SNN), str(onnx_path)).stdout.strip()
    graph = ir.read(SNN)
    assert line.startswith(f"Converted {SNN} -> {onnx_path}: {len(graph.nodes)} nodes, {len(graph.edges)} edges, "
                           f"{graph.num_params():,} parameters, ")
    onnx.checker.check_model(onnx.load(onnx_path))


def test_convert_t1c_to_onnx_and_back(tmp_path):
    onnx_path, back = tmp_path / "m.onnx", tmp_path / "back.t1c"
    inproc("convert", str(SNN), str(onnx_path))
    inproc("convert", str(onnx_path), str(back))
    graph = ir.read(SNN)
    assert ir.read(back).equals(graph), ir.read(back).diff(graph)
    info = json.loads(inproc("inspect", str(onnx_path), "--json"))  # .onnx files are converted first
    assert [n["name"] for n in info["nodes"]] == list(graph.nodes) and info["totals"]["params"] == graph.num_params()
    x, data = fixture_inputs(tmp_path, "snn_mlp")
    out = tmp_path / "out.npz"
    inproc("run", str(onnx_path), "--input", str(x), "--save", str(out), "--backend", "onnxruntime")
    np.testing.assert_allclose(np.load(out)["output"], data["outputs"], atol=1e-5)


def test_convert_spiking_options(tmp_path):
    onnx_path = tmp_path / "m.onnx"
    inproc("convert", str(FIXTURES / "affine.t1c"), str(onnx_path))
    spiking = tmp_path / "s.t1c"
    inproc("convert", str(onnx_path), str(spiking), "--spiking", "--weight-bits", "4", "--accumulator-bits", "12",
           "--spike-mode", "graded")
    fc = [n for n in ir.read(spiking).nodes.values() if isinstance(n, ir.SpikingAffine)]
    assert len(fc) == 1 and (fc[0].weight_bits, fc[0].accumulator_bits, fc[0].spike_mode) == (4, 12, "graded")
    line = failed("convert", str(onnx_path), str(tmp_path / "t.t1c"), "--spiking", "--weight-bits", "16",
                  "--accumulator-bits", "8")
    assert "accumulator_bits" in line and not (tmp_path / "t.t1c").exists()


def test_convert_missing_source_and_options_that_do_not_apply(tmp_path):
    assert "no such file" in failed("convert", str(tmp_path / "a.onnx"), str(tmp_path / "b.t1c"))
    assert "options ['spiking'] do not apply" in failed("convert", str(SNN), str(tmp_path / "b.onnx"), "--spiking")
    assert "--dt" in failed("convert", str(SNN), str(tmp_path / "b.nir"))
    assert not list(tmp_path.iterdir())


def test_convert_writes_the_requested_opset(tmp_path):
    onnx_path = tmp_path / "m.onnx"
    inproc("convert", str(SNN), str(onnx_path), "--opset", "20")
    opsets = {o.domain: o.version for o in onnx.load(onnx_path).opset_import}
    assert opsets[""] == 20


# -- NIR ---------------------------------------------------------------------------------------------
def test_nir_files_need_dt_and_run_like_the_original(tmp_path):
    pytest.importorskip("nir")
    nir_path = tmp_path / "m.nir"
    inproc("convert", str(SNN), str(nir_path), "--dt", "1e-3")
    line = failed("inspect", str(nir_path))
    assert "--dt" in line and "m.nir" in line
    info = json.loads(inproc("inspect", str(nir_path), "--dt", "1e-3", "--json"))
    assert {n["name"]: n["type"] for n in info["nodes"]} == MANIFEST["snn_mlp"]["node_types"]
    x, data = fixture_inputs(tmp_path, "snn_mlp")
    out = tmp_path / "out.npz"
    inproc("run", str(nir_path), "--dt", "1e-3", "--input", str(x), "--save", str(out))
    np.testing.assert_allclose(np.load(out)["output"], data["outputs"], atol=1e-5)


def test_convert_warns_about_an_approximate_conversion(tmp_path):
    nir = pytest.importorskip("nir")
    n = 3
    nodes = {"input": nir.Input(input_type=np.array([n])),
             "lif": nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                            v_reset=np.full(n, 0.2)),
             "output": nir.Output(output_type=np.array([n]))}
    nir.write(tmp_path / "reset.nir", nir.NIRGraph(nodes=nodes, edges=[("input", "lif"), ("lif", "output")]))
    result = ok("convert", str(tmp_path / "reset.nir"), str(tmp_path / "reset.t1c"), "--dt", "1e-3")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "'lif'" in warnings[0] and "v_reset" in warnings[0], result.stderr
    assert result.stdout.startswith(f"Converted {tmp_path / 'reset.nir'} -> {tmp_path / 'reset.t1c'}: 3 nodes")


# -- cyclic graphs -----------------------------------------------------------------------------------
def test_run_cyclic_graph_carries_feedback_across_steps(tmp_path):
    rng = np.random.default_rng(5)
    w1, b1 = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    wf, bf = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    tau, threshold = np.float32(3.0), np.float32(0.4)
    graph = ir.Graph(
        nodes={"input": ir.Input(np.array([4])), "fc1": ir.Affine(weight=w1, bias=b1),
               "lif1": ir.LIF(tau=np.full(3, tau), r=np.ones(3, np.float32), v_leak=np.zeros(3, np.float32),
                              v_threshold=np.full(3, threshold)),
               "fb": ir.Affine(weight=wf, bias=bf), "output": ir.Output(np.array([3]))},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "output"), ("lif1", "fb"), ("fb", "fc1")],
        allow_cycles=True,
    )
    path, xs, out = tmp_path / "cyclic.t1c", rng.normal(size=(8, 2, 4)).astype(np.float32), tmp_path / "o.npz"
    ir.write(path, graph)
    np.save(tmp_path / "x.npy", xs)
    inproc("run", str(path), "--input", str(tmp_path / "x.npy"), "--save", str(out))
    beta = np.float32(1) - np.float32(1) / tau
    v, feedback, expected = np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32), []
    for x in xs:  # the feedback edge delivers fb's output of the previous step, added to fc1's input
        v = beta * v + (np.float32(1) - beta) * ((x + feedback) @ w1.T + b1)
        s = (v >= threshold).astype(np.float32)
        v = v * (1 - s)
        feedback = s @ wf.T + bf
        expected.append(s)
    assert np.stack(expected).sum() > 0
    np.testing.assert_array_equal(np.load(out)["output"], np.stack(expected))
    assert "cycles" in failed("verify", str(path), "--steps", "2")
