"""The four fuzz targets: how a case is built from its seed, what is run, and which exceptions are documented.

Allowed (documented) exceptions, per target:

- ``t1c`` (``ir.read``), ``torch`` (``bridge.ir_to_torch`` on the file, then one call) and ``onnx``
  (``converters.onnx_to_ir``): ``talon.ir.errors.TalonError`` and its subclasses (TalonFormatError,
  GraphError, PrimitiveError, ConversionError, UnsupportedOperatorError, the executors' InputError and
  StateError), and FileNotFoundError.
- ``ort`` (``onnx_ops.OrtExecutor`` on the model, then one call): ``OrtInputError``, ``OrtStateError``
  (what OrtExecutor documents), ``onnx_ops.OrtModelError`` when it exists, and FileNotFoundError.
- the hostile targets (``t1c_hostile``, ``nir``, ``onnx_hostile``, ``state``, ``writes``, ``cli``; one builder
  per class of hostile input in tools/fuzzing/hostile.py): the union of both lists.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import onnx
import torch

import onnx_ops
from converters import onnx_to_ir
from talon import ir
from talon.bridge import ir_to_torch
from talon.ir.errors import TalonError

from . import hostile, mutate_onnx, mutate_t1c, seeds

MAX_INPUT_ELEMENTS = 1 << 20  # larger declared inputs are not fed (the harness would be what runs out of memory)


@dataclass(frozen=True)
class Target:
    """A fuzz target: `make(rng, case_dir)` builds the input, `run(input)` feeds it to the project."""

    name: str
    make: Callable[[random.Random, str], Any]
    run: Callable[[Any], Any]
    allowed: tuple[type[BaseException], ...]


def _t1c_case(values_only: bool) -> Callable[[random.Random, str], str]:
    def make(rng: random.Random, case_dir: str) -> str:
        _, data = rng.choice(seeds.t1c_files())
        path = f"{case_dir}/case.t1c"
        with open(path, "wb") as f:
            f.write(data)
        mutate_t1c.mutate_file(rng, path, values_only=values_only)
        return path
    return make


def _onnx_case(rng: random.Random, case_dir: str) -> onnx.ModelProto | str:
    _, data = rng.choice(seeds.onnx_models())
    model = onnx.load_model_from_string(data)
    mutate_onnx.mutate_model(rng, model, case_dir)
    if rng.random() < 0.3:
        return mutate_onnx.to_file(rng, model, case_dir, corrupt=rng.random() < 0.5)
    return model


def _sample(shape: tuple[int, ...]) -> torch.Tensor | None:
    """A random batch-2 input, or None when it would be unreasonably large."""
    if any(d < 0 for d in shape) or int(np.prod(shape, dtype=np.float64)) * 2 > MAX_INPUT_ELEMENTS:
        return None
    return torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))


def run_torch(path: str) -> Any:
    """ir_to_torch on the file, then one call on a random batch of 2."""
    ex = ir_to_torch(path)
    inputs = {n: _sample(tuple(ex.graph.nodes[n].shape)) for n in ex.input_names}
    if any(v is None for v in inputs.values()):
        return None
    with torch.no_grad():
        return ex(next(iter(inputs.values())) if len(inputs) == 1 else inputs)


def _ort_feed(info: onnx.ValueInfoProto) -> np.ndarray | None:
    dims = [d.dim_value if d.HasField("dim_value") else 2 for d in info.type.tensor_type.shape.dim]
    if any(d < 0 for d in dims) or int(np.prod(dims, dtype=np.float64)) > MAX_INPUT_ELEMENTS:
        return None
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
    except (KeyError, ValueError, TypeError):
        dtype = np.dtype(np.float32)
    return np.random.default_rng(0).standard_normal(dims).astype(dtype)


def run_ort(model: onnx.ModelProto | str) -> Any:
    """OrtExecutor on the model, then one call with inputs shaped by the model's declared inputs."""
    ex = onnx_ops.OrtExecutor(model)
    infos = {i.name: i for i in ex.model.graph.input}
    feeds = {n: _ort_feed(infos[n]) for n in ex.input_names}
    if any(v is None for v in feeds.values()):
        return None
    return ex(next(iter(feeds.values())) if len(feeds) == 1 else feeds)


_IR_ALLOWED = (TalonError, FileNotFoundError)
_ORT_ALLOWED = tuple(
    getattr(onnx_ops, name) for name in ("OrtInputError", "OrtStateError", "OrtModelError") if hasattr(onnx_ops, name)
) + (FileNotFoundError,)

_HOSTILE_ALLOWED = _IR_ALLOWED + tuple(
    getattr(onnx_ops, name) for name in ("OrtInputError", "OrtStateError", "OrtModelError"))

TARGETS = {
    "t1c": Target("t1c", _t1c_case(values_only=False), ir.read, _IR_ALLOWED),
    "torch": Target("torch", _t1c_case(values_only=True), run_torch, _IR_ALLOWED),
    "onnx": Target("onnx", _onnx_case, onnx_to_ir, _IR_ALLOWED),
    "ort": Target("ort", _onnx_case, run_ort, _ORT_ALLOWED),
    # structure-aware cases of each class of hostile input (tools/fuzzing/hostile.py)
    **{name: Target(name, make, hostile.run_built, _HOSTILE_ALLOWED) for name, make in hostile.BUILDERS.items()},
}
