"""Names an ONNX import keeps: the graph's input and output names (in metadata) and, for a Conv that onnxscript's
rewriter folded a BatchNorm into, the convolution's own module rather than the BatchNorm's."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from converters import onnx_to_ir


def folded_model() -> onnx.ModelProto:
    """What torch.onnx.export(dynamo=True) writes for conv -> bn -> flatten -> fc (checked with torch 2.13): the
    fused Conv carries the BatchNorm's scope and rule name, its weight keeps the name conv.weight."""
    rng = np.random.default_rng(0)
    conv = helper.make_node("Conv", ["img", "conv.weight", "conv.bias"], ["getitem"], name="node_Conv_12",
                            pads=[1, 1, 1, 1])
    for key, value in (("pkg.onnxscript.rewriter.rule_name", "FuseBatchNormIntoConv"),
                       ("pkg.torch.onnx.name_scopes", "['', 'bn', '_native_batch_norm_legit_no_training']")):
        conv.metadata_props.add(key=key, value=value)
    flat = helper.make_node("Flatten", ["getitem"], ["view"], name="node_view")
    flat.metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'view']")
    gemm = helper.make_node("Gemm", ["view", "fc.weight", "fc.bias"], ["logits"], name="node_linear", transB=1)
    gemm.metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'fc', 'linear']")
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("conv.weight", (2, 1, 3, 3)), ("conv.bias", (2,)), ("fc.weight", (3, 32)), ("fc.bias", (3,)))]
    graph = helper.make_graph([conv, flat, gemm], "main",
                              [helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_a_folded_conv_is_named_after_its_own_module():
    graph = onnx_to_ir(folded_model())
    assert list(graph.nodes) == ["input", "conv", "flatten", "fc", "output"]


def test_onnx_graph_input_and_output_names_stay_in_metadata():
    graph = onnx_to_ir(folded_model())
    assert graph.metadata["onnx.names"] == {"inputs": {"input": "img"}, "outputs": {"output": "logits"}}
