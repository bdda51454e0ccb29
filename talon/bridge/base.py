"""What GraphExecutor and CyclicGraphExecutor share: their module dict keys, dtype, and input checks.

Inputs (and state) of any real or bool dtype are cast to the executor's dtype (float32 unless the executor
was moved to another); complex ones are refused. Shapes are compared without the batch (and time) dims.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .errors import InputError


_PROBE = nn.ModuleDict()


def module_key(name: str) -> str:
    """An nn.ModuleDict key for a node name: '.' is escaped (not allowed there) and a name that is an
    attribute of ModuleDict ('training', 'items', ...) gets a leading '%' (escaped names never have one)."""
    key = name.replace("%", "%25").replace(".", "%2E")
    return "%" + key if hasattr(_PROBE, key) else key


class ExecutorModule(nn.Module):
    """Base of the executors: node modules in ``node_modules`` (keys from module_key) and the dtype that
    inputs and state are cast to, kept in step with .to() / .double() / ..."""

    def __init__(self, modules: Mapping[str, nn.Module]):
        super().__init__()
        self.node_modules = nn.ModuleDict({module_key(n): m for n, m in modules.items()})
        self.dtype = module_dtype(self)

    def module(self, name: str) -> nn.Module:
        """The torch module running node `name`."""
        return self.node_modules[module_key(name)]

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        self.dtype = module_dtype(self)
        return result


def module_dtype(module: nn.Module) -> torch.dtype:
    """The dtype of a module's first floating-point parameter or buffer (float32 when it has none)."""
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def cast_real(t: torch.Tensor, dtype: torch.dtype, what: str, error: type[Exception]) -> torch.Tensor:
    """t in `dtype`; a complex tensor is refused with `error` naming `what`."""
    if t.dtype == dtype:
        return t
    if t.is_complex():
        raise error(f"{what} is complex ({t.dtype}); the executor computes in {dtype}")
    return t.to(dtype)


def take_inputs(
    x: Any, names: Sequence[str], shapes: Sequence[torch.Size | None], dtype: torch.dtype, lead: int = 1
) -> list[torch.Tensor]:
    """The input tensors in `names` order from a tensor (one input) or a dict keyed by input name, each of
    shape [*lead dims, *shape] (unchecked where the shape is None) and cast to `dtype`."""
    if len(names) == 1 and type(x) is torch.Tensor and x.dtype == dtype and x.shape[lead:] == shapes[0]:
        if x.dim() == lead + len(shapes[0]):  # the common case, checked first and cheaply
            return [x]
    described = ", ".join(f"{n!r} {tuple(s) if s is not None else '(any)'}" for n, s in zip(names, shapes))
    if isinstance(x, torch.Tensor):
        if len(names) != 1:
            raise InputError(f"graph has Inputs {described}; pass a dict keyed by input name")
        tensors = [x]
    elif isinstance(x, Mapping):
        unknown = [k for k in x if k not in names]
        missing = [n for n in names if n not in x]
        if unknown or missing:
            raise InputError(f"unknown inputs {unknown}, missing inputs {missing}; expected Inputs {described}")
        tensors = [x[n] for n in names]
    else:
        raise InputError(f"expected a tensor or a dict of tensors for Inputs {described}, got {type(x).__name__}")
    dims = "[T, batch, " if lead == 2 else "[batch, "
    out = []
    for name, t, shape in zip(names, tensors, shapes):
        if not isinstance(t, torch.Tensor):
            raise InputError(f"Input node {name!r} expects a tensor, got {type(t).__name__}")
        if shape is not None and (t.shape[lead:] != shape or t.dim() != lead + len(shape)):
            raise InputError(f"Input node {name!r} expects {dims}{', '.join(map(str, shape))}], "
                             f"got {tuple(t.shape)}")
        if shape is None and t.dim() < lead:
            raise InputError(f"Input node {name!r} expects a leading batch dim, got {tuple(t.shape)}")
        out.append(cast_real(t, dtype, f"Input node {name!r}", InputError))
    return out
