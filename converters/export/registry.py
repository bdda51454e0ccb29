"""The one registry of IR -> ONNX emitters, keyed by IR primitive class."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from talon.ir.errors import RegistryError
from talon.ir.primitives import Node

if TYPE_CHECKING:
    from .context import EmitContext

Emitter = Callable[["EmitContext", str, Node], None]
EMITTERS: dict[type[Node], Emitter] = {}


def register(*classes: type[Node], override: bool = False) -> Callable[[Emitter], Emitter]:
    """Decorator: `fn(ctx, name, node)` emits the ONNX nodes and initializers for nodes of `classes`.

    A class that already has an emitter is refused (RegistryError) unless override=True."""
    taken = [cls.__name__ for cls in classes if cls in EMITTERS]
    if taken and not override:
        raise RegistryError(f"an ONNX emitter is already registered for {taken}; pass override=True to replace it")

    def deco(fn: Emitter) -> Emitter:
        for cls in classes:
            EMITTERS[cls] = fn
        return fn

    return deco


def emitter_for(node: Node) -> Emitter | None:
    """The emitter registered for the node's exact class (None when there is none)."""
    return EMITTERS.get(type(node))
