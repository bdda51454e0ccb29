"""The refusal list: one UnsupportedOperatorError naming every unsupported node (op, name, opset) with a hint."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from converters import UnsupportedOperatorError, ir_to_onnx, onnx_to_ir
from converters.errors import ConversionError
from onnx_import_helpers import model, rand
from talon import ir


def test_every_unsupported_node_is_listed_at_once():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="ok"),
             helper.make_node("Cos", ["r"], ["c"], name="cosine"),
             helper.make_node("Div", ["c", "r"], ["m"], name="scale"),
             helper.make_node("Gemm", ["m", "W"], ["y"], transA=1, name="gemm_ta")]
    m = model(nodes, [4, 4], inits={"W": rand(4, 3)}, opset=13)
    with pytest.raises(UnsupportedOperatorError) as info:
        onnx_to_ir(m)
    err = info.value
    assert [(n.op_type, n.name, n.opset) for n in err.nodes] == [("Cos", "cosine", 13), ("Div", "scale", 13), ("Gemm", "gemm_ta", 13)]
    text = str(err)
    assert "3 ONNX node(s)" in text and "'cosine'" in text and "transA" in text and "Hint:" in text


@pytest.mark.parametrize("nodes,inits,shape,match", [
    ([helper.make_node("Add", ["x", "k"], ["y"], name="addk")], {"k": rand(2, 3)}, [2, 3], "batch"),
    ([helper.make_node("Conv", ["x", "W"], ["y"], name="c3d")], {"W": rand(2, 2, 1, 1, 1)}, [1, 2, 3, 3, 3], "3-D"),
    ([helper.make_node("Softmax", ["x"], ["y"], axis=0, name="sm0")], {}, [2, 3], "batch axis"),
    ([helper.make_node("Transpose", ["x"], ["y"], name="tr")], {}, [2, 3], "moves the batch dim"),
    ([helper.make_node("Concat", ["x", "k"], ["y"], axis=1, name="catk")], {"k": rand(2, 3)}, [2, 3], "constant"),
])
def test_single_refusals(nodes, inits, shape, match):
    with pytest.raises(UnsupportedOperatorError, match=match):
        onnx_to_ir(model(nodes, shape, inits=inits))


def test_dynamic_feature_dims_and_bad_files(tmp_path):
    with pytest.raises(ConversionError, match="static feature dims"):
        onnx_to_ir(model([helper.make_node("Relu", ["x"], ["y"])], ["N", "F"]))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConversionError, match="bad.onnx"):
        onnx_to_ir(bad)


# -- malformed models: refused with typed errors naming the node and the field (fuzzing findings) ---------------
def _reshape_without_shape():
    return model([helper.make_node("Reshape", ["x"], ["y"], name="rs")], [2, 3])


def _pad_with_2d_pads():
    return model([helper.make_node("Pad", ["x", "p"], ["y"], name="pad2d")], [1, 2, 3, 3],
                 inits={"p": np.zeros((2, 4), np.int64)})


def _old_pad_without_pads():
    return model([helper.make_node("Pad", ["x"], ["y"], name="pad_old")], [1, 2, 3, 3], opset=7)


def _int64_weight_in_float_data():
    w = TensorProto(name="w", data_type=TensorProto.INT64, dims=[3, 3])
    w.float_data.extend([1.0] * 9)
    m = model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [2, 3])
    m.graph.initializer.append(w)
    return m


def _attribute_as_tensor():
    node = helper.make_node("LeakyRelu", ["x"], ["y"], name="lrelu")
    node.attribute.append(helper.make_attribute("alpha", numpy_helper.from_array(np.ones(2, np.float32))))
    return model([node], [2, 3])


def _unknown_opset():
    return model([helper.make_node("Relu", ["x"], ["y"])], [2, 3], opset=0)


@pytest.mark.parametrize("make,error,match", [
    (_reshape_without_shape, UnsupportedOperatorError, "'rs'.*has 1 inputs, its schema takes 2"),
    (_pad_with_2d_pads, ConversionError, "pad2d.*'pads' input must be a 1D"),
    (_old_pad_without_pads, UnsupportedOperatorError, "'pad_old'.*required attribute 'pads'"),
    (_int64_weight_in_float_data, ConversionError, "'w'.*cannot be read"),
    (_attribute_as_tensor, UnsupportedOperatorError, "'lrelu'.*'alpha' must be of type FLOAT, got TENSOR"),
    (_unknown_opset, ConversionError, "opset conversion"),
], ids=lambda v: getattr(v, "__name__", "")[1:] if callable(v) else None)
def test_malformed_models_are_refused_naming_what_is_wrong(make, error, match):
    with pytest.raises(error, match=match):
        onnx_to_ir(make())


def _talon_export_with(node_prop: str, value: str):
    graph = ir.Graph({"input": ir.Input((3,)), "relu": ir.ReLU(), "output": ir.Output((3,))},
                     [("input", "relu"), ("relu", "output")])
    m = ir_to_onnx(graph)
    node = next(n for n in m.graph.node if any(p.key == "talon.primitive" for p in n.metadata_props))
    prop = next((p for p in node.metadata_props if p.key == node_prop), None) or node.metadata_props.add(key=node_prop)
    prop.value = value
    return m, node.name


@pytest.mark.parametrize("prop,value", [("talon.params", "{"), ("talon.params", "[1]"),
                                        ("talon.metadata", '{"__array__": [1], "dtype": "bogus", "shape": [1]}'),
                                        ("talon.arrays", '{"weight": "missing"}')])
def test_corrupt_talon_node_properties_are_refused_naming_node_and_field(prop, value):
    m, name = _talon_export_with(prop, value)
    with pytest.raises(ConversionError, match=f"node {name!r}: talon\\.(params|metadata|arrays)"):
        onnx_to_ir(m)
