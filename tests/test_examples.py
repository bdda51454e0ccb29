"""Every script in examples/ runs in a fresh folder and prints what it promises; the bundled model is
reproducible from its script and computes what the PyTorch network computes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from conftest import ROOT

EXAMPLES = ROOT / "examples"
BUNDLED = EXAMPLES / "models" / "conv_snn.onnx"

# lines each script must print (exactly, after stripping); scripts not listed must only exit 0
EXPECTED_LINES = {
    "tutorial_bridge.py": [
        "Nodes: 5", "Edges: 4", "input: Input", "fc1: Affine", "relu: ReLU", "fc2: Affine", "output: Output",
        "Equivalent: True", "fc1: SpikingAffine", "fc2: SpikingAffine", "Timestep outputs: 3 tensors",
        "State keys: ['lif1']", "Serialization round-trip: max diff = 0.00e+00", "torch.Size([1, 32])",
    ],
}


def run_script(name: str, cwd: Path, *args: str) -> str:
    """Run examples/<name> in `cwd`; it must exit 0. Returns its stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """name -> (stdout, folder) of a script run once per test module in its own empty folder."""
    done: dict[str, tuple[str, Path]] = {}

    def get(name: str) -> tuple[str, Path]:
        if name not in done:
            folder = tmp_path_factory.mktemp(name.removesuffix(".py"))
            done[name] = (run_script(name, folder), folder)
        return done[name]

    return get


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py") if p.name != "make_example_model.py"))
def test_example_runs_in_a_fresh_folder(name, example):
    lines = [line.strip() for line in example(name)[0].splitlines()]
    missing = [line for line in EXPECTED_LINES.get(name, []) if line not in lines]
    assert not missing, f"{name} did not print {missing}"


def test_tutorial_state_and_files(example):
    out, folder = example("tutorial_bridge.py")
    assert re.findall(r"t=\d: spikes=\d+/64, state keys=\['lif'\]", out) and len(re.findall(r"t=\d: spikes=", out)) == 5
    assert len(re.findall(r"t=\d: shape=torch.Size\(\[1, 32\]\), spike count=\d+", out)) == 3
    assert (folder / "models" / "snn_bridge_demo.t1c").is_file()


def test_quickstart_agrees_and_writes_the_t1c(example):
    from talon import ir

    out, folder = example("quickstart.py")
    assert out.count("max |diff| 0.000e+00, spike agreement 100.00%") == 2, out
    graph = ir.read(folder / "models" / "conv_snn.t1c")
    assert [type(n).__name__ for n in graph.nodes.values()].count("LIF") == 2


def test_convert_onnx_example_matches_every_runtime(example):
    out, folder = example("convert_onnx.py")
    diffs = [float(d) for d in re.findall(r"max \|diff\| ([0-9.e+-]+)", out)]
    assert len(diffs) == 3 and max(diffs) < 1e-4, out
    assert "spiking import: ['BatchNorm2d', 'Conv2d', 'Flatten', 'Input', 'MaxPool2d', 'Output', 'ReLU', " \
           "'SpikingAffine']" in out
    assert "refused, 2 unsupported nodes: ['Cos', 'Sin']" in out
    assert (folder / "models" / "convnet.t1c").is_file()


def test_bundled_model_is_what_the_script_makes(tmp_path):
    from onnx_ops import OrtExecutor

    run_script("make_example_model.py", tmp_path, str(tmp_path / "fresh.onnx"))
    assert BUNDLED.stat().st_size < 300_000
    fresh, bundled = onnx.load(tmp_path / "fresh.onnx"), onnx.load(BUNDLED)
    assert [n.op_type for n in fresh.graph.node] == [n.op_type for n in bundled.graph.node]
    xs = np.random.default_rng(2).random((5, 3, 1, 12, 12), dtype=np.float32)
    ys_fresh, state_fresh = OrtExecutor(fresh, return_state=True).run_sequence(xs)
    ys_bundled, state_bundled = OrtExecutor(bundled, return_state=True).run_sequence(xs)
    np.testing.assert_array_equal(ys_fresh, ys_bundled)
    for layer in ("lif1", "lif2"):
        np.testing.assert_array_equal(state_fresh[layer][0], state_bundled[layer][0])


def test_bundled_model_computes_the_lif_dynamics():
    """onnxruntime on the bundled file against a float64 numpy re-implementation of the network
    (docs/neurons.md): every spike equal. No membrane of the reference comes within `margin` of the threshold,
    far more than float32 rounding, so a correct float32 network makes exactly the same decisions."""
    import torch

    from onnx_ops import OrtExecutor

    margin = 1e-5  # float32 spacing at 0.3 is 3e-8: rounding cannot move a membrane this far
    model = onnx.load(BUNDLED)
    arrays = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    xs = np.random.default_rng(3).random((6, 2, 1, 12, 12), dtype=np.float32)
    ys, _ = OrtExecutor(BUNDLED, return_state=True).run_sequence(xs)
    closest = []

    def lif(v, x, tau, threshold):
        v = (1 - 1 / tau) * v + x / tau
        closest.append(np.abs(v - threshold).min())
        s = (v >= threshold).astype(np.float64)
        return s, v * (1 - s)

    v1, v2, expected = np.zeros((2, 8, 12, 12)), np.zeros((2, 10)), []
    for x in xs:
        c = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(arrays["conv.weight"]),
                                       torch.tensor(arrays["conv.bias"]), padding=1).numpy()
        s1, v1 = lif(v1, c, 4.0, 0.3)
        pooled = s1.reshape(2, 8, 6, 2, 6, 2).max(axis=(3, 5)).reshape(2, -1)
        s2, v2 = lif(v2, pooled @ arrays["fc.weight"].T + arrays["fc.bias"], 5.0, 0.3)
        expected.append(s2)
    expected = np.stack(expected)
    assert min(closest) > margin and 0 < expected.sum() < expected.size
    np.testing.assert_array_equal(ys, expected.astype(np.float32))
