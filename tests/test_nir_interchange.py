"""NIR interchange details: files old readers can read (no zero v_reset), Rockpool's leading-1 inputs, an Affine
self-loop as a one-node cycle, and the dt an import keeps for the next export."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from converters import ConversionError
from converters.nir import ir_to_nir, nir_to_ir, save_nir
from talon import bridge, ir
from talon.cli import cli

nir = pytest.importorskip("nir")

# Fields nir 1.0.4 and 1.0.5 pass to their node constructors (which have no v_reset), per neuron type
OLD_READER_FIELDS = {"LIF": {"type", "tau", "r", "v_leak", "v_threshold"}, "IF": {"type", "r", "v_threshold"},
                     "CubaLIF": {"type", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in"}}


def neurons_graph() -> ir.Graph:
    n = np.ones(3, np.float32)
    return ir.Graph({"input": ir.Input((3,)), "lif": ir.LIF(tau=2 * n, r=n, v_leak=0 * n, v_threshold=n),
                     "if": ir.IF(r=n, v_threshold=n),
                     "cuba": ir.CubaLIF(tau_syn=2 * n, tau_mem=3 * n, r=n, v_leak=0 * n, v_threshold=n, w_in=n),
                     "output": ir.Output((3,))},
                    [("input", "lif"), ("lif", "if"), ("if", "cuba"), ("cuba", "output")])


def test_saved_files_leave_zero_v_reset_out(tmp_path):
    save_nir(neurons_graph(), tmp_path / "n.nir", dt=1e-3)
    with h5py.File(tmp_path / "n.nir", "r") as f:
        for name in ("lif", "if", "cuba"):
            group = f[f"node/nodes/{name}"]
            kind = group["type"][()].decode()
            assert set(group) - {"metadata"} == OLD_READER_FIELDS[kind], (name, set(group))
    read = nir.read(tmp_path / "n.nir")  # today's reader fills in v_reset = 0
    np.testing.assert_array_equal(read.nodes["lif"].v_reset, np.zeros(3))
    assert without_dt(nir_to_ir(tmp_path / "n.nir", dt=1e-3)).equals(neurons_graph())


def without_dt(graph: ir.Graph) -> ir.Graph:
    graph.metadata.pop("nir.dt")
    return graph


def rockpool_like() -> object:
    """Input [1, 3] -> Affine -> LIF [1, 2] -> Output [1, 2], the leading 1 Rockpool writes."""
    w = np.array([[0.5, -0.25, 1.0], [0.75, 0.5, -0.5]], np.float32)
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([1, 3])}),
               "fc": nir.Affine(weight=w, bias=np.zeros(2, np.float32)),
               "lif": nir.LIF(tau=np.full((1, 2), 2e-3), r=np.ones((1, 2)), v_leak=np.zeros((1, 2)),
                              v_threshold=np.full((1, 2), 0.5)),
               "output": nir.Output(output_type={"output": np.array([1, 2])})},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)


def test_leading_one_inputs_round_trip(tmp_path):
    graph = nir_to_ir(rockpool_like(), dt=1e-3)
    assert graph.infer_shapes()["fc"] == (1, 2)
    again = nir_to_ir(ir_to_nir(graph), dt=1e-3)
    assert again.equals(graph), again.diff(graph)
    save_nir(graph, tmp_path / "r.nir")
    assert nir_to_ir(tmp_path / "r.nir", dt=1e-3).equals(graph)


def test_affine_with_a_real_second_dim_is_still_refused():
    graph = ir.Graph({"input": ir.Input((2, 3)), "fc": ir.Affine(np.ones((2, 3), np.float32)),
                      "output": ir.Output((2, 2))}, [("input", "fc"), ("fc", "output")])
    with pytest.raises(ConversionError, match=r"'fc' \(Affine\): input shape \(2, 3\)"):
        ir_to_nir(graph, dt=1.0)


def test_an_affine_self_loop_imports_as_a_one_node_cycle(tmp_path):
    w, b = np.array([[0.5, 0.25], [0.0, 0.5]], np.float32), np.array([1.0, -1.0], np.float32)
    source = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([2])}),
                                 "affine": nir.Affine(weight=w, bias=b),
                                 "out": nir.Output(output_type={"output": np.array([2])})},
                          edges=[("in", "affine"), ("affine", "affine"), ("affine", "out")], type_check=False)
    graph = nir_to_ir(source, dt=1.0)
    assert graph.allow_cycles and graph.back_edges() == [("affine", "affine")]
    xs = np.random.default_rng(0).standard_normal((5, 3, 2)).astype(np.float32)
    executor = bridge.CyclicGraphExecutor.from_graph(graph, timesteps=1, return_state=True)
    state, y = None, np.zeros((3, 2), np.float32)
    for x in xs:  # the self-loop delivers the previous step's output, added to the input
        out, state = executor(torch.from_numpy(x), state)
        y = (x + y) @ w.T + b
        np.testing.assert_allclose(out[0].detach().numpy(), y, rtol=1e-6, atol=1e-6)
    ir.write(tmp_path / "loop.t1c", graph)
    assert ir.read(tmp_path / "loop.t1c").equals(graph)
    with pytest.raises(ir.GraphError, match="self-loop"):
        ir.Graph(graph.nodes, graph.edges)  # without allow_cycles it stays refused


def test_imported_dt_is_reused_by_a_later_export(tmp_path):
    save_nir(neurons_graph(), tmp_path / "a.nir", dt=1e-3)
    runner = CliRunner()
    result = runner.invoke(cli, ["convert", str(tmp_path / "a.nir"), str(tmp_path / "a.t1c"), "--dt", "1e-3"])
    assert result.exit_code == 0, result.stderr
    assert ir.read(tmp_path / "a.t1c").metadata["nir.dt"] == 1e-3
    result = runner.invoke(cli, ["convert", str(tmp_path / "a.t1c"), str(tmp_path / "b.nir")])  # no --dt needed
    assert result.exit_code == 0, result.stderr
    a, b = nir.read(tmp_path / "a.nir"), nir.read(tmp_path / "b.nir")
    for name in ("lif", "cuba"):
        for field in ("tau",) if name == "lif" else ("tau_syn", "tau_mem"):
            np.testing.assert_array_equal(getattr(b.nodes[name], field), getattr(a.nodes[name], field))
    assert "nir.dt" not in b.metadata
    result = runner.invoke(cli, ["convert", str(tmp_path / "a.t1c"), str(tmp_path / "c.nir"), "--dt", "2e-3"])
    assert result.exit_code == 0  # an explicit --dt wins
    np.testing.assert_allclose(nir.read(tmp_path / "c.nir").nodes["lif"].tau, 2 * 2e-3, rtol=1e-12)


def test_export_without_any_dt_names_the_option():
    with pytest.raises(ConversionError, match=r"pass dt=.*metadata\['nir.dt'\]"):
        ir_to_nir(neurons_graph())
