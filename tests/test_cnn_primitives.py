"""The CNN-family primitives: each one's torch module against plain torch, its .t1c round trip, its ir_to_onnx
form in onnxruntime and the exact restore of that form, and the typed refusal of bad fields."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from converters import ir_to_onnx, onnx_to_ir
from talon import bridge, ir
from talon.ir.errors import PrimitiveError

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
B = RNG.standard_normal(6).astype(np.float32)
C1 = RNG.standard_normal((4, 1, 1)).astype(np.float32)


def _reference(name: str, x: torch.Tensor) -> torch.Tensor:
    """Plain torch for each case (independent of the bridge modules)."""
    return {
        "hard_sigmoid": lambda: torch.clamp(0.2 * x + 0.5, 0, 1),
        "hard_swish": lambda: F.hardswish(x),
        "silu": lambda: x * torch.sigmoid(x),
        "bias": lambda: x + torch.from_numpy(C1),
        "permute": lambda: x.permute(0, 2, 3, 1),
        "shuffle": lambda: x.view(x.shape[0], 2, 2, 5, 6).transpose(1, 2).reshape(x.shape),
        "slice": lambda: x[:, 1:4:2],
        "conv_transpose": lambda: F.conv_transpose2d(x, torch.from_numpy(W), torch.from_numpy(B), stride=2, padding=1,
                                                     output_padding=1, groups=2),
        "multiply": lambda: torch.sigmoid(x) * x,
        "subtract": lambda: torch.sigmoid(x) - x,
    }[name]()


SINGLE = {
    "hard_sigmoid": ir.HardSigmoid(alpha=0.2, beta=0.5),
    "hard_swish": ir.HardSwish(),
    "silu": ir.SiLU(),
    "bias": ir.Bias(bias=C1),
    "permute": ir.Permute(dims=(0, 2, 3, 1)),
    "shuffle": ir.ChannelShuffle(groups=2),
    "slice": ir.Slice(dim=1, start=1, end=4, step=2),
    "conv_transpose": ir.ConvTranspose2d(weight=W, bias=B, stride=2, padding=1, output_padding=1, groups=2),
}
SHAPE = (4, 5, 6)


def _graph(case: str) -> ir.Graph:
    nodes = {"input": ir.Input(shape=SHAPE)}
    if case in SINGLE:
        nodes["node"], edges = SINGLE[case], [("input", "node")]
    else:  # merges: the gate first, the activation second (edge order)
        nodes["gate"] = ir.Sigmoid()
        nodes["node"] = ir.Multiply() if case == "multiply" else ir.Subtract()
        edges = [("input", "gate"), ("gate", "node"), ("input", "node")]
    shape = ir.Graph({**nodes, "output": ir.Output(shape=(1,))}, edges + [("node", "output")]).infer_shapes()["node"]
    nodes["output"] = ir.Output(shape=shape)
    return ir.Graph(nodes, edges + [("node", "output")])


@pytest.mark.parametrize("case", [*SINGLE, "multiply", "subtract"])
def test_module_t1c_and_onnx_forms_agree_with_plain_torch(case, tmp_path):
    graph = _graph(case)
    x = torch.from_numpy(RNG.standard_normal((2, *SHAPE)).astype(np.float32) * 4)
    want = _reference(case, x).numpy()
    with torch.no_grad():
        got = bridge.ir_to_torch(graph)(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    ir.write(tmp_path / "g.t1c", graph)
    assert ir.read(tmp_path / "g.t1c") == graph
    proto = ir_to_onnx(graph)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0], want, rtol=1e-5, atol=1e-5)
    assert onnx_to_ir(proto) == graph


@pytest.mark.parametrize("make,field", [
    (lambda: ir.Permute(dims=(1, 0, 2)), "dims"),
    (lambda: ir.Permute(dims=(0, 1, 1)), "dims"),
    (lambda: ir.Slice(dim=0, start=0, end=1), "dim"),
    (lambda: ir.Slice(dim=1, start=0, end=2, step=0), "step"),
    (lambda: ir.ChannelShuffle(groups=0), "groups"),
    (lambda: ir.ConvTranspose2d(weight=W, stride=2, output_padding=2), "output_padding"),
    (lambda: ir.ConvTranspose2d(weight=W, groups=3), "groups"),
])
def test_bad_fields_are_refused_naming_the_field(make, field):
    with pytest.raises(PrimitiveError, match=field):
        make()


@pytest.mark.parametrize("node,shapes,match", [
    (ir.Bias(bias=np.ones((2, 4, 1, 1), np.float32)), [(4, 5, 6)], "enlarge"),
    (ir.Subtract(), [(4, 5, 6)] * 3, "exactly two"),
    (ir.Multiply(), [(4, 5, 6), (3, 1, 1)], "broadcast"),
    (ir.ChannelShuffle(groups=3), [(4, 5, 6)], "divide"),
    (ir.Slice(dim=2, start=7, end=9), [(4, 5, 6)], "empty"),
    (ir.Permute(dims=(0, 2, 1)), [(4, 5, 6)], "permutes 3 dims"),
])
def test_shapes_that_do_not_fit_are_refused(node, shapes, match):
    with pytest.raises(PrimitiveError, match=match):
        node.output_shapes(shapes)
