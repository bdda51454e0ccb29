"""The Node base class, declarative field kinds and the primitive registry.

Every primitive is a dataclass whose fields are declared with :func:`param`, giving each a
*kind* (array, ints, int, float, bool, str, ...). Construction canonicalises and validates the
fields; serialization, equality and the other layers read the same declarations, so a new
primitive is one small class plus ``@register_primitive``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from ...errors import DeclarationError, PrimitiveError, RegistryError

Shape = tuple[int, ...]

# Field kinds. "ints" is a tuple of ints (written as 1-D int64), "array" a numpy array that keeps
# its dtype, "dims" an int or a tuple of ints (feature counts), the rest are Python scalars.
KINDS = ("array", "ints", "int", "float", "bool", "str", "dims")

FLOAT32_MAX = float(np.finfo(np.float32).max)  # "float" fields beyond it overflow every float32 executor
MAX_NUMEL = 2**28  # elements of the largest tensor (per sample) shape inference accepts: 1 GiB of float32 (documented)

RESERVED_FIELDS = ("type", "metadata")  # names the .t1c node group uses itself

_PRIMITIVES: dict[str, type["Node"]] = {}
_STORED: dict[str, type["Node"]] = {}  # .t1c type names of primitives' stored_types variants


def param(
    kind: str, default: Any = dataclasses.MISSING, *, optional: bool = False, length: int | None = None,
    infinite: bool = False,
):
    """Declare a primitive field of a given kind; `length` expands a scalar to an n-tuple for "ints";
    `infinite` lets a "float" field be +-inf (a pad value), other floats must be finite float32 values."""
    if kind not in KINDS:
        raise DeclarationError(f"unknown field kind {kind!r}; expected one of {KINDS}")
    meta = {"kind": kind, "optional": optional or default is None, "length": length, "infinite": infinite}
    if isinstance(default, (list, dict, np.ndarray)):
        raise DeclarationError("mutable defaults are not allowed")
    return dataclasses.field(default=default, metadata=meta)


def register_primitive(cls: type["Node"] | None = None, *, override: bool = False):
    """Class decorator: make a primitive known by its class name to readers, writers and converters.

    ``@register_primitive`` or ``@register_primitive(override=True)``; a name already registered is refused
    (RegistryError) unless override=True."""
    if cls is None:
        return lambda c: register_primitive(c, override=override)
    if not (isinstance(cls, type) and issubclass(cls, Node)):
        raise RegistryError("register_primitive expects a subclass of talon.ir.Node")
    if cls.__name__ in _PRIMITIVES and not override:
        raise RegistryError(f"a primitive named {cls.__name__} is already registered "
                            f"({_PRIMITIVES[cls.__name__].__module__}); pass override=True to replace it")
    if "__dataclass_fields__" not in cls.__dict__:
        cls = dataclasses.dataclass(eq=False, repr=False)(cls)
    for f in primitive_fields(cls):
        if f.name in RESERVED_FIELDS or "kind" not in f.metadata:
            raise RegistryError(
                f"{cls.__name__}.{f.name}: declare fields with param(kind, ...) and avoid the names {RESERVED_FIELDS}"
            )
    _PRIMITIVES[cls.__name__] = cls
    _STORED.update({name: cls for name in cls.stored_types if name != cls.__name__})
    return cls


def get_primitive(type_name: str) -> type["Node"]:
    """The registered primitive class for a type name; KeyError when unknown."""
    return _PRIMITIVES[type_name]


def stored_type(node: "Node") -> tuple[str, tuple[str, ...]]:
    """The .t1c type name of a node and the fields that name implies (left out of the file)."""
    for name, fixed in type(node).stored_types.items():
        if all(values_equal(getattr(node, k), v) for k, v in fixed.items()):
            return name, tuple(fixed)
    return type(node).__name__, ()


def primitive_for_stored_type(type_name: str) -> tuple[type["Node"], dict[str, Any]]:
    """The primitive class a .t1c type name stands for and the field values it implies; KeyError when unknown."""
    cls = _PRIMITIVES.get(type_name) or _STORED[type_name]
    return cls, dict(cls.stored_types.get(type_name, {}))


def list_primitives() -> list[str]:
    """Names of every registered primitive, sorted."""
    return sorted(_PRIMITIVES)


def primitive_fields(cls_or_node) -> list[dataclasses.Field]:
    """The declared data fields of a primitive (metadata excluded), in declaration order."""
    return [f for f in dataclasses.fields(cls_or_node) if f.name != "metadata"]


def _canonical(primitive: str, f: dataclasses.Field, value: Any) -> Any:
    kind, optional, length = f.metadata["kind"], f.metadata["optional"], f.metadata["length"]
    if value is None:
        if optional:
            return None
        raise PrimitiveError(primitive, f.name, "is required")
    try:
        if kind == "array":
            arr = np.asarray(value)
            if arr.dtype == object or arr.dtype.kind not in "biuf":
                raise PrimitiveError(primitive, f.name, f"expected a numeric array, got dtype {arr.dtype}")
            return arr
        if kind == "ints":
            arr = np.asarray(value)
            if arr.ndim == 0:
                arr = np.full(length or 1, arr)
            if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "biu" and not np.all(np.mod(arr, 1) == 0)):
                raise PrimitiveError(primitive, f.name, f"expected a sequence of ints, got {value!r}")
            out = tuple(int(v) for v in arr)
            if length is not None and len(out) != length:
                raise PrimitiveError(primitive, f.name, f"expected {length} ints, got {len(out)}")
            return out
        if kind == "dims":
            arr = np.asarray(value)
            if arr.ndim == 0:
                return _as_int(primitive, f.name, value)
            return tuple(_as_int(primitive, f.name, v) for v in arr.reshape(-1))
        if kind == "int":
            return _as_int(primitive, f.name, value)
        if kind == "float":
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                if not (isinstance(value, np.ndarray) and value.ndim == 0):
                    raise PrimitiveError(primitive, f.name, f"expected a number, got {value!r}")
            number = float(value)
            if not (abs(number) <= FLOAT32_MAX or math.isinf(number) and f.metadata["infinite"]):  # NaN too
                limit = "within" if f.metadata["infinite"] else "finite and within"
                raise PrimitiveError(primitive, f.name, f"must be {limit} float32 range, got {number}")
            return number
        if kind == "bool":
            if not isinstance(value, (bool, np.bool_)) and not (isinstance(value, (int, np.integer)) and value in (0, 1)):
                raise PrimitiveError(primitive, f.name, f"expected a bool, got {value!r}")
            return bool(value)
        if kind == "str":
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            if not isinstance(value, str):
                raise PrimitiveError(primitive, f.name, f"expected a string, got {value!r}")
            return value
    except PrimitiveError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise PrimitiveError(primitive, f.name, f"cannot interpret {value!r}: {exc}") from None
    raise AssertionError(kind)


def _as_int(primitive: str, name: str, value: Any) -> int:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        raise PrimitiveError(primitive, name, f"expected an int, got {value!r}")
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        raise PrimitiveError(primitive, name, f"expected an int, got {value!r}")
    if not isinstance(value, (int, float, np.integer, np.floating)):
        raise PrimitiveError(primitive, name, f"expected an int, got {value!r}")
    return int(value)


def values_equal(a: Any, b: Any) -> bool:
    """Exact equality for field and metadata values: arrays compare dtype, shape and bits."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)) or list(a) != list(b) and set(a) != set(b):
            return False
        return all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, (float, np.floating)) and math.isnan(a):
        return math.isnan(b)
    return a == b


