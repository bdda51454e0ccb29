"""LIF and IF reset modes ('zero', 'subtract') through the IR, torch, onnxruntime, .t1c, ONNX and NIR."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from converters import ConversionError, ir_to_onnx, onnx_to_ir
from onnx_ops.executor import OrtExecutor
from onnx_ops.errors import OrtModelError
from talon import ir
from talon.bridge import GraphExecutor, IFModule
from talon.ir.errors import PrimitiveError, TalonFormatError


def _if_loop(xs: np.ndarray, threshold: float, subtract: bool, membrane: bool = False):
    """Independent numpy IF: v += x; spike where v >= threshold; v -= threshold (or v = 0) where spiked.
    The spikes [T, ...], and with `membrane` the final membrane too."""
    v = np.zeros(xs.shape[1:], np.float32)
    out = []
    for x in xs:
        v = (v + x).astype(np.float32)
        s = v >= np.float32(threshold)
        v = np.where(s, v - np.float32(threshold) if subtract else np.float32(0), v).astype(np.float32)
        out.append(s.astype(np.float32))
    return (np.stack(out), v) if membrane else np.stack(out)


def _neuron_graph(neuron: ir.Node, n: int) -> ir.Graph:
    return ir.Graph({"input": ir.Input(shape=(n,)), "neuron": neuron, "output": ir.Output(shape=(n,))},
                    [("input", "neuron"), ("neuron", "output")])


def _if(n: int, threshold: float, mode: str) -> ir.IF:
    return ir.IF(r=np.ones(n, np.float32), v_threshold=np.full(n, threshold, np.float32), reset_mode=mode)


@pytest.mark.parametrize("mode", ["zero", "subtract"])
def test_if_matches_a_numpy_loop_on_torch_and_onnxruntime_ties_included(mode: str) -> None:
    rng = np.random.default_rng(3)
    # multiples of 1/8 with threshold 0.5: the membrane lands exactly on the threshold often (ties spike)
    xs = (rng.integers(-2, 6, size=(40, 2, 6)) / 8).astype(np.float32)
    expected, membrane = _if_loop(xs, 0.5, mode == "subtract", membrane=True)
    graph = _neuron_graph(_if(6, 0.5, mode), 6)
    with torch.no_grad():
        torch_spikes, torch_state = GraphExecutor(graph, return_state=True).run_sequence(torch.from_numpy(xs))
    ort_spikes, ort_state = OrtExecutor(ir_to_onnx(graph), return_state=True).run_sequence(xs)
    np.testing.assert_array_equal(torch_state["neuron"][0].numpy(), membrane)
    np.testing.assert_array_equal(ort_state["neuron"][0], membrane)
    torch_spikes = torch_spikes.numpy()
    ties = 0
    v = np.zeros((2, 6), np.float32)
    for x, s in zip(xs, expected):  # count the exact ties the data produced
        v = v + x
        ties += int(np.sum(v == 0.5))
        v = np.where(s > 0, v - 0.5 if mode == "subtract" else 0, v)
    assert ties > 5
    np.testing.assert_array_equal(torch_spikes, expected)
    np.testing.assert_array_equal(ort_spikes, expected)


def test_subtract_differs_from_zero_reset_where_a_residue_remains() -> None:
    xs = np.full((4, 1, 1), 0.75, np.float32)  # subtract: v 0.75, 1.5 (spike), 1.25 (spike), 1.0 (tie: spike)
    assert _if_loop(xs, 1.0, True)[:, 0, 0].tolist() == [0, 1, 1, 1]
    graph = _neuron_graph(_if(1, 1.0, "subtract"), 1)
    with torch.no_grad():
        assert GraphExecutor(graph).run_sequence(torch.from_numpy(xs))[:, 0, 0].tolist() == [0, 1, 1, 1]
    zero = _neuron_graph(_if(1, 1.0, "zero"), 1)
    with torch.no_grad():
        assert GraphExecutor(zero).run_sequence(torch.from_numpy(xs))[:, 0, 0].tolist() == [0, 1, 0, 1]


def test_lif_subtract_on_torch_and_onnxruntime_matches_a_numpy_loop() -> None:
    rng = np.random.default_rng(5)
    xs = rng.uniform(-0.5, 2.0, size=(30, 3, 4)).astype(np.float32)
    tau, thr = np.float32(4.0), np.float32(0.6)
    lif = ir.LIF(tau=np.full(4, tau), r=np.ones(4, np.float32), v_leak=np.zeros(4, np.float32),
                 v_threshold=np.full(4, thr), reset_mode="subtract")
    beta = np.float32(1) - np.float32(1) / tau
    v, expected = np.zeros((3, 4), np.float32), []
    for x in xs:
        v = (beta * v + (np.float32(1) - beta) * (np.float32(0) + np.float32(1) * x)).astype(np.float32)
        s = v >= thr
        v = np.where(s, v - thr, v).astype(np.float32)
        expected.append(s.astype(np.float32))
    graph = _neuron_graph(lif, 4)
    with torch.no_grad():
        spikes, state = GraphExecutor(graph, return_state=True).run_sequence(torch.from_numpy(xs))
    np.testing.assert_array_equal(spikes.numpy(), expected)
    np.testing.assert_array_equal(state["neuron"][0].numpy(), v)
    spikes, state = OrtExecutor(ir_to_onnx(graph), return_state=True).run_sequence(xs)
    np.testing.assert_array_equal(spikes, expected)
    np.testing.assert_array_equal(state["neuron"][0], v)


def test_if_rate_under_constant_input_converges_to_the_relu_value() -> None:
    values = np.array([-0.3, 0.0, 0.1, 0.37, 0.6, 0.999, 1.4], np.float32)
    relu = np.clip(values, 0, 1)  # threshold 1, r = 1: one spike per step at most
    graph = _neuron_graph(_if(len(values), 1.0, "subtract"), len(values))
    zero = _neuron_graph(_if(len(values), 1.0, "zero"), len(values))
    errors = []
    for steps in (10, 100, 1000):
        xs = np.broadcast_to(values, (steps, 1, len(values))).copy()
        with torch.no_grad():
            rate = GraphExecutor(graph).run_sequence(torch.from_numpy(xs)).numpy().mean(0)[0]
            zero_rate = GraphExecutor(zero).run_sequence(torch.from_numpy(xs)).numpy().mean(0)[0]
        assert np.all(np.abs(rate - relu) <= 1.0 / steps + 1e-6), (steps, rate)
        errors.append(np.abs(zero_rate - relu).max())
    assert min(errors) > 0.05  # reset to zero loses the residue: 0.6 fires every 2nd step (0.5), never 0.6


def test_bad_reset_modes_are_refused_naming_the_field() -> None:
    with pytest.raises(PrimitiveError, match="reset_mode"):
        _if(2, 1.0, "none")
    with pytest.raises(ValueError, match="reset_mode must be one of"):
        IFModule(torch.ones(2), torch.ones(2), reset_mode="half")
    model = ir_to_onnx(_neuron_graph(_if(2, 1.0, "subtract"), 2))
    model.ClearField("metadata_props")
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name == "reset_mode":
                attr.s = b"half"
    with pytest.raises(ConversionError, match="reset_mode 'half'"):
        onnx_to_ir(model)
    with pytest.raises(OrtModelError, match="reset_mode must be 'zero' or 'subtract', got 'half'"):
        OrtExecutor(model)


@pytest.mark.parametrize("restore", [True, False])
def test_onnx_carries_the_reset_mode_both_ways(restore: bool) -> None:
    graph = ir.Graph({"input": ir.Input(shape=(3,)), "a": _if(3, 0.5, "subtract"),
                      "b": ir.LIF(tau=np.full(3, 2, np.float32), r=np.ones(3, np.float32),
                                  v_leak=np.zeros(3, np.float32), v_threshold=np.ones(3, np.float32),
                                  reset_mode="subtract"),
                      "c": _if(3, 0.5, "zero"), "output": ir.Output(shape=(3,))},
                     [("input", "a"), ("a", "b"), ("b", "c"), ("c", "output")])
    model = ir_to_onnx(graph)
    attrs = {n.name: {a.name: a.s.decode() for a in n.attribute} for n in model.graph.node if n.domain == "talon"}
    assert attrs == {"a": {"reset_mode": "subtract"}, "b": {"reset_mode": "subtract"}, "c": {"reset_mode": "zero"}}  # attach_functions writes defaults out
    if not restore:
        model.ClearField("metadata_props")
    back = onnx_to_ir(model)
    assert [back.nodes[n].reset_mode for n in "abc"] == ["subtract", "subtract", "zero"]


def test_t1c_stores_subtract_neurons_under_their_own_type_and_default_ones_as_before(tmp_path) -> None:
    lif = dict(tau=np.full(3, 2, np.float32), r=np.ones(3, np.float32), v_leak=np.zeros(3, np.float32),
               v_threshold=np.ones(3, np.float32))
    graph = ir.Graph({"input": ir.Input(shape=(3,)), "a": _if(3, 0.5, "subtract"),
                      "b": ir.LIF(**lif, reset_mode="subtract"), "c": _if(3, 0.5, "zero"), "d": ir.LIF(**lif),
                      "output": ir.Output(shape=(3,))},
                     [("input", "a"), ("a", "b"), ("b", "c"), ("c", "d"), ("d", "output")])
    path = tmp_path / "m.t1c"
    ir.write(path, graph)
    with h5py.File(path) as f:
        nodes = f["graph/nodes"]
        stored = {n: (nodes[n]["type"][()].decode(), sorted(nodes[n])) for n in "abcd"}
    assert stored == {
        "a": ("IFSubtract", ["r", "type", "v_threshold"]),
        "b": ("LIFSubtract", ["r", "tau", "type", "v_leak", "v_threshold"]),
        "c": ("IF", ["r", "type", "v_threshold"]),  # the established layout: no reset_mode dataset
        "d": ("LIF", ["r", "tau", "type", "v_leak", "v_threshold"]),
    }
    assert ir.read(path) == graph


def test_t1c_refuses_a_reset_mode_dataset_that_contradicts_the_type(tmp_path) -> None:
    path = tmp_path / "m.t1c"
    ir.write(path, _neuron_graph(_if(2, 1.0, "zero"), 2))
    with h5py.File(path, "r+") as f:
        f["graph/nodes/neuron"].create_dataset("reset_mode", data="subtract")
    with pytest.raises(TalonFormatError, match="type 'IF' implies reset_mode = 'zero'"):
        ir.read(path)


def test_nir_export_warns_or_refuses_subtract_reset_and_round_trips_it() -> None:
    from converters.nir import ir_to_nir, nir_to_ir
    from converters.nir.common import NIRConversionWarning

    graph = _neuron_graph(_if(2, 1.0, "subtract"), 2)
    with pytest.raises(ConversionError, match=r"\['neuron'\] reset by subtraction.*strict=True"):
        ir_to_nir(graph, dt=1e-3, strict=True)
    with pytest.warns(NIRConversionWarning, match="reset by subtraction"):
        nir_graph = ir_to_nir(graph, dt=1e-3)
    assert nir_to_ir(nir_graph, dt=1e-3).nodes["neuron"].reset_mode == "subtract"
