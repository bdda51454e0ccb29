"""snnTorch interchange: Leaky networks (reset to zero) run with identical spikes in TALON, what TALON cannot
express is refused by name, and NIR files written by snntorch.export_to_nir import and run with identical spikes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

snn = pytest.importorskip("snntorch", reason="snnTorch interchange tests need the optional 'snntorch' package")
from snntorch import utils as snn_utils  # noqa: E402

from converters.errors import ConversionError  # noqa: E402
from talon import bridge  # noqa: E402
from talon.bridge.snntorch_support import SnnTorchLeakyLIF, replace_snntorch_modules  # noqa: E402

STEPS = 50


def leaky_net(seed: int, beta1, beta2, threshold2, reset_delay: bool = True) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 12),
        snn.Leaky(beta=beta1, init_hidden=True, reset_mechanism="zero", reset_delay=reset_delay),
        torch.nn.Linear(12, 4),
        snn.Leaky(beta=beta2, threshold=threshold2, init_hidden=True, reset_mechanism="zero", reset_delay=reset_delay),
    ).eval()


def snntorch_spikes(net: torch.nn.Module, xs: torch.Tensor) -> torch.Tensor:
    """snnTorch's own simulation, one call per step from reset hidden state."""
    snn_utils.reset(net)
    with torch.no_grad():
        return torch.stack([net(x) for x in xs])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), beta=st.floats(0.0, 0.98), threshold=st.floats(0.1, 2.0),
       reset_delay=st.booleans())
def test_leaky_reset_to_zero_gives_identical_spikes_over_50_steps(seed, beta, threshold, reset_delay):
    net = leaky_net(seed, beta, torch.rand(4) * 0.99, threshold, reset_delay)
    xs = torch.rand(STEPS, 3, 8) * 2
    expected = snntorch_spikes(net, xs)
    talon_net = replace_snntorch_modules(net)
    assert [type(m) for m in talon_net if not isinstance(m, torch.nn.Linear)] == [SnnTorchLeakyLIF] * 2
    with torch.no_grad():
        got = torch.stack([talon_net(x) for x in xs])
    assert torch.equal(got, expected)


def test_leaky_without_hidden_state_keeps_its_call_convention():
    torch.manual_seed(1)
    lif = snn.Leaky(beta=torch.rand(6), threshold=0.3, reset_mechanism="zero")
    ours = replace_snntorch_modules(lif)
    xs = torch.rand(STEPS, 2, 6)
    mem, mine = lif.init_leaky(), lif.init_leaky()
    for x in xs:
        spk, mem = lif(x, mem)
        got, mine = ours(x, mine)
        assert torch.equal(got, spk)


def test_to_ir_exports_leaky_as_lif_and_the_executor_matches_snntorch():
    net = leaky_net(3, 0.85, torch.full((4,), 0.7), 0.5)
    xs = torch.rand(STEPS, 3, 8) * 2
    expected = snntorch_spikes(net, xs)
    assert 0 < expected.sum() < expected.numel()
    graph = bridge.to_ir(net, xs[0])
    assert sorted(type(n).__name__ for n in graph.nodes.values()) == ["Affine", "Affine", "Input", "LIF", "LIF", "Output"]
    with torch.no_grad():
        got = bridge.ir_to_torch(graph).run_sequence(xs)
    assert torch.equal(got, expected)


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (lambda: snn.Leaky(beta=0.9), r"'1': resets by subtraction \(reset_mechanism='subtract'"),
        (lambda: snn.Leaky(beta=0.9, reset_mechanism="none"), "reset_mechanism='none' has no TALON equivalent"),
        (lambda: snn.Leaky(beta=1.0, reset_mechanism="zero"), "beta = 1"),
        (lambda: snn.Leaky(beta=0.9, reset_mechanism="zero", graded_spikes_factor=2.0), "graded_spikes_factor"),
        (lambda: snn.Synaptic(alpha=0.8, beta=0.9, reset_mechanism="zero"), "snntorch.Synaptic '1' has no TALON"),
        (lambda: snn.RLeaky(beta=0.9, linear_features=4, reset_mechanism="zero"), "snntorch.RLeaky '1' has no TALON"),
    ],
)
def test_what_talon_cannot_express_is_refused_by_name(module, message):
    with pytest.raises(ConversionError, match=message):
        replace_snntorch_modules(torch.nn.Sequential(torch.nn.Linear(4, 4), module()))


