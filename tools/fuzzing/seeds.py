"""The valid inputs that mutations start from: small .t1c graphs and ONNX models covering many primitives."""

from __future__ import annotations

import functools
import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto
from onnx import helper as h
from onnx import numpy_helper as nh

from converters import ir_to_onnx
from talon import ir


def _arr(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


def _neuron(rng: np.random.Generator, cls, n: int, **extra) -> ir.Node:
    fields = {"tau": np.full(n, 2.0, np.float32), "r": np.ones(n, np.float32), "v_leak": np.zeros(n, np.float32),
              "v_threshold": np.full(n, 0.5, np.float32)}
    names = {"LIF": ("tau", "r", "v_leak", "v_threshold"), "IF": ("r", "v_threshold")}[cls.__name__]
    return cls(**{k: fields[k] for k in names}, **extra)


def graphs() -> dict[str, ir.Graph]:
    """Seed graphs: a spiking MLP, a conv net, split/concat/skip routing, a cycle and odd names with metadata."""
    rng = np.random.default_rng(0)
    mlp = ir.Graph(
        {"input": ir.Input(shape=(8,)), "fc1": ir.Affine(weight=_arr(rng, 6, 8), bias=_arr(rng, 6)),
         "lif1": _neuron(rng, ir.LIF, 6),
         "fc2": ir.SpikingAffine(weight=_arr(rng, 4, 6), bias=_arr(rng, 4), spike_mode="binary", weight_bits=8,
                                 accumulator_bits=16),
         "if2": _neuron(rng, ir.IF, 4), "output": ir.Output(shape=(4,))},
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "if2"), ("if2", "output")],
    )
    conv = ir.Graph(
        {"input": ir.Input(shape=(2, 6, 6)),
         "conv": ir.Conv2d(weight=_arr(rng, 4, 2, 3, 3), bias=_arr(rng, 4), stride=(1, 1), padding=(1, 1),
                           dilation=(1, 1), groups=1),
         "bn": ir.BatchNorm2d(num_features=4, running_mean=_arr(rng, 4), running_var=np.ones(4, np.float32) * 2,
                              weight=_arr(rng, 4), bias=_arr(rng, 4)),
         "relu": ir.ReLU(), "pool": ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2)),
         "avg": ir.AvgPool2d(kernel_size=(1, 1), stride=(1, 1)),
         "flat": ir.Flatten(start_dim=0, end_dim=-1), "fc": ir.Affine(weight=_arr(rng, 3, 36), bias=_arr(rng, 3)),
         "soft": ir.Softmax(dim=1), "output": ir.Output(shape=(3,))},
        [("input", "conv"), ("conv", "bn"), ("bn", "relu"), ("relu", "pool"), ("pool", "avg"), ("avg", "flat"),
         ("flat", "fc"), ("fc", "soft"), ("soft", "output")],
    )
    routing = ir.Graph(
        {"input": ir.Input(shape=(6,)), "split": ir.ChannelSplit(split_sections=(2, 4)), "a": ir.Sigmoid(),
         "b": ir.Tanh(), "cat": ir.Concat(dim=1), "res": ir.Skip(skip_type="residual"),
         "fc": ir.Affine(weight=_arr(rng, 6, 6), bias=_arr(rng, 6)), "ln": ir.LayerNorm(
             normalized_shape=(6,), weight=np.ones(6, np.float32), bias=np.zeros(6, np.float32)),
         "gelu": ir.GELU(), "output": ir.Output(shape=(6,))},
        [("input", "split"), ("split", "a"), ("split", "b"), ("a", "cat"), ("b", "cat"), ("cat", "fc"),
         ("fc", "res"), ("input", "res"), ("res", "ln"), ("ln", "gelu"), ("gelu", "output")],
    )
    cyclic = ir.Graph(
        {"input": ir.Input(shape=(4,)), "fc": ir.Affine(weight=_arr(rng, 4, 4), bias=_arr(rng, 4)),
         "lif": _neuron(rng, ir.LIF, 4), "rec": ir.Affine(weight=_arr(rng, 4, 4), bias=_arr(rng, 4)),
         "output": ir.Output(shape=(4,))},
        [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "fc"), ("lif", "output")],
        allow_cycles=True,
    )
    names = ir.Graph(
        {"in.put": ir.Input(shape=(3,)), "layer.0/fc%": ir.Affine(weight=_arr(rng, 3, 3), bias=_arr(rng, 3),
                                                                  metadata={"k": {"deep": [1, 2], "s": "é"}}),
         "élu": ir.ELU(alpha=0.5), "drop": ir.Dropout(p=0.2), "out": ir.Output(shape=(3,))},
        [("in.put", "layer.0/fc%"), ("layer.0/fc%", "élu"), ("élu", "drop"), ("drop", "out")],
        metadata={"author": "fuzz", "nested": {"a": 1, "b": 2.5, "c": True, "d": None}},
    )
    return {"mlp": mlp, "conv": conv, "routing": routing, "cyclic": cyclic, "names": names}


