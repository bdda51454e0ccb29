"""Peak-memory probes shared by benchmarks/bench_memory.py and tests/test_external_data.py.

`write_external_mlp` builds an ONNX MLP whose weights live in one external data file without
holding them all in memory; `peak_rss` runs a snippet in a fresh interpreter and reports its
resident memory after imports and its peak (VmHWM), so the two can be compared with the weight size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from onnx import TensorProto
from onnx import helper as h
from onnx.external_data_helper import set_external_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _external(name: str, shape: tuple[int, ...], data, offset: int, location: str) -> TensorProto:
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape)
    t.raw_data = b""
    set_external_data(t, location=location, offset=offset, length=int(np.prod(shape)) * 4)
    t.data_location = TensorProto.EXTERNAL
    data.write(np.random.default_rng(len(name) + offset).standard_normal(shape, dtype=np.float32).tobytes())
    return t


def write_external_mlp(folder: str, width: int, layers: int, location: str = "weights.bin") -> tuple[str, int]:
    """An ONNX MLP (Gemm + Relu per layer, width x width) with external weights in `folder`.

    Returns (model path, weight bytes)."""
    os.makedirs(folder, exist_ok=True)
    nodes, inits, prev, offset = [], [], "x", 0
    with open(os.path.join(folder, location), "wb") as data:
        for i in range(layers):
            for name, shape in ((f"w{i}", (width, width)), (f"b{i}", (width,))):
                inits.append(_external(name, shape, data, offset, location))
                offset += int(np.prod(shape)) * 4
            nodes.append(h.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [f"g{i}"], name=f"fc{i}", transB=1))
            nodes.append(h.make_node("Relu", [f"g{i}"], [f"r{i}"], name=f"relu{i}"))
            prev = f"r{i}"
    nodes[-1].output[0] = "y"
    graph = h.make_graph(nodes, "mlp", [h.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
                         [h.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=9)
    path = os.path.join(folder, "model.onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path, offset


_STATUS = """
import json
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
"""


def peak_rss(setup: str, work: str, timeout: float = 600) -> dict[str, int]:
    """Run `setup` then `work` in a fresh interpreter: bytes resident after setup ("base") and the peak ("peak")."""
    script = "\n".join([
        _STATUS, textwrap.dedent(setup), 'base = status("VmRSS")', textwrap.dedent(work),
        'print(json.dumps({"base": base, "peak": status("VmHWM")}))',
    ])
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=timeout,
                         cwd=ROOT, check=False)
    if out.returncode:
        raise RuntimeError(f"memory probe failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
