"""A graph compiled once into a flat list of steps over numbered value slots, shared by both executors.

Every node's output lives in a slot (a multi-output node has one slot per output); a step reads slots
resolved at build time, so one timestep is a single loop over tuples. Nodes without a module (Input,
Output, ...) are identities: their slot aliases their input's, or holds the sum of several inputs.
A feedback (cycle-closing) edge reads a slot that holds its source's output of the previous timestep.
A graph that is one chain of single-input nodes (most feed-forward SNNs) also gets `chain`, a leaner
loop passing one tensor along (see run_chain).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.compiler import is_compiling
from torch.nn.modules import module as _module

from ..ir.errors import GraphError
from ..ir.graph import adjacency, output_indices
from .base import cast_real
from .errors import StateError
from .modules import _SpikingNeuron

ADD, ADD_FEEDBACK, CALL, MERGE, STATE, MULTI, NEURON = range(7)

Edge = tuple[str, str]


class Plan:
    """Steps for `order` (topological, inputs excluded); `edges` in edge order; `feedback` closes cycles.
    `fixed_features`: the executor refuses inputs of other feature shapes, so each node sees the same feature
    shape on every call; this enables `chain` (see run_chain)."""

    def __init__(
        self,
        inputs: Sequence[str],
        order: Sequence[str],
        modules: Mapping[str, nn.Module | None],
        edges: Sequence[Edge],
        feedback: Sequence[Edge] = (),
        fixed_features: bool = False,
    ):
        self.slot: dict[tuple[str, int], int] = {}
        self.steps: list[tuple] = []
        self.state_names: list[str] = []
        self.state_modules: list[nn.Module] = []
        self._count = 0
        self._multi: set[str] = set()
        self._out_index = output_indices(edges)
        for name in inputs:
            self.slot[(name, 0)] = self._new()
        feedback_slot: dict[Edge, int] = {}
        for edge in feedback:
            feedback_slot[edge] = self._new()
        pred, succ = adjacency(order, edges)
        for name in order:
            fwd = [self._source_slot((s, name)) for s in pred[name] if (s, name) not in feedback_slot]
            back = [feedback_slot[(s, name)] for s in pred[name] if (s, name) in feedback_slot]
            self._add_node(name, modules.get(name), fwd, back, len(succ[name]))
        # (feedback slot, source slot) pairs, copied after each timestep
        self.carry: list[tuple[int, int]] = [(fb, self._source_slot(e)) for e, fb in feedback_slot.items()]
        self.num_slots = self._count
        # inputs hold the first slots: a timestep's values are `inputs + plan.unset`
        self.unset: list[None] = [None] * (self._count - len(inputs))
        self._state_index = {n: i for i, n in enumerate(self.state_names)}
        self._state_sizes = [getattr(m, "_state_size", None) for m in self.state_modules]
        self._hooks = _hook_dicts([step[1] for step in self.steps if step[1] is not None])
        # the same steps calling forward directly: nn.Module.__call__ costs about 0.5 us per step
        self.fast_steps = [(k, fn.forward if fn is not None else None, *rest) for k, fn, *rest in self.steps]
        self.chain, self.chain_output = _chain(self.steps, len(inputs)) if fixed_features else (None, None)
        self._checked_kernels: list = [None] * len(self.state_names)

    def _source_slot(self, edge: Edge) -> int:
        """The slot an edge reads: its source's output, the edge's own output for a multi-output source."""
        return self.slot[(edge[0], self._out_index[edge] if edge[0] in self._multi else 0)]

    def _new(self) -> int:
        self._count += 1
        return self._count - 1

    def _add_node(self, name: str, module: nn.Module | None, fwd: list[int], back: list[int], n_out: int) -> None:
        if not fwd:
            raise GraphError(f"node {name!r} has no input reachable from the graph's inputs")
        if module is not None and getattr(module, "_is_merge", False):
            if back:
                raise GraphError(f"merge node {name!r} cannot take a feedback edge; route it through a node "
                                 "that sums its inputs")
            self.slot[(name, 0)] = self._new()
            self.steps.append((MERGE, module, tuple(fwd), self.slot[(name, 0)], -1))
            return
        x = fwd[0]
        if len(fwd) + len(back) > 1:
            x = self._new()
            self.steps.append((ADD_FEEDBACK if back else ADD, None, tuple(fwd + back), x, -1))
        if module is None:
            self.slot[(name, 0)] = x
        elif getattr(module, "_is_multi_output", False):
            self._multi.add(name)
            outs = tuple(self._new() for _ in range(n_out))
            for i, s in enumerate(outs):
                self.slot[(name, i)] = s
            self.steps.append((MULTI, module, x, outs, -1))
        elif getattr(module, "_is_stateful", False):
            self.slot[(name, 0)] = self._new()
            self.steps.append((STATE, module, x, self.slot[(name, 0)], len(self.state_names)))
            self.state_names.append(name)
            self.state_modules.append(module)
        else:
            self.slot[(name, 0)] = self._new()
            self.steps.append((CALL, module, x, self.slot[(name, 0)], -1))

    def output_slot(self, name: str) -> int:
        """The slot holding a node's (first) output."""
        return self.slot[(name, 0)]

    def import_state(self, state: Mapping[str, Any] | None, dtype: torch.dtype,
                     shapes: list[torch.Size] | None = None) -> list[tuple]:
        """Per stateful node, the state tuple from a user dict (name -> tensor or tuple, membrane first), cast
        to `dtype`; unknown names are refused, and so is a membrane whose shape differs from `shapes`."""
        states: list[tuple] = [()] * len(self.state_names)
        if not state:
            return states
        index = self._state_index
        for key, value in state.items():
            i = index.get(key)
            if i is None:
                raise StateError(f"state has an entry for {key!r}, which is not a stateful node; stateful nodes: "
                                 f"{self.state_names}")
            membrane = value[0] if type(value) is tuple and len(value) == 1 else None
            if type(membrane) is Tensor and membrane.dtype == dtype and (shapes is None or membrane.shape == shapes[i]):
                states[i] = value  # the form export_state gives: the fewest checks, as this runs every timestep
            else:
                states[i] = self._import_entry(key, value, dtype, None if shapes is None else shapes[i])
        return states

    def _import_entry(self, key: str, value: Any, dtype: torch.dtype, shape: torch.Size | None) -> tuple:
        """One state entry as a tuple cut to the node's state size, checked against `shape` and cast to `dtype`."""
        items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        if not items or not isinstance(items[0], torch.Tensor):
            raise StateError(f"state[{key!r}] must be a tensor or a tuple whose first item is the membrane tensor")
        if shape is not None and items[0].shape != shape:
            raise StateError(f"state[{key!r}] membrane has shape {tuple(items[0].shape)}; node {key!r} expects "
                             f"{tuple(shape)}")
        items = items[: self._state_sizes[self._state_index[key]]]
        return tuple(cast_real(t, dtype, f"state[{key!r}]", StateError) if isinstance(t, torch.Tensor) else t
                     for t in items)

    def export_state(self, states: list[tuple]) -> dict[str, tuple]:
        """The user-facing state dict: stateful node name -> tuple (membrane first)."""
        return dict(zip(self.state_names, states))

    def direct(self) -> bool:
        """Whether steps may call forward directly: not while hooks are registered, nor while torch.compile /
        torch.export trace (they record module scopes in __call__, and the modules emit talon ops)."""
        return not (is_compiling() or any(self._hooks) or _global_hooks())

    def current_steps(self) -> list[tuple]:
        """The fast steps when `direct`, else those going through nn.Module.__call__."""
        return self.fast_steps if self.direct() else self.steps

    def run(self, vals: list, states: list, steps: list[tuple]) -> None:
        """One timestep of `steps` (from current_steps): fill `vals` (inputs set), update `states` in place."""
        for kind, fn, a, out, si in steps:
            if kind == CALL:
                vals[out] = fn(vals[a])
            elif kind == STATE:
                res = fn(vals[a], *states[si])
                vals[out] = res[0]
                states[si] = res[1:]
            elif kind == ADD:
                vals[out] = _sum([vals[i] for i in a])
            elif kind == MERGE:
                vals[out] = fn(*[vals[i] for i in a])
            elif kind == MULTI:
                res = fn(vals[a])
                for i, o in enumerate(out):
                    vals[o] = res[i]
            else:  # ADD_FEEDBACK: feedback slots are None before the first timestep (zeros)
                vals[out] = _sum([vals[i] for i in a if vals[i] is not None])
        for fb, src in self.carry:
            vals[fb] = vals[src]

    def run_chain(self, x: torch.Tensor, states: list) -> torch.Tensor:
        """One timestep of `chain` in place of the fast steps: x passes from step to step, and the output of
        the last (slot `chain_output`) is returned. A spiking neuron with the standard forward (LIF, IF) calls
        its kernel directly once forward has checked its input's shape against that kernel (its object changes
        when the neuron is refit, refreshed or moved; the input's shape cannot, given `fixed_features`)."""
        checked = self._checked_kernels
        for kind, fn, si in self.chain:
            if kind == CALL:
                x = fn(x)
            elif kind == NEURON:  # fn is the module
                state, kernel = states[si], fn._kernel
                if state and kernel is checked[si]:
                    x, v = fn._step(x, state[0], *kernel)
                else:  # at rest, or a new kernel: forward checks x (refitting the neuron to it)
                    x, v = fn.forward(x, *state)
                    checked[si] = fn._kernel
                states[si] = (v,)
            else:  # STATE
                res = fn(x, *states[si])
                x = res[0]
                states[si] = res[1:]
        return x