def _t1c_bytes(graph: ir.Graph) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "seed.t1c")
        ir.write(path, graph)
        with open(path, "rb") as f:
            return f.read()


@functools.lru_cache(maxsize=None)
def t1c_files() -> tuple[tuple[str, bytes], ...]:
    """(name, file bytes) of every seed .t1c file."""
    return tuple((name, _t1c_bytes(g)) for name, g in graphs().items())


def _plain_models() -> dict[str, onnx.ModelProto]:
    """Standard-op models of the kinds exporters produce (opset 17)."""
    rng = np.random.default_rng(1)

    def init(name: str, *shape: int) -> TensorProto:
        return nh.from_array(_arr(rng, *shape), name)

    def model(nodes, inputs, outputs, inits, opset: int = 17) -> onnx.ModelProto:
        graph = h.make_graph(nodes, "seed", inputs, outputs, inits)
        return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], ir_version=9)

    f = TensorProto.FLOAT
    mlp = model(
        [h.make_node("Gemm", ["x", "w1", "b1"], ["h1"], name="fc1", transB=1), h.make_node("Relu", ["h1"], ["r1"]),
         h.make_node("MatMul", ["r1", "w2"], ["m2"], name="fc2"), h.make_node("Add", ["m2", "b2"], ["a2"]),
         h.make_node("Sigmoid", ["a2"], ["y"])],
        [h.make_tensor_value_info("x", f, ["N", 5])], [h.make_tensor_value_info("y", f, ["N", 3])],
        [init("w1", 4, 5), init("b1", 4), init("w2", 4, 3), init("b2", 3)],
    )
    conv = model(
        [h.make_node("Conv", ["x", "cw", "cb"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[1, 1]),
         h.make_node("BatchNormalization", ["c", "g", "be", "mu", "var"], ["bn"], name="bn", epsilon=1e-5),
         h.make_node("Relu", ["bn"], ["r"]),
         h.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
         h.make_node("Flatten", ["p"], ["fl"], axis=1),
         h.make_node("Gemm", ["fl", "fw", "fb"], ["y"], name="fc", transB=1)],
        [h.make_tensor_value_info("x", f, ["N", 2, 4, 4])], [h.make_tensor_value_info("y", f, ["N", 3])],
        [init("cw", 3, 2, 3, 3), init("cb", 3), init("g", 3), init("be", 3), init("mu", 3),
         nh.from_array(np.ones(3, np.float32), "var"), init("fw", 3, 12), init("fb", 3)],
    )
    routing = model(
        [h.make_node("Split", ["x", "sizes"], ["s0", "s1"], axis=1), h.make_node("Tanh", ["s0"], ["t0"]),
         h.make_node("LeakyRelu", ["s1"], ["t1"], alpha=0.1), h.make_node("Concat", ["t0", "t1"], ["cat"], axis=1),
         h.make_node("Add", ["cat", "x"], ["sum"]), h.make_node("Softmax", ["sum"], ["y"], axis=-1)],
        [h.make_tensor_value_info("x", f, ["N", 6])], [h.make_tensor_value_info("y", f, ["N", 6])],
        [nh.from_array(np.array([2, 4], np.int64), "sizes")],
    )
    return {"mlp": mlp, "conv": conv, "routing": routing}


@functools.lru_cache(maxsize=None)
def onnx_models() -> tuple[tuple[str, bytes], ...]:
    """(name, serialized ModelProto) of every seed ONNX model: standard ops, and talon ops from ir_to_onnx."""
    models = _plain_models()
    for name, graph in graphs().items():
        if not graph.is_cyclic:
            models[f"talon_{name}"] = ir_to_onnx(graph)
    return tuple((name, m.SerializeToString()) for name, m in models.items())


def check_seeds() -> None:
    """Every seed is valid: .t1c files read back, ONNX models pass the full checker (run by the tests)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in t1c_files():
            path = os.path.join(tmp, f"{name}.t1c")
            with open(path, "wb") as f:
                f.write(data)
            ir.read(path)
    for name, data in onnx_models():
        onnx.checker.check_model(onnx.load_model_from_string(data), full_check=True)
