"""The refusal list: one UnsupportedOperatorError naming every unsupported node (op, name, opset) with a hint."""

import pytest
from onnx import helper

from converters import UnsupportedOperatorError, onnx_to_ir
from converters.errors import ConversionError
from onnx_import_helpers import model, rand


def test_every_unsupported_node_is_listed_at_once():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="ok"),
             helper.make_node("Cos", ["r"], ["c"], name="cosine"),
             helper.make_node("Mul", ["c", "r"], ["m"], name="scale"),
             helper.make_node("Gemm", ["m", "W"], ["y"], transA=1, name="gemm_ta")]
    m = model(nodes, [4, 4], inits={"W": rand(4, 3)}, opset=13)
    with pytest.raises(UnsupportedOperatorError) as info:
        onnx_to_ir(m)
    err = info.value
    assert [(n.op_type, n.name, n.opset) for n in err.nodes] == [("Cos", "cosine", 13), ("Mul", "scale", 13), ("Gemm", "gemm_ta", 13)]
    text = str(err)
    assert "3 ONNX node(s)" in text and "'cosine'" in text and "transA" in text and "Hint:" in text


@pytest.mark.parametrize("nodes,inits,shape,match", [
    ([helper.make_node("Add", ["x", "k"], ["y"], name="addk")], {"k": rand(3)}, [2, 3], "constant"),
    ([helper.make_node("Conv", ["x", "W"], ["y"], name="c3d")], {"W": rand(2, 2, 1, 1, 1)}, [1, 2, 3, 3, 3], "3-D"),
    ([helper.make_node("Softmax", ["x"], ["y"], axis=0, name="sm0")], {}, [2, 3], "batch axis"),
    ([helper.make_node("Transpose", ["x"], ["y"], name="tr")], {}, [2, 3], "no TALON IR primitive"),
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
