"""Mutations of ONNX models: opsets, IR version, graph wiring, attributes, initializers (dims, types,
contents, external data locations pointing outside the model's folder), value dims, op types, domains,
function bodies and model metadata. Each mutates a ModelProto in place."""

from __future__ import annotations

import os
import random

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto
from onnx import helper as h

from .rawbytes import mutate_bytes

CANARY = "fuzz_canary.bin"  # a file outside every case folder; the harness flags any open() of it
OP_TYPES = ["Gemm", "Conv", "Relu", "LIF", "IF", "Nope", "Loop", "If", "Scan", "Identity", "Reshape", "Resize",
            "MaxPool", "AveragePool", "Split", "Concat", "BatchNormalization", "Flatten", "Add", "MatMul", "Softmax",
            "Gelu", "Erf", "Constant", "ConstantOfShape", "Cast", "Transpose", "SpikingAffine", "ChannelSplit", "Pad"]
DOMAINS = ["", "ai.onnx", "talon", "com.microsoft", "ai.onnx.ml", "bogus", "pkg.onnxscript.torch_lib"]
INTS = [0, -1, 1, 2, 3, 2**31, 2**62, -(2**62), 7, 1000]
DIMS = [0, -1, 1, 2**31, 2**40, 5, 3]


def _nodes(model: onnx.ModelProto, with_functions: bool = True) -> list[onnx.NodeProto]:
    nodes = list(model.graph.node)
    if with_functions:
        nodes += [n for f in model.functions for n in f.node]
    return nodes


def _values(model: onnx.ModelProto) -> list[str]:
    g = model.graph
    names = [v.name for v in g.input] + [i.name for i in g.initializer]
    return names + [o for n in g.node for o in n.output] + ["", "ghost"]


def set_opset(rng: random.Random, model: onnx.ModelProto) -> None:
    if model.opset_import and rng.random() < 0.8:
        entry = rng.choice(model.opset_import)
        entry.version = rng.choice([1, 5, 6, 7, 9, 11, 13, 17, 19, 21, 22, 23, 25, 99, 0, -1, 2**40])
    elif model.opset_import:
        del model.opset_import[rng.randrange(len(model.opset_import))]


def set_ir_version(rng: random.Random, model: onnx.ModelProto) -> None:
    model.ir_version = rng.choice([0, 1, 3, 4, 7, 8, 9, 10, 11, 12, 99, -1])


def rewire(rng: random.Random, model: onnx.ModelProto) -> None:
    g = model.graph
    nodes = _nodes(model, with_functions=rng.random() < 0.2)
    op = rng.randrange(9)
    if not nodes:
        return
    node = rng.choice(nodes)
    if op == 0 and node.input:
        node.input[rng.randrange(len(node.input))] = rng.choice(_values(model))
    elif op == 1 and node.output:
        node.output[rng.randrange(len(node.output))] = rng.choice(_values(model))
    elif op == 2 and node.input and node.output:
        node.input[rng.randrange(len(node.input))] = node.output[0]  # a cycle through one node
    elif op == 3 and len(g.node):
        del g.node[rng.randrange(len(g.node))]
    elif op == 4 and len(g.node):
        g.node.append(g.node[rng.randrange(len(g.node))])
    elif op == 5:
        items = list(g.node)
        rng.shuffle(items)
        del g.node[:]
        g.node.extend(items)
    elif op == 6 and len(g.output):
        del g.output[rng.randrange(len(g.output))]
    elif op == 7 and len(g.input):
        del g.input[rng.randrange(len(g.input))]
    else:
        g.output.append(h.make_tensor_value_info(rng.choice(_values(model)), TensorProto.FLOAT, ["N", 3]))


def _attribute_value(rng: random.Random):
    return rng.choice([
        lambda: rng.choice(INTS), lambda: rng.choice([0.0, -1.0, float("nan"), float("inf"), 1e30]),
        lambda: rng.choice(["", "binary", "nearest", "x" * 1000]),
        lambda: [rng.choice(INTS) for _ in range(rng.randint(0, 6))],
        lambda: [0.5] * rng.randint(0, 4), lambda: h.make_tensor("t", TensorProto.FLOAT, [2], [1.0, 2.0]),
        lambda: h.make_graph([], "empty", [], []),
    ])()


