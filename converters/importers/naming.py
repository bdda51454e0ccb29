"""IR node names from the module names exporters record (DESIGN.md), else from ONNX node names.

Dynamo exports: ``metadata_props["pkg.torch.onnx.name_scopes"]`` lists the module scopes and ends with
the FX node. Legacy exports name nodes ``/block/conv/Conv``. A node owned by a leaf module takes the
module's qualified name (``fc1``, ``block.conv``); a functional call inside a container (or the root)
takes the container's name plus a stem from the IR type (``relu``, ``add``, ``cat``, ``block.add``).
Names are made unique with ``_1``, ``_2`` in graph order.
"""

from __future__ import annotations

import ast
import re
from typing import Iterable

import onnx_ir as ir

SCOPES_KEY = "pkg.torch.onnx.name_scopes"
RULE_KEY = "pkg.onnxscript.rewriter.rule_name"  # set by onnxscript's rewriter on the nodes a rule made
_GENERATED = re.compile(r"node(_[A-Za-z]+)*(_\d+)?")  # names onnx_ir/onnxscript passes give new nodes
_STEMS = {"Skip": "add", "Concat": "cat", "Affine": "linear", "SpikingAffine": "linear", "ChannelSplit": "split",
          "MaxPool2d": "max_pool2d", "AvgPool2d": "avg_pool2d"}


def stem(type_name: str) -> str:
    """A stable name for a functional call producing an IR node of this type."""
    return _STEMS.get(type_name, type_name.lower())


def scope_of(node: ir.Node) -> list[str] | None:
    """Module qualified names from the root ('') to the owning module, or None when the exporter kept none."""
    raw = node.metadata_props.get(SCOPES_KEY)
    if raw:
        try:
            scopes = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            scopes = None
        if isinstance(scopes, (list, tuple)) and len(scopes) >= 2 and all(isinstance(s, str) for s in scopes):
            return list(scopes[:-1])
    if node.name and node.name.startswith("/"):
        return legacy_scope(node.name.strip("/").split("/")[:-1])
    return None


def legacy_scope(parts: list[str]) -> list[str]:
    """Qualified names from the legacy exporter's path parts: each is an attribute name, except that a
    Sequential's child is written `<its attribute>.<index>` (so '/layer1/layer1.0/conv1' is layer1.0.conv1)."""
    scope, parent, last = [""], "", None
    for part in parts:
        if last is None or not part.startswith(last + "."):
            parent = scope[-1]
        scope.append(f"{parent}.{part}" if parent else part)
        last = part
    return scope


def folded_conv_owner(node: ir.Node) -> str | None:
    """The module of a Conv that a BatchNorm was folded into: the rewrite keeps the BatchNorm's scope on the node
    but names the folded weight after the convolution's (``conv.weight``)."""
    if node.metadata_props.get(RULE_KEY) != "FuseBatchNormIntoConv" or len(node.inputs) < 2 or node.inputs[1] is None:
        return None
    weight = node.inputs[1].name or ""
    return sanitize(weight[: -len(".weight")]) or None if weight.endswith(".weight") else None


def sanitize(name: str) -> str:
    """A name usable as an HDF5 group name: no '/', no leading or trailing dots."""
    return name.replace("/", ".").strip(".")


class Namer:
    """Assigns unique, stable IR node names."""

    def __init__(self, nodes: Iterable[ir.Node], reserved: Iterable[str] = ()):
        self._scopes = {n: scope_of(n) for n in nodes}
        self.containers = {s for scope in self._scopes.values() if scope for s in scope[:-1]}
        self.used: set[str] = set(reserved)
        self._next: dict[str, int] = {}

    def base(self, node: ir.Node, type_name: str) -> str:
        """The name an IR node of type_name made from this ONNX node should have, before deduplication."""
        folded = folded_conv_owner(node)
        if folded:
            return folded
        scope = self._scopes.get(node)
        if scope is None:
            scope = scope_of(node)
        if scope is None:
            name = sanitize(node.name or "")
            return stem(type_name) if not name or _GENERATED.fullmatch(name) else name
        owner = scope[-1]
        if owner and owner not in self.containers:
            return owner
        return f"{owner}.{stem(type_name)}" if owner else stem(type_name)

    def unique(self, name: str) -> str:
        """name, or name_1, name_2, ... whichever is free first; the result is reserved."""
        i = self._next.get(name, 0)
        candidate = name if i == 0 else f"{name}_{i}"
        while candidate in self.used:
            i += 1
            candidate = f"{name}_{i}"
        self._next[name] = i + 1
        self.used.add(candidate)
        return candidate
