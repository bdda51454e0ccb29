"""How much of a converted ONNX model is TALON-native: ONNX nodes, parameters and multiply-accumulates, in total
and per host region (see converters.host_region), kept in graph.metadata["conversion_report"].

Counts are over the nodes of the cleaned model that compute its outputs (shape arithmetic that constant folding
removed is not counted). Parameters: elements of floating-point initializers, each counted once; one a host
region reads counts as host. Multiply-accumulates per sample (batch 1) of Conv, ConvTranspose, Gemm and MatMul;
other ops count none.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import onnx_ir as ir

from .importers.context import constant, dims

MAC_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
REPORT_KEY = "conversion_report"  # the graph.metadata key onnx_to_ir(host_fallback=True) stores the report under


@dataclass(frozen=True)
class Counts:
    """ONNX nodes, parameters and multiply-accumulates of a set of nodes, with the nodes' op types."""

    nodes: int = 0
    params: int = 0
    macs: int = 0
    op_types: Mapping[str, int] = field(default_factory=dict)


def count_model(nodes: Iterable[ir.Node]) -> Counts:
    """Counts of the given ONNX nodes (each initializer counted once)."""
    nodes = list(nodes)
    weights = {id(v): v for n in nodes for v in n.inputs
               if v is not None and v.const_value is not None and v.const_value.dtype.is_floating_point()}
    params = sum(math.prod(int(d) for d in v.const_value.shape) for v in weights.values())
    op_types = Counter(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}" for n in nodes)
    return Counts(len(nodes), params, sum(_macs(n) for n in nodes), dict(sorted(op_types.items())))


def _static(value: ir.Value | None) -> tuple[int, ...] | None:
    """A value's shape with the batch (dim 0) counted as 1; None unless every other dim is known."""
    shape = dims(value)
    if not shape or any(d is None for d in shape[1:]):
        return None
    return (1, *shape[1:])


def _macs(node: ir.Node) -> int:
    """Multiply-accumulates of one node for one sample (0 for other ops or unknown shapes)."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in MAC_OPS or len(node.inputs) < 2:
        return 0
    out, a = _static(node.outputs[0]), _static(node.inputs[0])
    weight = constant(node.inputs[1])
    w_shape = tuple(weight.shape) if weight is not None else _static(node.inputs[1])
    if out is None or a is None or w_shape is None:
        return 0
    if node.op_type == "Conv":
        return math.prod(out) * math.prod(w_shape[1:])
    if node.op_type == "ConvTranspose":
        return math.prod(a) * math.prod(w_shape[1:])
    if node.op_type == "Gemm":
        trans_a = node.attributes.get("transA")
        k = a[0] if trans_a is not None and trans_a.value else a[-1]
        return math.prod(out) * int(k)
    return math.prod(out) * int(a[-1])  # MatMul: [.., M, K] x [.., K, N]


@dataclass(frozen=True)
class RegionReport:
    """One host region: its IR node name and what it holds."""

    name: str
    counts: Counts


@dataclass(frozen=True)
class ConversionReport:
    """The whole model's counts, the TALON-native part and every host region."""

    total: Counts
    native: Counts
    regions: tuple[RegionReport, ...] = ()

    @classmethod
    def of(cls, total: Counts, regions: list[RegionReport], host: Counts | None = None) -> "ConversionReport":
        """The report from the model's counts, its regions' and the union of the regions' (`host`)."""
        host = host or Counts()
        native = Counts(total.nodes - host.nodes, total.params - host.params, total.macs - host.macs,
                        {k: v - host.op_types.get(k, 0) for k, v in total.op_types.items()
                         if v - host.op_types.get(k, 0)})
        return cls(total, native, tuple(regions))

    @property
    def is_native(self) -> bool:
        """True when no host region was needed."""
        return not self.regions

    def share(self, what: str) -> float:
        """The native share (0..1) of 'nodes', 'params' or 'macs' (1.0 for an empty total)."""
        total = getattr(self.total, what)
        return getattr(self.native, what) / total if total else 1.0

    def to_metadata(self) -> dict[str, Any]:
        """The report as graph metadata (nested dicts of ints and strings: they survive .t1c and ONNX exactly)."""

        def counts(c: Counts, op_types: bool) -> dict[str, Any]:
            out: dict[str, Any] = {"nodes": c.nodes, "params": c.params, "macs": c.macs}
            if op_types:
                out["op_types"] = dict(c.op_types)
            return out

        return {"total": counts(self.total, False), "native": counts(self.native, False),
                "host_regions": {r.name: counts(r.counts, True) for r in self.regions}}

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> "ConversionReport":
        """The report stored by to_metadata."""

        def counts(d: Mapping[str, Any]) -> Counts:
            return Counts(int(d["nodes"]), int(d["params"]), int(d["macs"]),
                          {str(k): int(v) for k, v in dict(d.get("op_types", {})).items()})

        regions = tuple(RegionReport(name, counts(d)) for name, d in dict(meta.get("host_regions", {})).items())
        return cls(counts(meta["total"]), counts(meta["native"]), regions)

    def lines(self) -> list[str]:
        """A short human-readable summary: the native shares, then one line per host region."""
        out = [f"TALON-native: {self.native.nodes}/{self.total.nodes} ONNX nodes ({self.share('nodes'):.1%}), "
               f"{self.native.params}/{self.total.params} parameters ({self.share('params'):.1%}), "
               f"{self.native.macs}/{self.total.macs} MACs ({self.share('macs'):.1%})"]
        for r in self.regions:
            ops = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in r.counts.op_types.items())
            out.append(f"host region {r.name}: {r.counts.nodes} nodes ({ops}), {r.counts.params} parameters, "
                       f"{r.counts.macs} MACs")
        return out
