"""A .t1c write (ir.write) and an .onnx write (converters.save_onnx) killed part way by SIGKILL leave an
existing target intact and no stray temporary files; killed before the end with no existing target, they
leave nothing or a complete file. Kills are timed on the child's own write progress (/proc/<pid>/io)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx import helper as h
from onnx import numpy_helper as nh

import converters
from talon import ir

ROOT = Path(__file__).resolve().parents[1]
MB = 1 << 20
KILL_POINTS = [0, 8 * MB, 60 * MB]  # bytes the child has written when it is killed (0: as soon as it starts)
# save_onnx serializes first and writes in one call: kill as it starts, and once its first bytes are written
ONNX_KILLS = [(0, 2**31), (1, 2**31), (1, 0)]

T1C_WRITER = """
import sys
import numpy as np
from talon import ir
w = np.random.default_rng(1).standard_normal((4096, 4096), dtype=np.float32)  # 64 MB per layer
nodes = {"input": ir.Input((4096,)), "output": ir.Output((4096,))}
nodes.update({f"fc{i}": ir.Affine(weight=w) for i in range(3)})
graph = ir.Graph(nodes, [("input", "fc0"), ("fc0", "fc1"), ("fc1", "fc2"), ("fc2", "output")])
print("writing", flush=True)
ir.write(sys.argv[1], graph)
print("done", flush=True)
"""

ONNX_WRITER = """
import sys
import numpy as np
from onnx import TensorProto, helper as h, numpy_helper as nh
import converters
inits = [nh.from_array(np.full((2048, 2048), i, np.float32), f"w{i}") for i in range(3)]  # 16 MB each
nodes = [h.make_node("MatMul", ["x" if i == 0 else f"y{i - 1}", f"w{i}"], [f"y{i}"]) for i in range(3)]
graph = h.make_graph(nodes, "big", [h.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2048])],
                     [h.make_tensor_value_info("y2", TensorProto.FLOAT, ["N", 2048])], inits)
model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
print("writing", flush=True)
converters.save_onnx(model, sys.argv[1], external_data_threshold=int(sys.argv[2]))
print("done", flush=True)
"""


def _written(pid: int) -> int:
    with open(f"/proc/{pid}/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("wchar:"))


def _kill_during_write(script: str, args: list[str], after_bytes: int) -> bool:
    """Run the writer script; SIGKILL it once it has written `after_bytes` more since announcing the write.

    Returns True when the child was killed before it finished."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        start = _written(child.pid)
        while _written(child.pid) - start < after_bytes and child.poll() is None:
            time.sleep(0.001)
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        pass  # the child finished between two polls
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    return child.returncode == -signal.SIGKILL


def _small_graph() -> ir.Graph:
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    return ir.Graph({"input": ir.Input((3,)), "fc": ir.Affine(weight=w), "output": ir.Output((2,))},
                    [("input", "fc"), ("fc", "output")])


def _small_model() -> onnx.ModelProto:
    graph = h.make_graph([h.make_node("MatMul", ["x", "w"], ["y"])], "small",
                         [h.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                         [h.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
                         [nh.from_array(np.arange(6, dtype=np.float32).reshape(3, 2), "w")])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones and subfolders included) with its content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} | {
        str(p.relative_to(folder)) + "/": b"" for p in folder.rglob("*") if p.is_dir()}


@pytest.mark.parametrize("after_bytes", KILL_POINTS)
def test_killed_t1c_write_keeps_the_existing_file(tmp_path: Path, after_bytes: int):
    target = tmp_path / "model.t1c"
    ir.write(target, _small_graph())
    before = _snapshot(tmp_path)
    _kill_during_write(T1C_WRITER, [str(target)], after_bytes)
    if _snapshot(tmp_path) == before:  # killed before the new file was in place: the old one is intact
        assert ir.read(target).equals(_small_graph())
    else:  # the kill came after the rename (or the write finished): the new file is complete and alone
        assert sorted(os.listdir(tmp_path)) == ["model.t1c"]
        assert len(ir.read(target).nodes) == 5


def test_killed_t1c_write_without_existing_file_leaves_nothing(tmp_path: Path):
    target = tmp_path / "new" / "model.t1c"
    assert _kill_during_write(T1C_WRITER, [str(target)], 8 * MB)
    assert not target.exists()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(("after_bytes", "threshold"), ONNX_KILLS, ids=["start", "writing", "writing-external-data"])
def test_killed_onnx_write_keeps_the_existing_file(tmp_path: Path, after_bytes: int, threshold: int):
    target = tmp_path / "model.onnx"
    converters.save_onnx(_small_model(), target, external_data_threshold=threshold)
    before = _snapshot(tmp_path)
    _kill_during_write(ONNX_WRITER, [str(target), str(threshold)], after_bytes)
    if _snapshot(tmp_path) == before:  # killed before the new model was in place: old files untouched
        np.testing.assert_array_equal(nh.to_array(onnx.load(target).graph.initializer[0]),
                                      nh.to_array(_small_model().graph.initializer[0]))
    else:  # the kill came after the rename (or the write finished): the new model, complete, and only its files
        model = onnx.load(target)
        assert model.graph.name == "big"
        referenced = {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
        assert sorted(os.listdir(tmp_path)) == sorted({"model.onnx", *referenced})


def test_failed_onnx_write_with_external_data_keeps_the_existing_pair(tmp_path: Path, monkeypatch):
    """A failure after the new .data file is in place must not leave the old .onnx pointing into it."""
    target = tmp_path / "model.onnx"
    old = _small_model()
    converters.save_onnx(old, target, external_data_threshold=0)
    before = _snapshot(tmp_path)
    new = _small_model()
    new.graph.initializer[0].CopyFrom(nh.from_array(np.full((3, 2), 7, np.float32), "w"))
    real_replace = os.replace

    def failing_replace(src, dst, **kw):  # the final rename onto the model file, by path or by dir_fd + name
        if os.path.basename(os.fspath(dst)) == target.name:
            raise OSError("disk full (injected)")
        return real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="injected"):
        converters.save_onnx(new, target, external_data_threshold=0)
    monkeypatch.setattr(os, "replace", real_replace)
    assert _snapshot(tmp_path) == before
    kept = onnx.load(target).graph.initializer[0]
    np.testing.assert_array_equal(nh.to_array(kept), nh.to_array(old.graph.initializer[0]))
