"""docs/extending.md, done from outside the package: a new stateless primitive (Softsign, exported as ONNX's own
Softsign) and a new stateful neuron (AdaptiveIF, two state items, declared as one talon op spec), each registered
only through the public registration functions, round-tripped through .t1c, ir_to_torch, ir_to_onnx + OrtExecutor
and onnx_to_ir (restore path and importers) with equal numbers; a primitive without exporter is refused by name."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import helper as h
from torch import nn

import onnx_ops
import onnx_ops.torch_ops  # noqa: F401  (defines torch.ops.talon.* for every op spec, a user's too)
from converters import UnsupportedOperatorError, ir_to_onnx, onnx_to_ir, register_talon_op
from converters.export import register as register_exporter
from converters.importers import importer
from onnx_ops import OrtExecutor
from onnx_ops.neuron_kernels import spike
from talon import ir
from talon.bridge import ir_to_torch, register_module


# -- what a user writes (docs/extending.md) -----------------------------------------------------------------
class Softsign(ir.Node):
    """y = x / (1 + |x|): a stateless primitive without parameters."""


class SoftsignModule(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / (1 + x.abs())


def emit_softsign(ctx, name: str, node: Softsign) -> None:
    ctx.emit(name, "Softsign", [ctx.input(name)])


def import_softsign(ctx) -> Softsign:
    return Softsign()


class AdaptiveIF(ir.Node):
    """IF with an adaptive threshold: v = v + r*x; s = v >= v_threshold + a; v reset to 0; a = decay*a + jump*s."""

    stateful = True
    r: np.ndarray = ir.param("array")
    v_threshold: np.ndarray = ir.param("array")
    decay: np.ndarray = ir.param("array")
    jump: np.ndarray = ir.param("array")


def adaptive_if_body(variant) -> list[onnx.NodeProto]:
    return [
        h.make_node("Constant", [], ["one_f"], value_float=1.0),
        h.make_node("CastLike", ["one_f", "X"], ["one"]),
        h.make_node("Mul", ["r", "X"], ["rx"]),
        h.make_node("Add", ["V", "rx"], ["v"]),
        h.make_node("Add", ["v_threshold", "A"], ["level"]),
        h.make_node("GreaterOrEqual", ["v", "level"], ["fired"]),
        h.make_node("CastLike", ["fired", "X"], ["S"]),
        h.make_node("Sub", ["one", "S"], ["keep"]),
        h.make_node("Mul", ["v", "keep"], ["V_next"]),
        h.make_node("Mul", ["decay", "A"], ["kept"]),
        h.make_node("Mul", ["jump", "S"], ["raised"]),
        h.make_node("Add", ["kept", "raised"], ["A_next"]),
    ]


def adaptive_if_reference(X, V, A, r, v_threshold, decay, jump):
    v = V + r * X
    s = (v >= v_threshold + A).astype(X.dtype)
    return s, (v * (1 - s)).astype(X.dtype), (decay * A + jump * s).astype(X.dtype)


def adaptive_if_kernel(X, V, A, r, v_threshold, decay, jump):
    v = V + r * X
    s = spike(v, v_threshold + A)
    return s, v * (1 - s), decay * A + jump * s


class AdaptiveIFModule(nn.Module):
    _is_stateful = True  # the executors' module protocol (talon.bridge.modules)
    _state_size = 2

    def __init__(self, node: AdaptiveIF):
        super().__init__()
        for name in ("r", "v_threshold", "decay", "jump"):
            self.register_buffer(name, torch.tensor(getattr(node, name), dtype=torch.float32))

    def forward(self, x, v=None, a=None):
        v = torch.zeros_like(x) if v is None else v
        a = torch.zeros_like(x) if a is None else a
        return torch.ops.talon.adaptive_if(x, v, a, self.r, self.v_threshold, self.decay, self.jump)


def register_extensions() -> None:
    """The registrations of docs/extending.md, in the order a user's module would run them."""
    ir.register_primitive(Softsign)
    register_module(Softsign)(lambda node: SoftsignModule())
    register_exporter(Softsign)(emit_softsign)
    importer("Softsign", since=1)(import_softsign)

    ir.register_primitive(AdaptiveIF)
    register_module(AdaptiveIF)(AdaptiveIFModule)
    onnx_ops.register_op(onnx_ops.OpSpec(
        "AdaptiveIF", AdaptiveIF.__doc__,
        inputs=("X", "V", "A", "r", "v_threshold", "decay", "jump"), outputs=("S", "V_next", "A_next"),
        body=adaptive_if_body, reference=adaptive_if_reference, kernel=adaptive_if_kernel, state=("v", "a")))
    register_talon_op(AdaptiveIF)


