"""ONNX external data safety: locations outside the model's folder are refused by onnx_to_ir and OrtExecutor
(files on disk and in-memory ModelProtos alike), valid external data converts and runs, and is loaded once."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx import helper as h
from onnx.external_data_helper import set_external_data

from converters import onnx_to_ir
from converters.errors import ConversionError
from converters.safety import check_external_data
from onnx_ops import OrtExecutor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import rss  # noqa: E402

W = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
SECRET = W[::-1].copy()  # what a model escaping its folder would read


def _model(location: str, offset: int = 0, length: int = W.nbytes) -> onnx.ModelProto:
    """Y = X @ W with W kept in an external file at `location`."""
    w = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=W.shape)
    w.raw_data = b""
    set_external_data(w, location=location, offset=offset, length=length)
    w.data_location = TensorProto.EXTERNAL
    graph = h.make_graph([h.make_node("MatMul", ["X", "W"], ["Y"], name="fc")], "g",
                         [h.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3])],
                         [h.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 4])], [w])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=9)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch) -> Path:
    """tmp/model/ (the model's folder, also the working directory) beside tmp/secret.bin, with a link to it."""
    model_dir = tmp_path / "model"
    (model_dir / "sub").mkdir(parents=True)
    (tmp_path / "secret.bin").write_bytes(SECRET.tobytes())
    (model_dir / "weights.bin").write_bytes(W.tobytes())
    (model_dir / "link.bin").symlink_to(tmp_path / "secret.bin")
    monkeypatch.chdir(model_dir)
    return model_dir


ESCAPES = {
    "parent": lambda d: "../secret.bin",
    "nested-parent": lambda d: "sub/../../secret.bin",
    "absolute": lambda d: str(d.parent / "secret.bin"),
    "symlink-out": lambda d: "link.bin",
}
REASON = "outside|absolute|symbolic link|escapes|Absolute path"


def _write(folder: Path, model: onnx.ModelProto) -> Path:
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("kind", ESCAPES)
def test_onnx_to_ir_refuses_a_file_whose_external_data_escapes(folder: Path, kind: str):
    path = _write(folder, _model(ESCAPES[kind](folder)))
    with pytest.raises(ConversionError, match=REASON):
        onnx_to_ir(path)


@pytest.mark.parametrize("kind", [*ESCAPES, "inside"])
def test_onnx_to_ir_refuses_an_in_memory_model_with_external_data(folder: Path, kind: str):
    # A ModelProto has no folder: relative locations would resolve against the working directory.
    location = "weights.bin" if kind == "inside" else ESCAPES[kind](folder)
    with pytest.raises(ConversionError, match="external"):
        onnx_to_ir(_model(location))


@pytest.mark.parametrize("kind", ESCAPES)
def test_ort_executor_refuses_external_data_that_escapes(folder: Path, kind: str):
    model = _model(ESCAPES[kind](folder))
    for given in (_write(folder, model), model):
        # documented: a ValueError subclass (OrtExecutor documents only ValueError subclasses) naming the tensor
        with pytest.raises(ValueError, match="W"):
            OrtExecutor(given)


def test_external_data_inside_the_folder_converts_and_runs(folder: Path):
    path = _write(folder, _model("weights.bin"))
    graph = onnx_to_ir(path)
    (affine,) = [n for n in graph.nodes.values() if type(n).__name__ == "Affine"]
    np.testing.assert_array_equal(affine.weight, W.T)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(OrtExecutor(path)(x), x @ W, rtol=1e-6)


@pytest.mark.parametrize("kind", ESCAPES)
def test_safety_check_refuses_every_escape(folder: Path, kind: str):
    with pytest.raises(ConversionError, match="'W'.*(outside|absolute|symbolic)"):
        check_external_data(_model(ESCAPES[kind](folder)), folder)


def test_safety_check_refuses_data_past_the_end_of_its_file_and_models_without_a_folder(folder: Path):
    check_external_data(_model("weights.bin"), folder)
    with pytest.raises(ConversionError, match="lies outside its file"):
        check_external_data(_model("weights.bin", offset=8), folder)
    with pytest.raises(ConversionError, match="lies outside its file"):
        check_external_data(_model("weights.bin", length=2**40), folder)
    with pytest.raises(ConversionError, match="not an existing regular file"):
        check_external_data(_model("missing.bin"), folder)
    with pytest.raises(ConversionError, match="without its folder"):
        check_external_data(_model("weights.bin"), None)


def test_safety_check_finds_external_tensors_in_subgraphs_and_functions(folder: Path):
    inner = _model("../secret.bin")
    const = h.make_node("Constant", [], ["c"], value=inner.graph.initializer[0])
    branch = h.make_graph([const], "then", [], [h.make_tensor_value_info("c", TensorProto.FLOAT, [3, 4])])
    model = h.make_model(h.make_graph(
        [h.make_node("If", ["cond"], ["c"], then_branch=branch, else_branch=branch)], "g",
        [h.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [h.make_tensor_value_info("c", TensorProto.FLOAT, [3, 4])],
    ))
    with pytest.raises(ConversionError, match="outside"):
        check_external_data(model, folder)


def test_external_weights_are_loaded_once(tmp_path: Path):
    """Converting a model with external data holds its weights once: peak growth well under twice their size."""
    path, weight_bytes = rss.write_external_mlp(str(tmp_path), width=1024, layers=8)
    mem = rss.peak_rss("from converters import onnx_to_ir", f"graph = onnx_to_ir({str(path)!r})")
    assert (mem["peak"] - mem["base"]) / weight_bytes < 1.5
