"""Stateful spiking neurons: LIF and IF (dynamics in docs: dt = 1, reset to zero, spike at v >= threshold)."""

from __future__ import annotations

import dataclasses

from typing import ClassVar, Sequence

import numpy as np

from .base import Node, Shape, numel, param, register_primitive


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
    """Leaky integrate-and-fire: v = beta*v + (1-beta)*(v_leak + r*x), beta = 1 - 1/tau; spike at v >= v_threshold."""

    tau: np.ndarray = param("array")
    r: np.ndarray = param("array")
    v_leak: np.ndarray = param("array")
    v_threshold: np.ndarray = param("array")

    def validate(self) -> None:
        super().validate()
        if not np.all(np.asarray(self.tau, dtype=np.float64) > 0):
            raise self.fail("tau", "must be positive everywhere")


@register_primitive
class IF(_Neuron):
    """Integrate-and-fire: v = v + r*x; spike at v >= v_threshold, then reset to zero."""

    r: np.ndarray = param("array")
    v_threshold: np.ndarray = param("array")