# -- the test ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def extensions():
    """The user's registrations; afterwards the registries are put back (test hygiene, not part of the recipe).
    The torch op and the onnx schema of AdaptiveIF stay defined, as torch and onnx cannot forget them."""
    from converters.export import registry as export_registry
    from converters.importers import registry as import_registry
    from onnx_ops import reference, schemas, spec
    from talon.bridge import modules
    from talon.ir.primitives import base

    saved = [(base, "_PRIMITIVES", dict(base._PRIMITIVES)), (modules, "_FACTORIES", dict(modules._FACTORIES)),
             (export_registry, "EMITTERS", dict(export_registry.EMITTERS)),
             (import_registry, "_IMPORTERS", {k: list(v) for k, v in import_registry._IMPORTERS.items()}),
             (spec, "_SPECS", dict(spec._SPECS)), (schemas, "SCHEMAS", dict(schemas.SCHEMAS))]
    references = list(reference.REFERENCE_OPS)
    register_extensions()
    yield
    for module, name, value in saved:
        getattr(module, name).clear()
        getattr(module, name).update(value)
    reference.REFERENCE_OPS[:] = references


def _graph(rng: np.random.Generator) -> ir.Graph:
    n = 5
    nodes = {
        "input": ir.Input(shape=np.array([4])),
        "fc": ir.Affine(weight=rng.uniform(-1, 1, (n, 4)).astype(np.float32), bias=np.zeros(n, np.float32)),
        "soft": Softsign(),
        "aif": AdaptiveIF(r=np.full(n, 2.0, np.float32), v_threshold=np.full(n, 0.5, np.float32),
                          decay=np.full(n, 0.75, np.float32), jump=np.full(n, 0.25, np.float32)),
        "output": ir.Output(shape=np.array([n])),
    }
    return ir.Graph(nodes, [("input", "fc"), ("fc", "soft"), ("soft", "aif"), ("aif", "output")])


def _strip(model: onnx.ModelProto) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    model.ClearField("metadata_props")
    for proto in [*model.graph.node, *model.graph.input, *model.graph.output]:
        proto.ClearField("metadata_props")
    return model


