"""The one registry of IR -> ONNX emitters, keyed by IR primitive class."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from talon.errors import DeclarationError
from talon.ir.primitives import Node

if TYPE_CHECKING:
    from .context import EmitContext

Emitter = Callable[["EmitContext", str, Node], None]
EMITTERS: dict[type[Node], Emitter] = {}


def register(*classes: type[Node]) -> Callable[[Emitter], Emitter]:
    """Decorator: `fn(ctx, name, node)` emits the ONNX nodes and initializers for nodes of `classes`."""

    def deco(fn: Emitter) -> Emitter:
        for cls in classes:
            if cls in EMITTERS:
                raise DeclarationError(f"an ONNX emitter for {cls.__name__} is already registered")
            EMITTERS[cls] = fn
        return fn

    return deco


def emitter_for(node: Node) -> Emitter | None:
    """The emitter registered for the node's exact class (None when there is none)."""
    return EMITTERS.get(type(node))