def _chain(steps: list[tuple], n_inputs: int) -> tuple[list[tuple] | None, int | None]:
    """(kind, forward or neuron module, state index) per step and the last step's output slot, when the steps
    form one chain from the single input (slot 0), each reading the previous one's output; else (None, None)."""
    if n_inputs != 1:
        return None, None
    chain, slot = [], 0
    for kind, module, a, out, si in steps:
        if kind not in (CALL, STATE) or a != slot:
            return None, None
        neuron = kind == STATE and type(module).forward is _SpikingNeuron.forward
        chain.append((NEURON, module, si) if neuron else (kind, module.forward, si))
        slot = out
    return chain, slot


def _sum(tensors: list):
    """Left-to-right sum in edge order (the order fixes float rounding)."""
    acc = tensors[0]
    for t in tensors[1:]:
        acc = acc + t
    return acc


def _hook_dicts(modules: list[nn.Module]) -> list[dict]:
    """Each step module's own hook registries: while all are empty, forward can be called directly."""
    return [d for m in modules for d in (m._forward_hooks, m._forward_pre_hooks, m._backward_hooks,
                                         m._backward_pre_hooks)]


def _global_hooks() -> bool:
    """True when a hook for every module is registered (torch.nn.modules.module.register_module_*_hook)."""
    return bool(_module._global_forward_hooks or _module._global_forward_pre_hooks
                or _module._global_backward_hooks or _module._global_backward_pre_hooks)
