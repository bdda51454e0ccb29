"""The one registry of ONNX importers, keyed by (domain, op type, opset range), and of fusion matchers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import onnx_ir as ir

DEFAULT_DOMAINS = ("", "ai.onnx")


def canonical_domain(domain: str) -> str:
    """'' for the default ONNX domain (also spelt 'ai.onnx'), the domain itself otherwise."""
    return "" if domain in DEFAULT_DOMAINS else domain


@dataclass(frozen=True)
class Importer:
    """Converts one ONNX node (through a NodeContext) to IR nodes; `data_inputs` are the activation slots
    (None: every input), the others must be constants or state."""

    domain: str
    op_type: str
    since: int
    until: int | None
    fn: Callable
    data_inputs: tuple[int, ...] | None

    def covers(self, opset: int) -> bool:
        """True when this importer handles the given opset version of its op."""
        return self.since <= opset and (self.until is None or opset <= self.until)


_IMPORTERS: dict[tuple[str, str], list[Importer]] = {}
_FUSIONS: dict[tuple[str, str], list[Callable]] = {}


def importer(
    *op_types: str,
    since: int = 1,
    until: int | None = None,
    domain: str = "",
    data_inputs: Sequence[int] | None = (0,),
) -> Callable[[Callable], Callable]:
    """Decorator: register fn as the importer of op_types for opsets since..until (inclusive)."""

    def deco(fn: Callable) -> Callable:
        slots = None if data_inputs is None else tuple(data_inputs)
        for op in op_types:
            entry = Importer(canonical_domain(domain), op, since, until, fn, slots)
            _IMPORTERS.setdefault((entry.domain, op), []).append(entry)
        return fn

    return deco


def lookup(domain: str, op_type: str, opset: int) -> Importer | None:
    """The importer registered for an op at an opset, or None."""
    for entry in _IMPORTERS.get((canonical_domain(domain), op_type), ()):
        if entry.covers(opset):
            return entry
    return None


def registered_ops() -> list[tuple[str, str]]:
    """Every (domain, op type) that has an importer, sorted."""
    return sorted(_IMPORTERS)


def fusion(op_type: str, domain: str = "") -> Callable[[Callable], Callable]:
    """Decorator: register a matcher tried at every node of op_type; it returns a Fusion or None."""

    def deco(fn: Callable) -> Callable:
        _FUSIONS.setdefault((canonical_domain(domain), op_type), []).append(fn)
        return fn

    return deco


def fusion_matchers(node: ir.Node) -> list[Callable]:
    """The matchers registered for a node's op type."""
    return _FUSIONS.get((canonical_domain(node.domain), node.op_type), [])
