"""One registry rule: every registry refuses a duplicate with a typed error unless override=True, which replaces."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from torch import nn

import onnx_ops
from converters.export import registry as export_registry
from converters.importers import registry as import_registry
from onnx_ops import spec as spec_registry
from talon import ir
from talon.bridge import modules as bridge_modules
from talon.ir.primitives import base


@pytest.fixture
def private_registries(monkeypatch):
    """Copies of every registry, so that test registrations do not leak."""
    monkeypatch.setattr(base, "_PRIMITIVES", dict(base._PRIMITIVES))
    monkeypatch.setattr(bridge_modules, "_FACTORIES", dict(bridge_modules._FACTORIES))
    monkeypatch.setattr(export_registry, "EMITTERS", dict(export_registry.EMITTERS))
    monkeypatch.setattr(import_registry, "_IMPORTERS", {k: list(v) for k, v in import_registry._IMPORTERS.items()})
    monkeypatch.setattr(import_registry, "_FUSIONS", {k: list(v) for k, v in import_registry._FUSIONS.items()})
    monkeypatch.setattr(spec_registry, "_SPECS", dict(spec_registry._SPECS))
    monkeypatch.setattr(spec_registry, "_LISTENERS", [])  # derived layers (onnx schemas, torch ops) stay as they are


def test_primitive_names_are_unique_unless_overridden(private_registries) -> None:
    with pytest.raises(ir.RegistryError, match="ReLU is already registered"):
        @ir.register_primitive
        class ReLU(ir.Node):  # noqa: F811  (the point: a second class of the built-in's name)
            pass

    @ir.register_primitive(override=True)
    class ReLU(ir.Node):  # noqa: F811
        slope: float = ir.param("float", 0.0)

    assert ir.get_primitive("ReLU") is ReLU
    with pytest.raises(ir.RegistryError, match="subclass of talon.ir.Node"):
        ir.register_primitive(int)


def test_module_factories_are_unique_unless_overridden(private_registries) -> None:
    with pytest.raises(ir.RegistryError, match=r"already registered for \['ReLU'\]"):
        bridge_modules.register_module(ir.ReLU)(lambda node: nn.Identity())
    bridge_modules.register_module(ir.ReLU, override=True)(lambda node: nn.Identity())
    assert isinstance(bridge_modules._FACTORIES[ir.ReLU](ir.ReLU()), nn.Identity)


def test_onnx_emitters_are_unique_unless_overridden(private_registries) -> None:
    def emit(ctx, name, node):
        """stand-in emitter"""

    with pytest.raises(ir.RegistryError, match=r"already registered for \['LIF'\]"):
        export_registry.register(ir.LIF)(emit)
    export_registry.register(ir.LIF, override=True)(emit)
    assert export_registry.emitter_for(ir.LIF(tau=np.ones(1), r=np.ones(1), v_leak=np.zeros(1),
                                              v_threshold=np.ones(1))) is emit


def test_onnx_importers_are_unique_per_opset_unless_overridden(private_registries) -> None:
    def relu(ctx):
        """stand-in importer"""

    with pytest.raises(ir.RegistryError, match=r"\['ai.onnx::Relu'\]"):
        import_registry.importer("Relu", since=14)(relu)
    import_registry.importer("Relu", since=14, override=True)(relu)
    assert import_registry.lookup("", "Relu", 14).fn is relu
    assert import_registry.lookup("", "Relu", 13) is None  # the replaced importer (every opset) is gone
    import_registry.importer("NotAnOnnxOp", domain="example")(relu)
    with pytest.raises(ir.RegistryError, match="example::NotAnOnnxOp"):
        import_registry.importer("NotAnOnnxOp", domain="example", since=5)(relu)


def test_fusion_matchers_are_unique_unless_overridden(private_registries) -> None:
    def matcher(node, ctx):
        return None

    import_registry.fusion("Example")(matcher)
    with pytest.raises(ir.RegistryError, match="matcher.*already registered for Example"):
        import_registry.fusion("Example")(matcher)
    import_registry.fusion("Example", override=True)(matcher)
    assert import_registry._FUSIONS[("", "Example")] == [matcher]


def test_op_specs_are_unique_unless_overridden(private_registries) -> None:
    lif = onnx_ops.op_spec("LIF")
    with pytest.raises(onnx_ops.OpSpecError, match="LIF is already registered"):
        onnx_ops.register_op(lif)
    replaced = dataclasses.replace(lif, doc="replaced")
    onnx_ops.register_op(replaced, override=True)
    assert onnx_ops.op_spec("LIF") is replaced
    with pytest.raises(onnx_ops.OpSpecError, match="expects an OpSpec"):
        onnx_ops.register_op("LIF")


def test_inconsistent_op_specs_are_refused_naming_every_problem(private_registries) -> None:
    lif = onnx_ops.op_spec("LIF")
    bad = dataclasses.replace(lif, name="Bad", inputs=("X",), state=("v", "v"),
                              attributes=(onnx_ops.Attr("k", "tensor"),))
    with pytest.raises(onnx_ops.OpSpecError) as err:
        onnx_ops.register_op(bad)
    message = str(err.value)
    assert "talon op Bad" in message and "need inputs" in message and "distinct" in message and "'tensor'" in message
