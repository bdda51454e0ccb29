"""The talon domain's ops (SpikingAffine, ChannelSplit, SepConv2d, HybridRegion) to their primitives, the importer
of any primitive that is one talon op (`spec_importer`: LIF, IF, LI, ...; see converters.talon_ops), and opaque
user modules (bridge.to_ir's custom_map) to the IR node given for them."""

from __future__ import annotations

from onnx_ops import op_spec
from talon.ir import ChannelSplit, HybridRegion, SepConv2d, SpikingAffine
from talon.ir.primitives import Node, primitive_fields

from .context import INTS, STRING, Emit, NodeContext, Unsupported
from .registry import importer

DOMAIN = "talon"
CUSTOM_DOMAIN = "talon.custom"  # opaque user modules exported by bridge.to_ir
CUSTOM_OP = "Module"  # attribute `key`: the module's qualified name, a key of Options.custom_nodes


def spec_importer(cls: type[Node]):
    """An importer building `cls` from the talon op of its name: the constant inputs after the data and the state
    items (its op spec's) become the array fields of the same names, the op's attributes the fields they name (a
    string outside the spec's choices refuses the node, naming the attribute)."""

    def build(ctx: NodeContext) -> Node:
        spec = op_spec(ctx.node.op_type)
        first = 1 + len(spec.state)
        fields = {f.name for f in primitive_fields(cls)}
        params = {n: ctx.const(i, n) for i, n in enumerate(spec.inputs[first:], first)}
        attrs = {a.name: ctx.attr(a.name, a.default) for a in spec.attributes if a.name in fields}
        for a in spec.attributes:
            if a.choices and a.name in attrs and attrs[a.name] not in a.choices:
                raise Unsupported(f"attribute {a.name} {attrs[a.name]!r} is not one of {list(a.choices)}")
        return cls(**params, **attrs)

    build.__doc__ = f"talon {cls.__name__} -> IR {cls.__name__} (converters.register_talon_op)"
    return build


@importer("SpikingAffine", domain=DOMAIN)
def spiking_affine(ctx: NodeContext) -> SpikingAffine:
    """SpikingAffine(X, W, B) with its quantisation attributes."""
    return SpikingAffine(weight=ctx.const(1, "W"), bias=ctx.optional_const(2, "B"),
                         weight_bits=ctx.attr("weight_bits", 8), accumulator_bits=ctx.attr("accumulator_bits", 16),
                         spike_mode=ctx.attr("spike_mode", "binary"))


@importer("ChannelSplit", domain=DOMAIN)
def channel_split(ctx: NodeContext) -> ChannelSplit:
    """ChannelSplit(X) -> Y_0..Y_n-1 along `axis`."""
    return ChannelSplit(split_sections=ctx.required("split_sections", INTS), dim=ctx.attr("axis", 1))


@importer("SepConv2d", domain=DOMAIN)
def sep_conv(ctx: NodeContext) -> SepConv2d:
    """SepConv2d(X, DW, PW, DB, PB) with symmetric depthwise pads."""
    pads = list(ctx.attr("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise Unsupported(f"asymmetric depthwise pads {pads}")
    return SepConv2d(depthwise_weight=ctx.const(1, "DW"), pointwise_weight=ctx.const(2, "PW"),
                     depthwise_bias=ctx.optional_const(3, "DB"), pointwise_bias=ctx.optional_const(4, "PB"),
                     stride=ctx.attr("strides", [1, 1]), padding=pads[:2], dilation=ctx.attr("dilations", [1, 1]))


@importer("HybridRegion", domain=DOMAIN)
def hybrid_region(ctx: NodeContext) -> HybridRegion:
    """HybridRegion(X) marking an ANN or SNN region."""
    return HybridRegion(mode=ctx.attr("mode", "snn"), name=ctx.attr("region_name", kind=STRING))


@importer(CUSTOM_OP, domain=CUSTOM_DOMAIN)
def custom_module(ctx: NodeContext) -> Emit:
    """An opaque user module: the IR node bridge.to_ir's custom_map made for it, named after the module."""
    key = ctx.required("key", STRING)
    node: Node | None = ctx.options.custom_nodes.get(key)
    if node is None:
        raise Unsupported(f"no IR node was given for custom module {key!r}")
    return Emit([("", node)], name=key)
