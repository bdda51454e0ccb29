"""The ONNX gate of the converters: onnx_ops.guard (external data inside the model's folder, node schemas,
the inlining bound, native code probed in a child process) with its refusals as ConversionError."""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

import onnx

from onnx_ops import guard
from onnx_ops.errors import OrtModelError

from .errors import ConversionError, UnsupportedNode, UnsupportedOperatorError


def check_external_data(model: onnx.ModelProto, base_dir: str | os.PathLike | None) -> None:
    """Refuse external data outside `base_dir` (None: a model without a folder may have no external data)."""
    with _converted():
        guard.check_external_data(model, base_dir)


def check_model(model: onnx.ModelProto, base_dir: str | os.PathLike | None,
                native: Callable[[onnx.ModelProto], object]) -> None:
    """onnx_ops.guard.check_model, refusing with ConversionError; nodes that disagree with their schema are
    listed together in one UnsupportedOperatorError, as the importers list what they cannot map."""
    check_external_data(model, base_dir)
    problems = guard.node_problems(model)
    if problems:
        raise UnsupportedOperatorError([
            UnsupportedNode(node.op_type, node.name, "" if node.domain == "ai.onnx" else node.domain, opset, why)
            for node, opset, why in problems])
    with _converted():
        guard.check_native(model, native)


@contextlib.contextmanager
def _converted() -> Iterator[None]:
    """Re-raise the guard's OrtModelError as ConversionError (same message)."""
    try:
        yield
    except OrtModelError as exc:
        raise ConversionError(str(exc)) from None