def test_models_without_snntorch_neurons_are_returned_unchanged():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    assert replace_snntorch_modules(model) is model


def test_nir_files_from_snntorch_export_import_and_run_with_identical_spikes(tmp_path):
    pytest.importorskip("nirtorch", reason="snntorch.export_to_nir needs the optional 'nirtorch' package")
    nir = pytest.importorskip("nir")
    from snntorch.export_nir import export_to_nir

    from converters.nir import nir_to_ir

    # per-neuron beta and threshold: export_to_nir's type inference fails on scalar ones
    net = leaky_net(7, torch.rand(12) * 0.95, torch.rand(4) * 0.95, torch.full((4,), 0.6))
    net[1].threshold = torch.full((12,), 0.8)
    xs = torch.rand(STEPS, 3, 8) * 2
    expected = snntorch_spikes(net, xs)
    assert 0 < expected.sum() < expected.numel()
    with pytest.warns(DeprecationWarning):
        exported = export_to_nir(net, xs[0, :1], ignore_dims=[0])
    nir.write(tmp_path / "snntorch.nir", exported)
    graph = nir_to_ir(tmp_path / "snntorch.nir", dt=1e-4)  # snnTorch exports with dt = 1e-4
    with torch.no_grad():
        got = bridge.ir_to_torch(graph).run_sequence(xs)
    assert torch.equal(got, expected)
    np.testing.assert_allclose(graph.nodes["1"].tau, 1 / (1 - net[1].beta.numpy()), rtol=1e-5)


def test_recurrent_leaky_exported_by_snntorch_imports_as_a_cyclic_graph(tmp_path):
    """RLeaky's NIR (LIF with an Affine back into it) runs by NIR's semantics in the cyclic executor; snnTorch's
    own RLeaky resets differently (see talon.bridge.snntorch_support), so the reference is NIR's definition."""
    pytest.importorskip("nirtorch", reason="snntorch.export_to_nir needs the optional 'nirtorch' package")
    nir = pytest.importorskip("nir")
    from nir_reference import MARGIN, run_reference
    from snntorch.export_nir import export_to_nir

    from converters.nir import nir_to_ir

    torch.manual_seed(4)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), snn.RLeaky(beta=torch.full((6,), 0.8), threshold=torch.full((6,), 0.7),
                                                                 linear_features=6, init_hidden=True, output=False))
    with pytest.warns(DeprecationWarning):
        nir.write(tmp_path / "rleaky.nir", export_to_nir(net, torch.rand(1, 3), ignore_dims=[0]))
    graph = nir_to_ir(tmp_path / "rleaky.nir", dt=1e-4)
    assert graph.allow_cycles and len(graph.back_edges()) == 1
    (src, dst), = graph.back_edges()
    assert type(graph.nodes[src]).__name__ == "Affine" and type(graph.nodes[dst]).__name__ == "LIF"
    xs = np.random.default_rng(0).uniform(0, 1, (30, 2, 3))
    expected, margin = run_reference(nir.read(tmp_path / "rleaky.nir"), xs, 1e-4)
    assert margin > MARGIN and 0 < expected.sum() < expected.size
    ex, state, got = bridge.CyclicGraphExecutor.from_graph(graph, timesteps=1, return_state=True), None, []
    with torch.no_grad():
        for x in xs:
            out, state = ex(torch.from_numpy(x.astype(np.float32)), state)
            got.append(out[0].numpy())
    np.testing.assert_array_equal(np.stack(got), expected)
