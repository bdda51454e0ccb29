"""The one registry of ONNX importers, keyed by (domain, op type, opset range), and of fusion matchers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import onnx_ir as ir

from talon.ir.errors import RegistryError

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

    def overlaps(self, other: "Importer") -> bool:
        """True when both importers handle some opset of the same op (their opset ranges intersect)."""
        same_op = (self.domain, self.op_type) == (other.domain, other.op_type)
        return same_op and (other.covers(self.since) or self.covers(other.since))


_IMPORTERS: dict[tuple[str, str], list[Importer]] = {}
_FUSIONS: dict[tuple[str, str], list[Callable]] = {}


def importer(
    *op_types: str,
    since: int = 1,
    until: int | None = None,
    domain: str = "",
    data_inputs: Sequence[int] | None = (0,),
    override: bool = False,
) -> Callable[[Callable], Callable]:
    """Decorator: register fn as the importer of op_types for opsets since..until (inclusive).

    An op that already has an importer for one of these opsets is refused (RegistryError) unless override=True,
    which removes the importers it overlaps."""

    def deco(fn: Callable) -> Callable:
        slots = None if data_inputs is None else tuple(data_inputs)
        entries = [Importer(canonical_domain(domain), op, since, until, fn, slots) for op in op_types]
        clashes = [f"{e.domain or 'ai.onnx'}::{e.op_type}" for e in entries
                   if any(e.overlaps(old) for old in _IMPORTERS.get((e.domain, e.op_type), ()))]
        if clashes and not override:
            raise RegistryError(f"an ONNX importer is already registered for {clashes} at opsets {since}.."
                                f"{until or 'newest'}; pass override=True to replace it")
        for entry in entries:
            kept = [old for old in _IMPORTERS.get((entry.domain, entry.op_type), ()) if not entry.overlaps(old)]
            _IMPORTERS[(entry.domain, entry.op_type)] = [*kept, entry]
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


def fusion(op_type: str, domain: str = "", override: bool = False) -> Callable[[Callable], Callable]:
    """Decorator: register a matcher tried at every node of op_type; it returns a Fusion or None.

    A matcher of the same qualified name already registered for op_type is refused (RegistryError) unless
    override=True, which replaces it in place."""

    def deco(fn: Callable) -> Callable:
        matchers = _FUSIONS.setdefault((canonical_domain(domain), op_type), [])
        same = [i for i, old in enumerate(matchers) if _qualified(old) == _qualified(fn)]
        if same and not override:
            raise RegistryError(f"fusion matcher {_qualified(fn)} is already registered for {op_type}; pass "
                                "override=True to replace it")
        if same:
            matchers[same[0]] = fn
        else:
            matchers.append(fn)
        return fn

    return deco


def _qualified(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def fusion_matchers(node: ir.Node) -> list[Callable]:
    """The matchers registered for a node's op type."""
    return _FUSIONS.get((canonical_domain(node.domain), node.op_type), [])
