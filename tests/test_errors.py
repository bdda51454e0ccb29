"""The one error hierarchy: every error raised on purpose is a TalonError and a ValueError, whatever the layer."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import converters
import onnx_ops
from talon import bridge, errors, ir
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


def _tiny() -> ir.Graph:
    weight, bias = np.eye(2, dtype=np.float32), np.zeros(2, np.float32)
    nodes = {"i": ir.Input(shape=(2,)), "a": ir.Affine(weight=weight, bias=bias), "o": ir.Output(shape=(2,))}
    return ir.Graph(nodes, [("i", "a"), ("a", "o")])


WRONG_TYPES = {
    "Graph nodes": (lambda: ir.Graph(42), errors.GraphError, "Graph: nodes must be of type Mapping"),
    "Graph edges": (lambda: ir.Graph({}, 42), errors.GraphError, "Graph: edges must be of type Iterable"),
    "Graph metadata": (lambda: ir.Graph({}, [], metadata=[1]), errors.GraphError, "Graph: metadata must be"),
    "ir.read": (lambda: ir.read(42), errors.TalonFormatError, "read expects a path, got int"),
    "ir.write path": (lambda: ir.write(None, _tiny()), errors.TalonFormatError, "write expects a path"),
    "ir_to_torch": (lambda: bridge.ir_to_torch(42), errors.GraphError, "ir_to_torch: graph_or_path must be"),
    "GraphExecutor": (lambda: bridge.GraphExecutor("g"), errors.GraphError, "GraphExecutor: graph must be"),
    "from_graph": (lambda: bridge.CyclicGraphExecutor.from_graph(42), errors.GraphError, "from_graph: graph must"),
    "ir_to_onnx": (lambda: converters.ir_to_onnx(42), errors.ConversionError, "ir_to_onnx: graph must be"),
    "OrtExecutor": (lambda: onnx_ops.OrtExecutor(42), errors.ModelError, "OrtExecutor: model_or_path must be"),
    "attach_functions": (lambda: onnx_ops.attach_functions(42), errors.ModelError, "attach_functions: model"),
    "convert": (lambda: converters.convert(42, "x.t1c"), errors.ConversionError, "convert: src must be"),
    "to_ir model": (lambda: bridge.to_ir(42, torch.zeros(1)), errors.ConversionError, "to_ir: model must be"),
    "to_ir sample": (lambda: bridge.to_ir(torch.nn.Linear(2, 2), 42), errors.ConversionError, r"sample\[0\]"),
}


@pytest.mark.parametrize("case", WRONG_TYPES, ids=str)
def test_wrong_argument_types_are_typed_errors(case: str) -> None:
    call, error, message = WRONG_TYPES[case]
    with pytest.raises(error, match=message):
        call()


def test_ir_to_nir_wrong_type() -> None:
    pytest.importorskip("nir")
    from converters.nir import ir_to_nir

    with pytest.raises(errors.ConversionError, match="ir_to_nir: graph must be of type Graph, got int"):
        ir_to_nir(42, dt=1.0)


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