def _attribute(name: str, value) -> AttributeProto:
    """An attribute of the value's type (an empty list is an empty INTS)."""
    return h.make_attribute(name, value, attr_type=AttributeProto.INTS if value == [] else None)


def mutate_attribute(rng: random.Random, model: onnx.ModelProto) -> None:
    nodes = _nodes(model)
    if not nodes:
        return
    node = rng.choice(nodes)
    op = rng.randrange(4)
    if node.attribute and op == 0:
        del node.attribute[rng.randrange(len(node.attribute))]
    elif node.attribute and op == 1:
        attr = node.attribute[rng.randrange(len(node.attribute))]
        attr.CopyFrom(_attribute(attr.name, _attribute_value(rng)))
    elif node.attribute and op == 2:
        attr = node.attribute[rng.randrange(len(node.attribute))]
        if attr.type == AttributeProto.INT:
            attr.i = rng.choice(INTS)
        elif attr.type == AttributeProto.INTS and attr.ints:
            attr.ints[rng.randrange(len(attr.ints))] = rng.choice(INTS)
        elif attr.type == AttributeProto.FLOAT:
            attr.f = rng.choice([0.0, -1.0, float("nan"), float("inf")])
        else:
            attr.type = rng.choice([AttributeProto.INT, AttributeProto.STRING, AttributeProto.UNDEFINED, 99])
    else:
        node.attribute.append(_attribute(rng.choice(["zz", "axis", "transB", "alpha", "kernel_shape"]),
                                         _attribute_value(rng)))


def _external(rng: random.Random, tensor: TensorProto, case_dir: str) -> None:
    """Point the tensor's data at a file: outside the folder (relative, absolute, via a link) or inside."""
    outside = os.path.join(os.path.dirname(case_dir), CANARY)
    choice = rng.randrange(6)
    if choice == 0:
        location = "../" + CANARY
    elif choice == 1:
        location = outside
    elif choice == 2:
        link = os.path.join(case_dir, "link.bin")
        if not os.path.lexists(link):
            os.symlink(outside, link)
        location = "link.bin"
    elif choice == 3:
        location = "sub/../../" + CANARY
    elif choice == 4:
        location = "missing.bin"
    else:
        location = "inside.bin"
        with open(os.path.join(case_dir, location), "wb") as f:
            f.write(np.arange(1024, dtype=np.float32).tobytes())
    tensor.ClearField("float_data")
    tensor.ClearField("int64_data")
    tensor.raw_data = b""
    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", str(rng.choice([0, 0, 4, 2**40]))),
                       ("length", str(rng.choice([0, 4, 16, 4096, 2**40])))):
        if key == "location" or rng.random() < 0.6:
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
    tensor.data_location = TensorProto.EXTERNAL


def mutate_initializer(rng: random.Random, model: onnx.ModelProto, case_dir: str) -> None:
    inits = list(model.graph.initializer)
    constants = [a.t for n in _nodes(model) for a in n.attribute if a.type == AttributeProto.TENSOR]
    tensors = inits + constants
    if not tensors:
        return
    t = rng.choice(tensors)
    op = rng.randrange(8)
    if op == 0:
        if t.dims and rng.random() < 0.5:
            t.dims[rng.randrange(len(t.dims))] = rng.choice(DIMS)
        elif t.dims and rng.random() < 0.5:
            del t.dims[rng.randrange(len(t.dims))]
        else:
            t.dims.append(rng.choice(DIMS))
    elif op == 1:
        t.data_type = rng.choice([0, TensorProto.INT64, TensorProto.DOUBLE, TensorProto.STRING, TensorProto.BFLOAT16,
                                  TensorProto.FLOAT16, TensorProto.BOOL, TensorProto.COMPLEX64, 999])
    elif op == 2 and t.raw_data:
        cut = rng.randrange(len(t.raw_data) + 8)
        t.raw_data = t.raw_data[:cut] if cut < len(t.raw_data) else t.raw_data + b"\0" * cut
    elif op == 3:
        t.ClearField("raw_data")
        t.float_data.extend([1.0] * rng.randint(0, 5))
    elif op == 4 and t.raw_data and t.data_type == TensorProto.FLOAT:
        arr = np.frombuffer(t.raw_data, np.float32).copy()
        arr[rng.randrange(arr.size)] = rng.choice([np.nan, np.inf, -np.inf, 1e38, 0.0])
        t.raw_data = arr.tobytes()
    elif op == 5 and t in inits:
        model.graph.initializer.remove(t)
    else:
        _external(rng, t, case_dir)


