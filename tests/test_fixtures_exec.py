"""The established toolchain's four fixtures: our executor reproduces their stored outputs and LIF membranes
at every timestep (atol from MANIFEST.json, BLAS summation order aside; spikes exactly)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import fixture_manifest
from talon import bridge, ir

ENTRIES = fixture_manifest()


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_fixture_outputs_and_membranes_over_all_timesteps(entry, fixtures_dir):
    data = np.load(fixtures_dir / entry["npz"])
    graph = ir.read(fixtures_dir / entry["file"])
    ex = bridge.ir_to_torch(graph, return_state=True)
    assert sorted(ex.state_names) == sorted(entry["state_keys"])
    inputs = torch.tensor(data["inputs"])
    assert inputs.shape[0] == entry["timesteps"]
    state: dict = {}
    outputs, membranes = [], {k: [] for k in entry["state_keys"]}
    with torch.no_grad():
        for x in inputs:
            out, state = ex(x, state if entry["return_state"] else {})
            outputs.append(out.numpy())
            for k in membranes:
                membranes[k].append(state[k][0].numpy())
        sequence, _ = ex.run_sequence(inputs)
    got = np.stack(outputs)
    np.testing.assert_allclose(got, data["outputs"], atol=entry["atol"], rtol=entry["rtol"])
    assert np.array_equal(sequence.numpy(), got)
    if entry["stateful"]:
        assert np.array_equal(got, data["outputs"])  # spikes exactly
        assert int(got.sum()) == entry["output_spike_count"]
        for k, mems in membranes.items():
            np.testing.assert_allclose(np.stack(mems), data[f"state__{k}"], atol=entry["atol"], rtol=0)