@dataclasses.dataclass(eq=False, repr=False)
class Node:
    """Base of every TALON IR primitive.

    Subclasses are dataclasses whose fields are declared with :func:`param`. ``metadata`` is a
    free dict (nested dicts, strings, numbers, arrays) kept through files and conversions.
    """

    multi_output: ClassVar[bool] = False  # ChannelSplit-like nodes hand output i to outgoing edge i
    merge: ClassVar[bool] = False  # Concat-like nodes combine inputs in edge order instead of summing
    stateful: ClassVar[bool] = False  # neurons carry a membrane across timesteps
    # .t1c type names that stand for this primitive with some fields fixed (those fields are then not stored),
    # so that a reader which does not know a field value refuses the node instead of misreading it
    stored_types: ClassVar[dict[str, dict[str, Any]]] = {}
    metadata: dict = dataclasses.field(default_factory=dict, kw_only=True)

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in primitive_fields(self):
            object.__setattr__(self, f.name, _canonical(name, f, getattr(self, f.name)))
        meta = getattr(self, "metadata", None)
        if meta is None:
            self.metadata = {}
        elif not isinstance(meta, dict):
            raise PrimitiveError(name, "metadata", f"expected a dict, got {type(meta).__name__}")
        self.validate()

    def validate(self) -> None:
        """Check field consistency; raise PrimitiveError naming the field. Subclasses extend it."""

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        """Output shape(s) without batch, from the input shapes (one per incoming edge)."""
        return [self._single_input(input_shapes)]

    def fail(self, field: str, message: str) -> PrimitiveError:
        """A PrimitiveError about one of this node's fields."""
        return PrimitiveError(type(self).__name__, field, message)

    def _single_input(self, input_shapes: Sequence[Shape]) -> Shape:
        shapes = {tuple(s) for s in input_shapes}
        if len(shapes) != 1:
            raise self.fail("inputs", f"expects inputs of one shape (they are summed), got {list(input_shapes)}")
        return shapes.pop()

    def params(self) -> dict[str, Any]:
        """The declared fields as a dict (metadata excluded)."""
        return {f.name: getattr(self, f.name) for f in primitive_fields(self)}

    def num_params(self) -> int:
        """Number of array elements the node holds (its trainable or stored parameters)."""
        return int(sum(v.size for v in self.params().values() if isinstance(v, np.ndarray)))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return values_equal(self.params(), other.params()) and values_equal(self.metadata, other.metadata)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = []
        for key, value in self.params().items():
            if isinstance(value, np.ndarray):
                value = f"array{list(value.shape)}:{value.dtype}"
            else:
                value = repr(value)
            parts.append(f"{key}={value}")
        return f"{type(self).__name__}({', '.join(parts)})"


def check_positive(node: Node, field: str, values: Sequence[int] | int, allow_zero: bool = False) -> None:
    """Raise unless every value is > 0 (>= 0 with allow_zero)."""
    vals = (values,) if isinstance(values, int) else tuple(values)
    bad = [v for v in vals if v < 0 or (v == 0 and not allow_zero)]
    if bad:
        raise node.fail(field, f"must be {'non-negative' if allow_zero else 'positive'}, got {values}")


def check_choice(node: Node, field: str, value: str, choices: Sequence[str]) -> None:
    """Raise unless value is one of the allowed strings."""
    if value not in choices:
        raise node.fail(field, f"must be one of {sorted(choices)}, got {value!r}")


def check_shape(node: Node, field: str, array: np.ndarray | None, shape: Shape) -> None:
    """Raise unless array has exactly the given shape."""
    if array is not None and tuple(array.shape) != tuple(shape):
        raise node.fail(field, f"expected shape {tuple(shape)}, got {tuple(array.shape)}")


def numel(shape: Sequence[int]) -> int:
    """Product of a shape's dims, exact (Python ints: int64 would wrap silently)."""
    return math.prod(int(d) for d in shape)
