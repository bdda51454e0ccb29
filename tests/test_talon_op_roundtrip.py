"""Every talon op through the importers (not the metadata restore path): IR -> ir_to_onnx -> metadata stripped ->
onnx_to_ir gives back the same IR node, and onnxruntime computes the same numbers from both models, over steps."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import onnx_ops
from converters import ir_to_onnx, onnx_to_ir
from onnx_ops import OrtExecutor
from talon import ir

RNG = np.random.default_rng(7)


def _f32(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, shape).astype(np.float32)


def _chain(node: ir.Node, shape: tuple[int, ...]) -> ir.Graph:
    out = node.output_shapes([shape])[0]
    return ir.Graph({"input": ir.Input(shape=np.array(shape)), "op": node, "output": ir.Output(shape=np.array(out))},
                    [("input", "op"), ("op", "output")])


def _split_graph() -> ir.Graph:
    nodes = {"input": ir.Input(shape=np.array([5, 2])), "op": ir.ChannelSplit(split_sections=(2, 3), dim=1),
             "a": ir.Output(shape=np.array([2, 2])), "b": ir.Output(shape=np.array([3, 2]))}
    return ir.Graph(nodes, [("input", "op"), ("op", "a"), ("op", "b")])


def _p(n=4, low=0.2, high=1.0):
    return _f32(n, low=low, high=high)


CASES = {
    "LIF": lambda: _chain(ir.LIF(tau=_p(low=1.5, high=5), r=_p(), v_leak=_p(low=-0.1, high=0.1),
                                 v_threshold=_p(low=0.2, high=0.6)), (4,)),
    "IF": lambda: _chain(ir.IF(r=_p(), v_threshold=_p(low=0.2, high=0.6)), (4,)),
    "LIF subtract": lambda: _chain(ir.LIF(tau=_p(low=1.5, high=5), r=_p(), v_leak=_p(low=-0.1, high=0.1),
                                          v_threshold=_p(low=0.2, high=0.6), reset_mode="subtract"), (4,)),
    "IF subtract": lambda: _chain(ir.IF(r=_p(), v_threshold=_p(low=0.2, high=0.6), reset_mode="subtract"), (4,)),
    "LI": lambda: _chain(ir.LI(tau=_p(low=1.5, high=5), r=_p(), v_leak=_p(low=-0.1, high=0.1)), (4,)),
    "Integrator": lambda: _chain(ir.Integrator(r=_p()), (4,)),
    "CubaLIF": lambda: _chain(ir.CubaLIF(tau_syn=_p(low=1.5, high=4), tau_mem=_p(low=1.5, high=5), r=_p(),
                                         v_leak=_p(low=-0.1, high=0.1), v_threshold=_p(low=0.1, high=0.4),
                                         w_in=_p(low=0.5, high=2)), (4,)),
    "Threshold": lambda: _chain(ir.Threshold(threshold=_p(low=-0.2, high=0.2)), (4,)),
    "SpikingAffine": lambda: _chain(ir.SpikingAffine(weight=_f32(3, 5), bias=_f32(3), spike_mode="graded",
                                                     weight_bits=4, accumulator_bits=12), (5,)),
    "ChannelSplit": _split_graph,
    "SepConv2d": lambda: _chain(ir.SepConv2d(depthwise_weight=_f32(3, 1, 3, 3), pointwise_weight=_f32(4, 3, 1, 1),
                                             depthwise_bias=_f32(3), pointwise_bias=_f32(4), stride=(2, 1),
                                             padding=(1, 0), dilation=(1, 2)), (3, 7, 8)),
    "SumPool2d": lambda: _chain(ir.SumPool2d(kernel_size=(2, 3), stride=(2, 1), padding=(1, 1)), (2, 6, 5)),
    "HybridRegion": lambda: _chain(ir.HybridRegion(mode="ann", name="region0", features=4), (4,)),
}


def _strip(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model without any talon metadata, as another tool would write it."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    model.ClearField("metadata_props")
    for proto in [*model.graph.node, *model.graph.input, *model.graph.output]:
        proto.ClearField("metadata_props")
    return model


def test_every_talon_op_the_package_declares_has_a_case() -> None:
    builtin = {s.name for s in onnx_ops.op_specs() if s.body.__module__.startswith("onnx_ops.")}
    assert {case.split()[0] for case in CASES} == builtin


@pytest.mark.parametrize("op", sorted(CASES))
def test_talon_op_round_trips_through_the_importers(op: str) -> None:
    graph = CASES[op]()
    model = _strip(ir_to_onnx(graph))
    assert [n.op_type for n in model.graph.node if n.domain == "talon"] == [op.split()[0]]
    back = onnx_to_ir(model, spiking=True)
    assert back.nodes["op"] == graph.nodes["op"]
    assert sorted(back.edges) == sorted(graph.edges)
    first, again = OrtExecutor(model, return_state=True), OrtExecutor(ir_to_onnx(back), return_state=True)
    assert first.state_nodes.keys() == again.state_nodes.keys()
    shape = tuple(int(d) for d in graph.nodes["input"].shape)
    s1 = s2 = None
    for _ in range(4):
        x = RNG.uniform(-1, 2, (2, *shape)).astype(np.float32)
        (o1, s1), (o2, s2) = first(x, s1), again(x, s2)
        o1, o2 = (o if isinstance(o, dict) else {"": o} for o in (o1, o2))
        assert o1.keys() == o2.keys()
        for key in o1:
            np.testing.assert_array_equal(o1[key], o2[key])
        for key in s1:
            for a, b in zip(s1[key], s2[key]):
                np.testing.assert_array_equal(a, b)
