"""Checks that an ONNX model's external data stays inside the model's folder, before anything reads it.

onnx.load(path) and onnxruntime already refuse locations that are absolute, climb out of the folder
or go through a symbolic link; onnx_ir (used by the clean-up passes) does not, and a ModelProto built
or loaded in memory has no folder at all, so relative locations would resolve against the current
directory. `check_external_data` applies the same rules to every tensor of a model, subgraphs and
functions included, and also checks that each declared (offset, length) lies inside its file.
"""

from __future__ import annotations

import os

import onnx
from onnx import TensorProto

from onnx_ops.tensors import external_tensors

from .errors import ConversionError


def _entry(tensor: TensorProto, key: str, default: str | None = None) -> str | None:
    return next((e.value for e in tensor.external_data if e.key == key), default)


def _resolve(base_dir: str, tensor: TensorProto) -> str:
    """The checked absolute path of a tensor's external file; ConversionError names the tensor and the rule."""
    location = _entry(tensor, "location")

    def refuse(why: str) -> ConversionError:
        return ConversionError(f"tensor {tensor.name!r}: external data location {location!r} {why}; external data "
                               f"must be a regular file inside the model's folder {base_dir!r}")

    if not location or "\x00" in location:
        raise refuse("is empty or invalid")
    if os.path.isabs(location) or os.path.splitdrive(location)[0]:
        raise refuse("is an absolute path")
    if os.path.normpath(location).split(os.sep)[0] == os.pardir:
        raise refuse("points outside the folder")
    path = os.path.join(base_dir, location)
    expected = os.path.join(os.path.realpath(base_dir), os.path.normpath(location))
    if os.path.islink(path) or os.path.realpath(path) != expected:
        raise refuse("goes through a symbolic link")
    if not os.path.isfile(path):
        raise refuse("is not an existing regular file")
    return path


def _check_extent(tensor: TensorProto, path: str) -> None:
    """The declared (offset, length) must be non-negative integers inside the file."""
    try:
        offset = int(_entry(tensor, "offset", "0"))
        length = _entry(tensor, "length")
        length = None if length is None else int(length)
    except ValueError:
        raise ConversionError(f"tensor {tensor.name!r}: external data offset/length are not integers") from None
    size = os.path.getsize(path)
    if offset < 0 or (length is not None and length < 0) or offset + (length or 0) > size:
        raise ConversionError(f"tensor {tensor.name!r}: external data (offset {offset}, length {length}) lies outside "
                              f"its file {path!r} of {size} bytes")


def check_external_data(model: onnx.ModelProto, base_dir: str | os.PathLike | None) -> None:
    """Refuse external data outside `base_dir` (None: a model without a folder may have no external data)."""
    for tensor in external_tensors(model):
        if base_dir is None:
            raise ConversionError(
                f"tensor {tensor.name!r} keeps its data in the external file {_entry(tensor, 'location')!r} but the "
                "model was given without its folder: pass the model's file path instead, or load the data first "
                "with onnx.load_external_data_for_model(model, folder)")
        _check_extent(tensor, _resolve(os.fspath(base_dir), tensor))
