"""Stateful spiking neurons: LIF and IF (dynamics in docs: dt = 1, reset to zero, spike at v >= threshold)."""

from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np

from .base import Node, Shape, numel, param, register_primitive


class _Neuron(Node):
    """Shared checks: every parameter array has one shape, which must fit the input."""

    stateful = True
    param_names: ClassVar[tuple[str, ...]] = ()

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

    param_names = ("tau", "r", "v_leak", "v_threshold")
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

    param_names = ("r", "v_threshold")
    r: np.ndarray = param("array")
    v_threshold: np.ndarray = param("array")
