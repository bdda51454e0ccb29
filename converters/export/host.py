"""HostRegion -> its ONNX subgraph inlined: the region's nodes and initializers placed in the exported graph under
the prefix `<node>/` (names stay unique), wired to the node's inputs and outputs by Identity nodes.

The main node, named after the IR node, is a Shape of the initializer `<node>.model` holding the region's
`model` bytes (its output is unused; onnxruntime drops it): it records the region exactly, so onnx_to_ir restores
the HostRegion node rather than the inlined ops, and gives that initializer a reader (onnxruntime warns about
initializers no node reads). Output i is `<node>:<i>`, as for every multi-output node.
"""

from __future__ import annotations

import onnx
import onnx.version_converter
from onnx import helper as h
from onnx import numpy_helper

from onnx_ops import DOMAIN
from talon.ir.primitives import HostRegion

from ..errors import ConversionError
from ..host_model import region_model
from .context import OWNER, ROLE, EmitContext, set_props
from .registry import register


def _at_opset(proto: onnx.ModelProto, opset: int, name: str) -> onnx.ModelProto:
    """The region's model at the exported model's default-domain opset (onnx's version converter)."""
    current = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), opset)
    if current == opset:
        return proto
    try:
        return onnx.version_converter.convert_version(proto, opset)
    except Exception as exc:  # the converter raises RuntimeError/ValidationError for ops it cannot adapt
        raise ConversionError(f"HostRegion {name!r}: its opset {current} subgraph cannot be converted to opset "
                              f"{opset}: {exc}; export with opset={current}") from exc


def _aux(ctx: EmitContext, owner: str, node: onnx.NodeProto) -> None:
    set_props(node, {ROLE: "aux", OWNER: owner})
    ctx.nodes.append(node)


@register(HostRegion)
def emit_host_region(ctx: EmitContext, name: str, node: HostRegion) -> None:
    proto = _at_opset(region_model(node, name), ctx.opset, name)
    graph = onnx.compose.add_prefix_graph(proto.graph, f"{name}/")
    for i, (outer, inner) in enumerate(zip(ctx.inputs_of(name), graph.input)):
        _aux(ctx, name, h.make_node("Identity", [outer], [inner.name], name=f"{name}/input.{i}"))
    for inner in graph.node:
        _aux(ctx, name, inner)
    ctx.initializers.extend(graph.initializer)
    for opset in proto.opset_import:
        if opset.domain not in ("", "ai.onnx"):
            ctx.domains[opset.domain] = opset.version
    known = {(f.domain, f.name) for f in ctx.functions}
    ctx.functions.extend(f for f in proto.functions if f.domain != DOMAIN and (f.domain, f.name) not in known)
    stored = f"{name}.model"
    ctx.initializers.append(numpy_helper.from_array(node.model, stored))
    ctx.record(name, "model", stored)
    ctx.emit(name, "Shape", [stored], [f"{name}/model.size"])
    for i, inner in enumerate(graph.output):
        _aux(ctx, name, h.make_node("Identity", [inner.name], [ctx.output(name, i)], name=f"{name}/output.{i}"))
