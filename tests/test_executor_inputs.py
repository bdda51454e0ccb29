"""Bad and unusual inputs to GraphExecutor, CyclicGraphExecutor and OrtExecutor: clear errors or documented
behaviour, the same for the three, never a silent wrong answer.

Documented behaviour chosen here (as OrtExecutor already does): inputs and state of any real numeric or bool
dtype are cast to float32, the executors' dtype; complex and string inputs are refused with the executor's
input error. Wrong shapes are refused naming the input and its expected shape. NaN and Inf propagate through
the arithmetic, within their own batch item only. An empty batch gives empty outputs and state. A state dict
of another graph (unknown keys, other shapes) is refused with the executor's state error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from converters import ir_to_onnx
from onnx_ops import OrtExecutor, OrtInputError, OrtStateError
from talon.bridge import CyclicGraphExecutor, GraphExecutor, InputError, StateError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from fuzzing.seeds import graphs  # noqa: E402  (small valid graphs: spiking MLP, conv net)

GRAPHS = graphs()
Run = Callable[[np.ndarray, dict | None], tuple[np.ndarray, dict]]


def _torch_runner(ex) -> Run:
    def run(x, state=None):
        with torch.no_grad():
            given = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
            st = None if state is None else {k: tuple(torch.from_numpy(np.asarray(v)) for v in items)
                                             for k, items in state.items()}
            out, new = ex(given, st)
        out = out[-1] if isinstance(out, list) else out
        return out.numpy(), {k: tuple(t.numpy() for t in v) for k, v in new.items()}
    return run


def _ort_runner(ex: OrtExecutor) -> Run:
    return lambda x, state=None: ex(x, state)


EXECUTORS: dict[str, tuple[Callable[[str], Run], type, type]] = {
    "graph": (lambda g: _torch_runner(GraphExecutor(GRAPHS[g], return_state=True)), InputError, StateError),
    "cyclic": (lambda g: _torch_runner(CyclicGraphExecutor.from_graph(GRAPHS[g], timesteps=1, return_state=True)),
               InputError, StateError),
    "ort": (lambda g: _ort_runner(OrtExecutor(ir_to_onnx(GRAPHS[g]), return_state=True)), OrtInputError, OrtStateError),
}
_cache: dict[tuple[str, str], Run] = {}


def runner(kind: str, graph: str) -> Run:
    if (kind, graph) not in _cache:
        _cache[kind, graph] = EXECUTORS[kind][0](graph)
    return _cache[kind, graph]


def sample(graph: str, batch: int = 3, seed: int = 0) -> np.ndarray:
    shape = tuple(GRAPHS[graph].nodes["input"].shape)
    return np.random.default_rng(seed).uniform(-2, 2, (batch, *shape)).astype(np.float32)


@pytest.mark.parametrize("kind", EXECUTORS)
@pytest.mark.parametrize("bad", ["features", "no-batch", "extra-dim"])
def test_wrong_input_shapes_are_refused_naming_the_input(kind: str, bad: str):
    x = sample("conv")
    wrong = {"features": x[..., :-1], "no-batch": x[0], "extra-dim": x[None]}[bad]
    with pytest.raises(EXECUTORS[kind][1], match=r"input.*6, ?6"):
        runner(kind, "conv")(wrong)


@pytest.mark.parametrize("kind", EXECUTORS)
@pytest.mark.parametrize("dtype", ["float64", "float16", "int64", "int32", "uint8", "bool"])
def test_real_numeric_and_bool_inputs_are_cast_to_float32(kind: str, dtype: str):
    x = (sample("mlp") * 3).astype(dtype)
    out, state = runner(kind, "mlp")(x)
    expected, expected_state = runner(kind, "mlp")(x.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(state["lif1"][0], expected_state["lif1"][0])


@pytest.mark.parametrize("kind", EXECUTORS)
def test_complex_inputs_are_refused(kind: str):
    x = sample("mlp").astype(np.complex64) * (1 + 1j)
    with pytest.raises(EXECUTORS[kind][1], match="input"):
        runner(kind, "mlp")(x)


def test_string_inputs_are_refused_by_the_ort_executor():
    with pytest.raises(OrtInputError, match="input"):
        runner("ort", "mlp")(np.full((2, 8), "1.5"))


@pytest.mark.parametrize("kind", EXECUTORS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_propagate_within_their_batch_item(kind: str, value: float):
    x = sample("conv")
    bad = x.copy()
    bad[0, 0, 2, 3] = value
    out, _ = runner(kind, "conv")(bad)
    clean, _ = runner(kind, "conv")(x)
    assert not np.isfinite(out[0]).all()
    np.testing.assert_array_equal(out[1:], clean[1:])
    reference, _ = runner("graph", "conv")(bad)  # the three executors agree, non-finite values included
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", EXECUTORS)
def test_nan_input_reaches_the_membrane_state(kind: str):
    x = sample("mlp")
    x[1, :] = np.nan
    _, state = runner(kind, "mlp")(x)
    assert np.isnan(state["lif1"][0][1]).all()
    assert np.isfinite(state["lif1"][0][[0, 2]]).all()


@pytest.mark.parametrize("kind", EXECUTORS)
@pytest.mark.parametrize("graph", ["mlp", "conv"])
def test_an_empty_batch_gives_empty_outputs_and_state(kind: str, graph: str):
    out, state = runner(kind, graph)(sample(graph, batch=0))
    full, full_state = runner(kind, graph)(sample(graph, batch=2))
    assert out.shape == (0, *full.shape[1:])
    assert {k: v[0].shape[1:] for k, v in state.items()} == {k: v[0].shape[1:] for k, v in full_state.items()}
    assert all(v[0].shape[0] == 0 for v in state.values())


@pytest.mark.parametrize("kind", EXECUTORS)
def test_state_of_another_graph_is_refused(kind: str):
    other = {"lif": (np.zeros((3, 4), np.float32),)}  # the cyclic seed graph's state; the MLP has 'lif1', 'if2'
    with pytest.raises(EXECUTORS[kind][2], match="'lif'"):
        runner(kind, "mlp")(sample("mlp"), other)


@pytest.mark.parametrize("kind", EXECUTORS)
@pytest.mark.parametrize("shape", [(3, 5), (1, 6), (3, 6, 1)], ids=["features", "batch", "rank"])
def test_membranes_of_the_wrong_shape_are_refused_naming_the_node(kind: str, shape: tuple):
    state = {"lif1": (np.zeros(shape, np.float32),)}
    with pytest.raises(EXECUTORS[kind][2], match="lif1"):
        runner(kind, "mlp")(sample("mlp"), state)


@pytest.mark.parametrize("kind", EXECUTORS)
def test_float64_state_is_cast_like_inputs(kind: str):
    x = sample("mlp")
    _, state = runner(kind, "mlp")(x)
    out64, _ = runner(kind, "mlp")(x, {k: tuple(v.astype(np.float64) for v in items) for k, items in state.items()})
    out32, _ = runner(kind, "mlp")(x, state)
    np.testing.assert_array_equal(out64, out32)
