"""Stateful spiking neurons: LIF and IF (dynamics in docs: dt = 1, spike at v >= threshold, then reset).

`reset_mode` 'zero' (the default, the established behaviour) sets the membrane to 0 after a spike;
'subtract' lowers it by v_threshold, keeping the residue above threshold (what rate-coded ANN-to-SNN
conversion needs). A .t1c file stores a subtract-reset neuron under its own type name (`STORED_TYPES`).
"""

from __future__ import annotations

import dataclasses

from typing import ClassVar, Sequence

import numpy as np

from .base import Node, Shape, check_choice, numel, param, register_primitive

RESET_MODES = ("zero", "subtract")


class _Neuron(Node):
    """Shared checks: every parameter array has one shape, which must fit the input.

    `param_names` is derived from the class's own array fields, in declaration order."""

    stateful = True
    param_names: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        own = tuple(name for name, value in vars(cls).items()
                    if isinstance(value, dataclasses.Field) and value.metadata.get("kind") == "array")
        if own:
            cls.param_names = own

    def validate(self) -> None:
        reset_mode = getattr(self, "reset_mode", None)
        if reset_mode is not None:
            check_choice(self, "reset_mode", reset_mode, RESET_MODES)
        first = self.param_names[0]
        shape = getattr(self, first).shape
        for name in self.param_names[1:]:
            if getattr(self, name).shape != shape:
                raise self.fail(name, f"shape {getattr(self, name).shape} differs from {first}'s {shape}")

    @property
    def neuron_shape(self) -> Shape:
        return tuple(getattr(self, self.param_names[0]).shape)

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        params = self.neuron_shape
        fits = params == tuple(shape) or numel(params) in (1, numel(shape))
        if not fits:
            try:
                fits = np.broadcast_shapes(params, tuple(shape)) == tuple(shape)
            except ValueError:
                fits = False
        if not fits:
            raise self.fail(self.param_names[0], f"parameter shape {params} does not fit input shape {tuple(shape)}")
        return [tuple(shape)]


@register_primitive
class LIF(_Neuron):
    """Leaky integrate-and-fire: v = beta*v + (1-beta)*(v_leak + r*x), beta = 1 - 1/tau; spike at v >= v_threshold,
    then v = 0 (reset_mode 'zero') or v - v_threshold ('subtract')."""

    stored_types: ClassVar[dict[str, dict]] = {"LIF": {"reset_mode": "zero"}, "LIFSubtract": {"reset_mode": "subtract"}}

    tau: np.ndarray = param("array")
    r: np.ndarray = param("array")
    v_leak: np.ndarray = param("array")
    v_threshold: np.ndarray = param("array")
    reset_mode: str = param("str", "zero")

    def validate(self) -> None:
        super().validate()
        if not np.all(np.asarray(self.tau, dtype=np.float64) > 0):
            raise self.fail("tau", "must be positive everywhere")


@register_primitive
class IF(_Neuron):
    """Integrate-and-fire: v = v + r*x; spike at v >= v_threshold, then v = 0 (reset_mode 'zero') or
    v - v_threshold ('subtract')."""

    stored_types: ClassVar[dict[str, dict]] = {"IF": {"reset_mode": "zero"}, "IFSubtract": {"reset_mode": "subtract"}}

    r: np.ndarray = param("array")
    v_threshold: np.ndarray = param("array")
    reset_mode: str = param("str", "zero")
