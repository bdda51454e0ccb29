"""The talon ops of the NIR-derived primitives (LI, Integrator, CubaLIF, Threshold, SumPool2d) to their primitives;
state inputs (V, I) are state, not data."""

from __future__ import annotations

from talon.ir import LI, CubaLIF, Integrator, SumPool2d, Threshold

from .context import INTS, NodeContext, Unsupported
from .registry import importer

DOMAIN = "talon"


def _consts(ctx: NodeContext, first: int, names: tuple[str, ...]) -> dict:
    """Constant inputs first, first+1, ... as keyword arguments named `names`."""
    return {name: ctx.const(i, name) for i, name in enumerate(names, first)}


@importer("LI", domain=DOMAIN)
def li(ctx: NodeContext) -> LI:
    """LI(X, V, tau, r, v_leak) -> (Y, V_next)."""
    return LI(**_consts(ctx, 2, LI.param_names))


@importer("Integrator", domain=DOMAIN)
def integrator(ctx: NodeContext) -> Integrator:
    """Integrator(X, V, r) -> (Y, V_next)."""
    return Integrator(**_consts(ctx, 2, Integrator.param_names))


@importer("CubaLIF", domain=DOMAIN)
def cuba_lif(ctx: NodeContext) -> CubaLIF:
    """CubaLIF(X, V, I, tau_syn, tau_mem, r, v_leak, v_threshold, w_in) -> (S, V_next, I_next)."""
    return CubaLIF(**_consts(ctx, 3, CubaLIF.param_names))


@importer("Threshold", domain=DOMAIN)
def threshold(ctx: NodeContext) -> Threshold:
    """Threshold(X, threshold) -> Y."""
    return Threshold(threshold=ctx.const(1, "threshold"))


@importer("SumPool2d", domain=DOMAIN)
def sum_pool(ctx: NodeContext) -> SumPool2d:
    """SumPool2d(X) with symmetric pads."""
    pads = list(ctx.attr("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise Unsupported(f"asymmetric pads {pads}")
    return SumPool2d(kernel_size=ctx.required("kernel_shape", INTS), stride=ctx.attr("strides", [1, 1]), padding=pads[:2])