def _numpy_steps(graph: ir.Graph, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network written out in numpy, independently of every layer under test."""
    fc, aif = graph.nodes["fc"], graph.nodes["aif"]
    v = a = np.zeros((xs.shape[1], 5), np.float32)
    spikes = []
    for x in xs:
        y = x @ fc.weight.T + fc.bias
        v = v + aif.r * (y / (1 + np.abs(y)))
        s = (v >= aif.v_threshold + a).astype(np.float32)
        v, a = v * (1 - s), aif.decay * a + aif.jump * s
        spikes.append(s)
    return np.array(spikes), v, a


def test_user_primitives_round_trip_everywhere_with_equal_numbers(extensions, tmp_path) -> None:
    rng = np.random.default_rng(5)
    graph = _graph(rng)
    xs = rng.uniform(-1, 1, (10, 3, 4)).astype(np.float32)
    want_s, want_v, want_a = _numpy_steps(graph, xs)
    assert 0 < want_s.sum() < want_s.size  # the run spikes, and not everywhere

    ir.write(tmp_path / "user.t1c", graph)
    assert ir.read(tmp_path / "user.t1c").equals(graph)

    model = ir_to_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    assert {n.op_type for n in model.graph.node} >= {"Softsign", "AdaptiveIF"}
    for back in (onnx_to_ir(model), onnx_to_ir(_strip(model))):  # metadata restore path, then the importers
        assert back.nodes["soft"] == graph.nodes["soft"] and back.nodes["aif"] == graph.nodes["aif"]

    executor = ir_to_torch(graph, return_state=True)
    ort = OrtExecutor(model, return_state=True)
    assert ort.state_nodes == {"aif": [("aif.v_in", "aif.v_out"), ("aif.a_in", "aif.a_out")]}
    state = ort_state = None
    for t, x in enumerate(xs):
        with torch.no_grad():
            out, state = executor(torch.from_numpy(x), state)
        ort_out, ort_state = ort(x, ort_state)
        np.testing.assert_array_equal(out.numpy(), want_s[t])
        np.testing.assert_array_equal(ort_out, want_s[t])
    np.testing.assert_allclose(state["aif"][0].numpy(), want_v, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(state["aif"][1].numpy(), want_a, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ort_state["aif"][0], want_v, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ort_state["aif"][1], want_a, rtol=1e-6, atol=1e-6)


def test_user_neuron_op_is_known_to_every_talon_op_layer(extensions) -> None:
    assert onnx_ops.state_ops()["AdaptiveIF"] == ("v", "a")
    assert "AdaptiveIF" in onnx_ops.SCHEMAS
    assert "AdaptiveIF" in [op.__name__ for op in onnx_ops.REFERENCE_OPS]
    x = torch.tensor([[1.0, 0.0]], requires_grad=True)
    s, v, a = torch.ops.talon.adaptive_if(x, torch.zeros(1, 2), torch.zeros(1, 2), *[torch.ones(2)] * 4)
    assert torch.equal(s, torch.tensor([[1.0, 0.0]])) and torch.equal(a, s)
    s.sum().backward()
    assert x.grad[0, 0] > 0  # the surrogate gradient reaches the input through the custom op


def test_a_primitive_without_exporter_is_refused_by_name(extensions, monkeypatch) -> None:
    from talon.ir.primitives import base

    monkeypatch.setattr(base, "_PRIMITIVES", dict(base._PRIMITIVES))

    @ir.register_primitive
    class Unexported(ir.Node):
        """A primitive registered without an exporter."""

    graph = ir.Graph({"input": ir.Input(shape=np.array([3])), "odd": Unexported(),
                      "output": ir.Output(shape=np.array([3]))}, [("input", "odd"), ("odd", "output")])
    with pytest.raises(UnsupportedOperatorError, match=r"Unexported \(node 'odd', opset \d+\): no ONNX exporter"):
        ir_to_onnx(graph)


def test_register_talon_op_refuses_a_class_without_spec_or_with_other_fields(extensions, monkeypatch) -> None:
    from talon.ir.primitives import base

    monkeypatch.setattr(base, "_PRIMITIVES", dict(base._PRIMITIVES))

    @ir.register_primitive
    class NoSpec(ir.Node):
        """No talon op of this name exists."""

    with pytest.raises(ir.RegistryError, match="no talon op spec named NoSpec"):
        register_talon_op(NoSpec)

    class Threshold(ir.Node):  # the talon op Threshold reads an input `threshold`, which this class lacks
        level: np.ndarray = ir.param("array")

    with pytest.raises(ir.RegistryError, match=r"inputs \['threshold'\] are not array fields of Threshold"):
        register_talon_op(ir.register_primitive(Threshold, override=True))
    with pytest.raises(ir.RegistryError, match="already registered for \\['AdaptiveIF'\\]"):
        register_talon_op(AdaptiveIF)
