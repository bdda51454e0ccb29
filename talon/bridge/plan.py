"""A graph compiled once into a flat list of steps over numbered value slots, shared by both executors.

Every node's output lives in a slot (a multi-output node has one slot per output); a step reads slots
resolved at build time, so one timestep is a single loop over tuples. Nodes without a module (Input,
Output, ...) are identities: their slot aliases their input's, or holds the sum of several inputs.
A feedback (cycle-closing) edge reads a slot that holds its source's output of the previous timestep.

Steps name their module by its key in the executor's ``node_modules``; `bind` looks the modules up at each
call, so a module replaced there is the one that runs, and every module is called as a module (hooks and
forward overrides apply). An acyclic plan also runs layer by layer (`run_layers`): each step once over all
timesteps, stateless modules on [T*batch, ...] and neurons on [T, batch, ...].
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..ir.errors import GraphError
from ..ir.graph import adjacency, output_indices
from .base import cast_real, module_key
from .errors import StateError
from .modules import runs_sequences
from .state_checks import check_state_items, check_state_mapping

ADD, ADD_FEEDBACK, CALL, MERGE, STATE, MULTI, MERGE_MULTI = range(7)

Edge = tuple[str, str]


class Plan:
    """Steps for `order` (topological, inputs excluded); `edges` in edge order; `feedback` closes cycles.
    `modules` (node name -> module or None) fixes each step's kind; the modules themselves are looked up at
    each call by `bind` (a replacement must be of the same kind: stateful, merge, multi-output or plain)."""

    def __init__(
        self,
        inputs: Sequence[str],
        order: Sequence[str],
        modules: Mapping[str, nn.Module | None],
        edges: Sequence[Edge],
        feedback: Sequence[Edge] = (),
    ):
        self.slot: dict[tuple[str, int], int] = {}
        self.steps: list[tuple] = []  # (kind, module key or None, input slot(s), output slot(s), state index)
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

    def _source_slot(self, edge: Edge) -> int:
        """The slot an edge reads: its source's output, the edge's own output for a multi-output source."""
        return self.slot[(edge[0], self._out_index[edge] if edge[0] in self._multi else 0)]

    def _new(self) -> int:
        self._count += 1
        return self._count - 1

    def _add_node(self, name: str, module: nn.Module | None, fwd: list[int], back: list[int], n_out: int) -> None:
        if not fwd:
            raise GraphError(f"node {name!r} has no input reachable from the graph's inputs")
        key = module_key(name)
        if module is not None and getattr(module, "_is_merge", False):
            if back:
                raise GraphError(f"merge node {name!r} cannot take a feedback edge; route it through a node "
                                 "that sums its inputs")
            if getattr(module, "_is_multi_output", False):  # several inputs and outputs (HostRegion)
                self.steps.append((MERGE_MULTI, key, tuple(fwd), self._outputs(name, n_out), -1))
                return
            self.slot[(name, 0)] = self._new()
            self.steps.append((MERGE, key, tuple(fwd), self.slot[(name, 0)], -1))
            return
        x = fwd[0]
        if len(fwd) + len(back) > 1:
            x = self._new()
            self.steps.append((ADD_FEEDBACK if back else ADD, None, tuple(fwd + back), x, -1))
        if module is None:
            self.slot[(name, 0)] = x
        elif getattr(module, "_is_multi_output", False):
            self.steps.append((MULTI, key, x, self._outputs(name, n_out), -1))
        elif getattr(module, "_is_stateful", False):
            self.slot[(name, 0)] = self._new()
            self.steps.append((STATE, key, x, self.slot[(name, 0)], len(self.state_names)))
            self.state_names.append(name)
            self.state_modules.append(module)
        else:
            self.slot[(name, 0)] = self._new()
            self.steps.append((CALL, key, x, self.slot[(name, 0)], -1))

    def _outputs(self, name: str, n_out: int) -> tuple[int, ...]:
        """New slots for the outputs of a multi-output node, one per outgoing edge."""
        self._multi.add(name)
        outs = tuple(self._new() for _ in range(n_out))
        for i, s in enumerate(outs):
            self.slot[(name, i)] = s
        return outs

    def output_slot(self, name: str) -> int:
        """The slot holding a node's (first) output."""
        return self.slot[(name, 0)]

    def bind(self, node_modules: Mapping[str, nn.Module]) -> list[tuple]:
        """The steps with each module key replaced by the module now held under it in `node_modules`."""
        modules = dict(node_modules.items())
        return [(kind, None if key is None else modules[key], a, out, si) for kind, key, a, out, si in self.steps]

    def import_state(self, state: Mapping[str, Any] | None, dtype: torch.dtype,
                     shapes: list[torch.Size] | None = None) -> list[tuple]:
        """Per stateful node, the state tuple from a user dict (name -> tensor or tuple, membrane first), cast
        to `dtype`; unknown names are refused, and so is a membrane whose shape differs from `shapes`."""
        states: list[tuple] = [()] * len(self.state_names)
        check_state_mapping(state)
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
        check_state_items(key, items, shape)
        return tuple(cast_real(t, dtype, f"state[{key!r}]", StateError) if isinstance(t, torch.Tensor) else t
                     for t in items)

    def export_state(self, states: list[tuple]) -> dict[str, tuple]:
        """The user-facing state dict: stateful node name -> tuple (membrane first)."""
        return dict(zip(self.state_names, states))

    def run(self, vals: list, states: list, steps: list[tuple]) -> None:
        """One timestep of `steps` (from bind): fill `vals` (inputs set), update `states` in place."""
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
            elif kind == MERGE_MULTI:
                res = fn(*[vals[i] for i in a])
                for i, o in enumerate(out):
                    vals[o] = res[i]
            else:  # ADD_FEEDBACK: feedback slots are None before the first timestep (zeros)
                vals[out] = _sum([vals[i] for i in a if vals[i] is not None])
        for fb, src in self.carry:
            vals[fb] = vals[src]

    def run_layers(self, vals: list, states: list, steps: list[tuple], timesteps: int) -> None:
        """All `timesteps` of an acyclic plan, one step at a time: slots hold [T*batch, ...] tensors (inputs
        set), so stateless modules run once over the whole sequence; a neuron that runs sequences
        (modules.runs_sequences) is called once on [T, batch, ...], any other stateful module once per timestep.
        Updates `states` in place to the state after the last timestep."""
        for kind, fn, a, out, si in steps:
            if kind == STATE:
                x = vals[a]
                xs = x.reshape(timesteps, x.shape[0] // timesteps, *x.shape[1:])
                if runs_sequences(fn):
                    res = fn(xs, *states[si])
                    ys, states[si] = res[0], res[1:]
                else:
                    outs, state = [], states[si]
                    for x_t in xs:
                        res = fn(x_t, *state)
                        outs.append(res[0])
                        state = res[1:]
                    ys, states[si] = torch.stack(outs), state
                vals[out] = ys.reshape(x.shape[0], *ys.shape[2:])
            elif kind == ADD_FEEDBACK:
                raise GraphError("run_layers runs acyclic plans only")
            else:
                self.run(vals, states, [(kind, fn, a, out, si)])


def _sum(tensors: list):
    """Left-to-right sum in edge order (the order fixes float rounding)."""
    acc = tensors[0]
    for t in tensors[1:]:
        acc = acc + t
    return acc
