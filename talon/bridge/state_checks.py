"""The checks a state given by the caller passes before any executor steps with it (torch bridge)."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from .errors import StateError


def check_state_mapping(state: Any) -> None:
    """StateError unless `state` is None or a mapping (node name -> tensor or tuple of tensors)."""
    if state is not None and not isinstance(state, Mapping):
        raise StateError(f"state must be a dict keyed by stateful node name (or None), got {type(state).__name__}")


def check_state_items(key: str, items: tuple, shape: torch.Size | None) -> None:
    """StateError unless every item of node `key`'s state tuple is a tensor of the membrane's shape `shape`
    (all items of a node, membrane and synaptic current alike, are [batch, *neuron shape])."""
    for k, item in enumerate(items):
        if not isinstance(item, torch.Tensor):
            raise StateError(f"state[{key!r}][{k}] must be a tensor, got {type(item).__name__}")
        if shape is not None and item.shape != shape:
            raise StateError(f"state[{key!r}][{k}] has shape {tuple(item.shape)}; node {key!r} expects {tuple(shape)} "
                             "for every item of its state")
