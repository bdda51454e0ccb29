"""The talon domain's ops (LIF, IF, SpikingAffine, ChannelSplit, SepConv2d, HybridRegion) to their primitives,
and opaque user modules (bridge.to_ir's custom_map) to the IR node given for them."""

from __future__ import annotations

from talon.ir import IF, LIF, ChannelSplit, HybridRegion, SepConv2d, SpikingAffine
from talon.ir.primitives import Node
from talon.ir.primitives.neurons import RESET_MODES

from .context import INTS, STRING, Emit, NodeContext, Unsupported
from .registry import importer

DOMAIN = "talon"
CUSTOM_DOMAIN = "talon.custom"  # opaque user modules exported by bridge.to_ir
CUSTOM_OP = "Module"  # attribute `key`: the module's qualified name, a key of Options.custom_nodes


@importer("LIF", domain=DOMAIN)
def lif(ctx: NodeContext) -> LIF:
    """LIF(X, V, tau, r, v_leak, v_threshold) -> (S, V_next); V and V_next are the state, not data."""
    tau, r, v_leak, v_threshold = (ctx.const(i, n) for i, n in enumerate(("tau", "r", "v_leak", "v_threshold"), 2))
    return LIF(tau=tau, r=r, v_leak=v_leak, v_threshold=v_threshold, reset_mode=_reset_mode(ctx))


@importer("IF", domain=DOMAIN)
def if_neuron(ctx: NodeContext) -> IF:
    """IF(X, V, r, v_threshold) -> (S, V_next)."""
    return IF(r=ctx.const(2, "r"), v_threshold=ctx.const(3, "v_threshold"), reset_mode=_reset_mode(ctx))


def _reset_mode(ctx: NodeContext) -> str:
    """The reset_mode attribute ('zero' when absent); other values are refused naming them."""
    mode = ctx.attr("reset_mode", "zero", kind=STRING)
    if mode not in RESET_MODES:
        raise Unsupported(f"reset_mode {mode!r} (TALON neurons reset by {' or '.join(RESET_MODES)})")
    return mode


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
