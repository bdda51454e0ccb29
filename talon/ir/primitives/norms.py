"""Normalisation and region markers: BatchNorm1d/2d (running statistics), LayerNorm, Dropout, HybridRegion."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Sequence

import numpy as np

from .base import Node, Shape, check_choice, check_positive, check_shape, param, register_primitive


@dataclasses.dataclass(eq=False, repr=False)
class _BatchNorm(Node):
    """Inference batch norm over dim 1 (channels): (x - mean) / sqrt(var + eps) * weight + bias."""

    spatial_ranks: ClassVar[tuple[int, ...]] = ()
    num_features: int = param("int")
    running_mean: np.ndarray = param("array")
    running_var: np.ndarray = param("array")
    weight: np.ndarray = param("array", None)
    bias: np.ndarray = param("array", None)
    eps: float = param("float", 1e-5)
    momentum: float = param("float", 0.1)

    def validate(self) -> None:
        check_positive(self, "num_features", self.num_features)
        n = (self.num_features,)
        if self.weight is None:
            self.weight = np.ones(n, dtype=self.running_mean.dtype)
        if self.bias is None:
            self.bias = np.zeros(n, dtype=self.running_mean.dtype)
        for name in ("weight", "bias", "running_mean", "running_var"):
            check_shape(self, name, getattr(self, name), n)
        if self.eps <= 0:
            raise self.fail("eps", f"must be positive, got {self.eps}")

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        if len(shape) not in self.spatial_ranks or shape[0] != self.num_features:
            raise self.fail("num_features", f"expects {self.num_features} channels on dim 1, got input shape {shape}")
        return [shape]


@register_primitive
class BatchNorm1d(_BatchNorm):
    """Batch norm over (C,) or (C, L) inputs."""

    spatial_ranks = (1, 2)


@register_primitive
class BatchNorm2d(_BatchNorm):
    """Batch norm over (C, H, W) inputs."""

    spatial_ranks = (3,)


@register_primitive
class LayerNorm(Node):
    """Layer norm over the trailing `normalized_shape` dims, with elementwise weight and bias."""

    normalized_shape: tuple = param("ints")
    weight: np.ndarray = param("array", None)
    bias: np.ndarray = param("array", None)
    eps: float = param("float", 1e-5)

    def validate(self) -> None:
        check_positive(self, "normalized_shape", self.normalized_shape)
        if self.weight is None:
            self.weight = np.ones(self.normalized_shape, dtype=np.float32)
        if self.bias is None:
            self.bias = np.zeros(self.normalized_shape, dtype=self.weight.dtype)
        check_shape(self, "weight", self.weight, self.normalized_shape)
        check_shape(self, "bias", self.bias, self.normalized_shape)
        if self.eps <= 0:
            raise self.fail("eps", f"must be positive, got {self.eps}")

    def output_shapes(self, input_shapes: Sequence[Shape]) -> list[Shape]:
        shape = self._single_input(input_shapes)
        n = len(self.normalized_shape)
        if tuple(shape[-n:]) != tuple(self.normalized_shape):
            raise self.fail("normalized_shape", f"{self.normalized_shape} does not end input shape {shape}")
        return [shape]


@register_primitive
class Dropout(Node):
    """Dropout with probability p; the identity at inference (executors run in eval mode)."""

    features: int = param("dims", None)
    p: float = param("float", 0.5)

    def validate(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise self.fail("p", f"must be in [0, 1], got {self.p}")


@register_primitive
class HybridRegion(Node):
    """Marks the start of an ANN or SNN region; the identity at run time."""

    mode: str = param("str", "snn")
    features: int = param("dims", None)
    name: str = param("str", None)

    def validate(self) -> None:
        check_choice(self, "mode", self.mode, ("ann", "snn"))
