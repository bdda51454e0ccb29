"""Every error and warning this project raises on purpose, in one dependency-free hierarchy.

Each error is a :class:`TalonError` and a ``ValueError``, so ``except ValueError`` keeps working for
callers that catch broadly, and ``except TalonError`` catches exactly what this project means to raise.
Every layer (``talon.ir``, ``onnx_ops``, ``converters``, ``talon.bridge``, the CLI) imports from here.

    TalonError
    ├── DeclarationError        a primitive, module, op or converter declared or registered wrongly
    │   ├── RegistryError       a duplicate registration without override=True, or a wrong kind of entry
    │   └── OpSpecError         an inconsistent talon op spec
    ├── PrimitiveError          a node built with an invalid field (names primitive and field)
    ├── GraphError              an invalid graph structure or shapes
    ├── TalonFormatError        an unreadable or unwritable .t1c file (names file, node, field)
    ├── ConversionError         a model that cannot be converted
    │   └── UnsupportedOperatorError   every node without a TALON form, listed at once
    ├── ModelError              an ONNX model onnx_ops cannot load, complete or run
    ├── ExecutorError           an executor called with something it cannot run
    │   ├── InputError          a missing, unknown or wrongly shaped input
    │   └── StateError          an unknown state key or a wrongly shaped state item
    └── CliError                a command-line failure; its message is the one line printed
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


class TalonError(ValueError):
    """Base of every error this project raises on purpose."""


class DeclarationError(TalonError):
    """A primitive, module, op spec or converter entry is declared or registered wrongly (e.g. a duplicate)."""


class RegistryError(DeclarationError):
    """A registration is refused: the key (primitive name, class, op) is already registered and override=True
    was not given, or the entry is not of the kind the registry holds; names the registry and the key."""


class OpSpecError(DeclarationError):
    """A talon op spec that cannot be registered: a duplicate name without override=True, or an inconsistent
    declaration (state items not laid out as the convention says, an unknown attribute kind); names the op."""


class PrimitiveError(TalonError):
    """A primitive was built with an invalid field; names the primitive and the field."""

    def __init__(self, primitive: str, field: str, message: str):
        self.primitive = primitive
        self.field = field
        super().__init__(f"{primitive}.{field}: {message}")


class GraphError(TalonError):
    """A graph's structure is invalid (missing nodes, duplicate edges, cycles, shape mismatches)."""


class TalonFormatError(TalonError):
    """A .t1c file cannot be read or written; names the file and, where it applies, the node and field."""

    def __init__(self, path: str, message: str, node: str | None = None, field: str | None = None):
        self.path = str(path)
        self.node = node
        self.field = field
        where = self.path
        if node is not None:
            where += f": node {node!r}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class ConversionError(TalonError):
    """A model cannot be converted (unreadable file, dynamic feature shapes, unknown extension)."""


@dataclass(frozen=True)
class UnsupportedNode:
    """One node the converter cannot map: where it is (with the torch module that wrote it, when the exporter
    recorded it) and why."""

    op_type: str
    name: str
    domain: str
    opset: int
    reason: str
    module: str | None = None

    @property
    def op(self) -> str:
        """The op type, prefixed by its domain outside the default ONNX domain (`ai.onnx.ml::Scaler`)."""
        return f"{self.domain}::{self.op_type}" if self.domain not in ("", "ai.onnx") else self.op_type

    def describe(self) -> str:
        """One line naming the op, the node, its module, its opset and the reason."""
        module = f", module {self.module!r}" if self.module else ""
        return f"{self.op} (node {self.name!r}{module}, opset {self.opset}): {self.reason}"


HINT = (
    "Hint: TALON IR maps standard layers (Gemm/MatMul+Add with constant weights, Conv, ConvTranspose, "
    "BatchNormalization, LayerNormalization, pooling, activations and gates, products, sums and differences of "
    "activations, constant scales and biases, Flatten/Reshape to flat, channel shuffles, Transpose keeping the "
    "batch first, Slice, Concat, Split, Resize) and the talon domain ops. Replace the listed operations by "
    "supported layers, fold computed constants before export, or for a custom torch module pass custom_map to "
    "bridge.to_ir."
)


EXPORT_HINT = (
    "Hint: register an ONNX exporter for the primitive (converters.export.register), or for a primitive that is "
    "one talon op, its op spec (onnx_ops.register_op) and converters.register_talon_op; see docs/extending.md."
)


class UnsupportedOperatorError(ConversionError):
    """Every node that has no equivalent on the other side (ONNX nodes without TALON IR primitive, or IR nodes
    without ONNX exporter), grouped by op type with counts, with a hint."""

    def __init__(self, nodes: Sequence[UnsupportedNode], hint: str = HINT,
                 title: str = "ONNX node(s) cannot be converted to TALON IR"):
        self.nodes = list(nodes)
        self.hint = hint
        groups: dict[str, list[UnsupportedNode]] = {}
        for n in self.nodes:
            groups.setdefault(n.op, []).append(n)
        lines = [f"{len(self.nodes)} {title} ({', '.join(f'{op} x{len(g)}' for op, g in groups.items())}):"]
        for op, group in groups.items():
            lines.append(f"  {op} ({len(group)}):")
            lines += [f"    - {n.describe()}" for n in group]
        super().__init__("\n".join([*lines, hint]))

    def counts(self) -> dict[str, int]:
        """How many nodes of each op type were refused, in order of first appearance."""
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return counts


class ModelError(TalonError):
    """An ONNX model onnx_ops cannot load, complete or run (not a model, an invalid graph, an unknown talon op,
    refused external data, an input it cannot feed); names the file or model and what is wrong."""


class ExecutorError(TalonError):
    """An executor (torch or onnxruntime) was called with something it cannot run."""


class InputError(ExecutorError):
    """An input is missing, unknown, or of the wrong shape or dtype; names the input and its expected shape."""


class StateError(ExecutorError):
    """A state dict has an unknown key or a state item of the wrong shape; names the node and the expected shape."""


class CliError(TalonError):
    """A user-facing failure of a CLI command; its message is the one line the command prints."""


def require(value: object, types: type | tuple[type, ...], what: str, error: type[TalonError] = TalonError) -> None:
    """Raise `error` naming `what` (e.g. "ir_to_onnx: graph") unless `value` is an instance of `types`.

    Public entry points call this first, so a wrong argument type is a typed error, never an AttributeError."""
    if not isinstance(value, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise error(f"{what} must be of type {names}, got {type(value).__name__}")


class TalonWarning(UserWarning):
    """Base of every warning this project issues."""


class ApproximationWarning(TalonWarning):
    """A node was converted with a small, stated numeric change (e.g. x / c imported as x * (1/c))."""


class NIRConversionWarning(TalonWarning):
    """A NIR node converted with a stated change of behaviour (raised as an error with strict=True)."""


# onnx_ops' historical names for the executor errors; the same classes, so one except clause serves both executors.
OrtModelError = ModelError
OrtInputError = InputError
OrtStateError = StateError