def mutate_dims(rng: random.Random, model: onnx.ModelProto) -> None:
    g = model.graph
    infos = list(g.input) + list(g.output) + list(g.value_info)
    if not infos:
        return
    info = rng.choice(infos)
    tt = info.type.tensor_type
    op = rng.randrange(4)
    if op == 0 and len(tt.shape.dim):
        d = tt.shape.dim[rng.randrange(len(tt.shape.dim))]
        if rng.random() < 0.7:
            d.dim_value = rng.choice(DIMS)
        else:
            d.dim_param = rng.choice(["N", "", "T", "a b"])
    elif op == 1:
        tt.ClearField("shape")
    elif op == 2:
        tt.elem_type = rng.choice([0, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.BOOL, TensorProto.STRING,
                                   TensorProto.FLOAT16, 99])
    else:
        tt.shape.dim.add().dim_value = rng.choice(DIMS)


def mutate_op(rng: random.Random, model: onnx.ModelProto) -> None:
    nodes = _nodes(model)
    if nodes:
        node = rng.choice(nodes)
        if rng.random() < 0.7:
            node.op_type = rng.choice(OP_TYPES)
        else:
            node.domain = rng.choice(DOMAINS)


def mutate_functions(rng: random.Random, model: onnx.ModelProto) -> None:
    if not model.functions:
        return
    f = model.functions[rng.randrange(len(model.functions))]
    op = rng.randrange(3)
    if op == 0:
        model.functions.remove(f)
    elif op == 1:
        f.domain = rng.choice(DOMAINS)
    elif f.node:
        del f.node[rng.randrange(len(f.node))]


def mutate_metadata(rng: random.Random, model: onnx.ModelProto) -> None:
    """Model properties (the talon.edges / talon.metadata JSON that restores an IR graph exactly)."""
    values = ['[["input", "fc"]]', "[", "null", "1e999", '{"a": ' * 50 + "1" + "}" * 50, "[" * 100000 + "]" * 100000,
              '[["ghost", "input"]]', '[["input"]]', '"x"', "", '[[1, 2]]', '[["input", "input"]]']
    props = list(model.metadata_props)
    if props and rng.random() < 0.8:
        rng.choice(props).value = rng.choice(values)
    else:
        h.set_model_props(model, {rng.choice(["talon.format", "talon.edges", "talon.metadata"]): rng.choice(values)})


MUTATIONS = [
    (set_opset, 2), (set_ir_version, 1), (rewire, 4), (mutate_attribute, 4), (mutate_initializer, 4), (mutate_dims, 3),
    (mutate_op, 2), (mutate_functions, 1), (mutate_metadata, 2),
]


def mutate_model(rng: random.Random, model: onnx.ModelProto, case_dir: str) -> None:
    """Apply 1 to 3 mutations to `model` in place; external data files go into `case_dir`."""
    funcs, weights = zip(*MUTATIONS)
    for _ in range(rng.randint(1, 3)):
        fn = rng.choices(funcs, weights)[0]
        if fn is mutate_initializer:
            fn(rng, model, case_dir)
        else:
            fn(rng, model)


def to_file(rng: random.Random, model: onnx.ModelProto, case_dir: str, corrupt: bool) -> str:
    """Serialize the model into case_dir/model.onnx, optionally with byte-level damage."""
    data = model.SerializeToString()
    if corrupt:
        data = mutate_bytes(rng, data)
    path = os.path.join(case_dir, "model.onnx")
    with open(path, "wb") as f:
        f.write(data)
    return path
