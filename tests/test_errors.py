"""The one error hierarchy: every error raised on purpose is a TalonError and a ValueError, whatever the layer."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import converters
import onnx_ops
from talon import errors, ir
from talon.bridge import InputError, StateError


def _classes(base: type) -> list[type]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, base)]


def _error_classes() -> list[type]:
    return [c for c in _classes(Exception) if not issubclass(c, Warning)]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_is_a_talon_value_error(cls: type) -> None:
    assert issubclass(cls, errors.TalonError) and issubclass(cls, ValueError)


@pytest.mark.parametrize("cls", _classes(Warning), ids=lambda c: c.__name__)
def test_every_warning_is_a_talon_warning(cls: type) -> None:
    assert issubclass(cls, errors.TalonWarning) and issubclass(cls, UserWarning)


def test_each_layer_raises_the_same_classes() -> None:
    assert onnx_ops.OrtInputError is InputError and onnx_ops.OrtStateError is StateError
    assert onnx_ops.OrtModelError is errors.ModelError
    assert converters.ConversionError is errors.ConversionError
    assert ir.TalonFormatError is errors.TalonFormatError and ir.GraphError is errors.GraphError
    from talon.cli.files import CliError

    assert CliError is errors.CliError and issubclass(converters.ApproximationWarning, errors.TalonWarning)


def test_bad_argument_types_give_typed_errors(tmp_path) -> None:
    with pytest.raises(errors.TalonFormatError, match="expects a talon.ir.Graph, got int"):
        ir.write(tmp_path / "x.t1c", 42)
    assert not (tmp_path / "x.t1c").exists()
    with pytest.raises(errors.ConversionError, match="ModelProto or a path, got int"):
        converters.onnx_to_ir(42)
    with pytest.raises(errors.DeclarationError, match="subclass of talon.ir.Node"):
        ir.register_primitive(int)
    with pytest.raises(errors.DeclarationError, match="unknown field kind 'complex'"):
        ir.param("complex")
    with pytest.raises(errors.DeclarationError, match="mutable defaults"):
        ir.param("array", np.zeros(2))
