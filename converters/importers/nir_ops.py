"""The talon op SumPool2d to its primitive (LI, Integrator, CubaLIF and Threshold are imported by their op specs:
converters.talon_ops)."""

from __future__ import annotations

from talon.ir import SumPool2d

from .context import INTS, NodeContext, Unsupported
from .registry import importer

DOMAIN = "talon"


@importer("SumPool2d", domain=DOMAIN)
def sum_pool(ctx: NodeContext) -> SumPool2d:
    """SumPool2d(X) with symmetric pads."""
    pads = list(ctx.attr("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise Unsupported(f"asymmetric pads {pads}")
    return SumPool2d(kernel_size=ctx.required("kernel_shape", INTS), stride=ctx.attr("strides", [1, 1]), padding=pads[:2])
