"""EmitContext: what an emitter needs to turn one IR node into ONNX nodes, values and initializers."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto
from onnx import helper as h
from onnx import numpy_helper

from talon.ir import Graph
from talon.ir.primitives import Node

from . import jsonvalue

PRIMITIVE, PARAMS, ARRAYS, METADATA, ROLE, OWNER = (
    "talon.primitive",
    "talon.params",
    "talon.arrays",
    "talon.metadata",
    "talon.role",
    "talon.owner",
)
BATCH = "batch"


def _array_fields(node: Node) -> list[str]:
    return [k for k, v in node.params().items() if isinstance(v, np.ndarray)]


def ir_props(node: Node, arrays: dict[str, str]) -> dict[str, str]:
    """metadata_props restoring an IR node exactly: type, non-array fields, array initializers, metadata."""
    props = {
        PRIMITIVE: type(node).__name__,
        PARAMS: jsonvalue.encode({k: v for k, v in node.params().items() if not isinstance(v, np.ndarray)}),
        ARRAYS: jsonvalue.encode(arrays),
    }
    if node.metadata:
        props[METADATA] = jsonvalue.encode(node.metadata)
    return props


def set_props(proto, props: dict[str, str]) -> None:
    """Write metadata_props onto a NodeProto or ValueInfoProto."""
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)


class EmitContext:
    """Accumulates the ONNX graph while emitters translate IR nodes (in topological order)."""

    def __init__(self, graph: Graph, opset: int):
        self.graph = graph
        self.opset = opset
        self.shapes = graph.infer_shapes()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.state_inputs: list[onnx.ValueInfoProto] = []
        self.state_outputs: list[onnx.ValueInfoProto] = []
        self._arrays: dict[str, dict[str, str]] = {}
        self.domains: dict[str, int] = {}  # opsets of further domains the nodes use (inlined HostRegion models)
        self.functions: list[onnx.FunctionProto] = []  # model-local functions they call

    # -- values ------------------------------------------------------------------------------
    def output(self, name: str, index: int | None = None) -> str:
        """Value name of a node's output (output `index` of a multi-output node)."""
        return name if index is None else f"{name}:{index}"

    def inputs_of(self, name: str) -> list[str]:
        """Value names of the node's incoming edges, in edge order."""
        values = []
        for src in self.graph.predecessors(name):
            if self.graph.nodes[src].multi_output:
                values.append(self.output(src, self.graph.output_index(src, name)))
            else:
                values.append(self.output(src))
        return values

    def input(self, name: str) -> str:
        """The node's input value: the sum of its incoming edges (an aux Sum node when several)."""
        values = self.inputs_of(name)
        if len(values) == 1:
            return values[0]
        return self.aux(name, "sum", "Sum", values, role="sum")

    def input_shape(self, name: str) -> tuple[int, ...]:
        """The node's input shape without batch (its first incoming edge's)."""
        src = self.graph.predecessors(name)[0]
        shape = self.shapes[src]
        if self.graph.nodes[src].multi_output:
            shape = shape[self.graph.output_index(src, name)]
        return tuple(shape)

    def value_info(self, value: str, shape, elem_type: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
        """A [batch, *shape] tensor ValueInfo."""
        return h.make_tensor_value_info(value, elem_type, [BATCH, *shape])

    # -- initializers ------------------------------------------------------------------------
    def param(self, name: str, field: str, shape: tuple[int, ...] | None = None) -> str:
        """Initializer `<name>.<field>` holding the IR array exactly; returns a float32 value of `shape`."""
        array = getattr(self.graph.nodes[name], field)
        init = f"{name}.{field}"
        self.initializers.append(numpy_helper.from_array(np.asarray(array), init))
        self.record(name, field, init)
        value = init
        if array.dtype != np.float32:
            value = self.aux(name, f"{field}/cast", "Cast", [value], to=TensorProto.FLOAT)
        if shape is not None and tuple(array.shape) != tuple(shape):
            value = self.aux(
                name,
                f"{field}/reshape",
                "Reshape",
                [value, self.const(name, f"{field}/shape", np.array(shape, np.int64))],
            )
        return value

    def record(self, name: str, field: str, initializer: str) -> None:
        """Record that the initializer holds the node's array field exactly (an emitter that adds it itself)."""
        self._arrays.setdefault(name, {})[field] = initializer

    def const(self, owner: str, suffix: str, array: np.ndarray) -> str:
        """An auxiliary initializer `<owner>/<suffix>` (not an IR field)."""
        value = f"{owner}/{suffix}"
        self.initializers.append(numpy_helper.from_array(np.asarray(array), value))
        return value

    # -- nodes -------------------------------------------------------------------------------
    def emit(
        self,
        name: str,
        op_type: str,
        inputs: list[str],
        outputs: list[str] | None = None,
        domain: str = "",
        **attrs: Any,
    ) -> onnx.NodeProto:
        """The ONNX node standing for IR node `name` (same name; metadata_props restore the IR node)."""
        node = h.make_node(op_type, inputs, outputs or [self.output(name)], name=name, domain=domain or None, **attrs)
        set_props(node, ir_props(self.graph.nodes[name], self._arrays.get(name, {})))
        self.nodes.append(node)
        return node

    def aux(self, owner: str, suffix: str, op_type: str, inputs: list[str], role: str = "aux", **attrs: Any) -> str:
        """A helper ONNX node `<owner>/<suffix>` (role 'sum' or 'aux'); returns its output value."""
        value = f"{owner}/{suffix}"
        node = h.make_node(op_type, inputs, [value], name=value, **attrs)
        set_props(node, {ROLE: role, OWNER: owner})
        self.nodes.append(node)
        return value
