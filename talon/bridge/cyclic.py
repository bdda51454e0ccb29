"""CyclicGraphExecutor: runs graphs with feedback (recurrent) edges for a fixed number of internal timesteps.

An edge that closes a cycle delivers its source's output from the previous internal timestep (nothing,
i.e. zeros, at the first), ADDED to the node's other inputs (the established executor replaced the
external input by the feedback after the first step; we do not). Nodes named in `edges` but absent from
`modules` (such as ``input`` and ``output``) are identities; those without incoming edges are the inputs.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..errors import GraphError, require
from ..ir.graph import Graph, depth_first_back_edges, forward_order
from .base import ExecutorModule, cast_real, take_inputs
from .errors import StateError
from .modules import CustomMap, nodes_to_modules
from .plan import Plan

Edge = tuple[str, str]


class CyclicState(dict):
    """The state dict (stateful node name -> (membrane,)) plus `feedback`: the last outputs on the
    cycle-closing edges, keyed by (src, dst). Pass it back to continue; a plain dict restarts feedback at zero."""

    def __init__(self, states: Mapping[str, tuple], feedback: dict[Edge, torch.Tensor]):
        super().__init__(states)
        self.feedback = feedback


class CyclicGraphExecutor(ExecutorModule):
    """Runs `timesteps` internal steps per call on the same input; returns the list of per-step outputs of
    `output_nodes` (a tensor each for one output node, a dict name -> tensor for several), and the state
    (a CyclicState) with return_state. Running 2 calls of 3 steps with the state carried equals 6 steps.
    `input_shapes` (input name -> shape without batch), when given, are checked on every call."""

    def __init__(
        self,
        modules: Mapping[str, nn.Module],
        edges: Sequence[tuple[str, str]],
        timesteps: int = 1,
        output_nodes: Sequence[str] | None = None,
        return_state: bool = False,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
    ):
        super().__init__(modules)
        edges = [tuple(e) for e in edges]
        nodes = list(dict.fromkeys([n for e in edges for n in e] + list(modules)))
        sources, targets = {s for s, _ in edges}, {d for _, d in edges}
        self.input_names = [n for n in nodes if n not in modules and n not in targets]
        if not self.input_names:
            raise GraphError("no input: give at least one node without a module and without incoming edges")
        if int(timesteps) < 1:
            raise GraphError(f"timesteps must be a positive int, got {timesteps!r}")
        self.timesteps = int(timesteps)
        self.return_state = return_state
        self.output_nodes = list(output_nodes) if output_nodes is not None else [
            n for n in nodes if n not in sources]
        known = set(nodes)
        missing = [n for n in self.output_nodes if n not in known]
        if missing or not self.output_nodes:
            raise GraphError(f"output_nodes {missing or self.output_nodes} are not nodes of the graph {nodes}")
        self.feedback_edges = depth_first_back_edges(edges, self.input_names)
        order = forward_order(nodes, edges, set(self.feedback_edges))
        if len(order) != len(nodes):
            reached = set(order)
            unreached = [n for n in nodes if n not in reached]
            raise GraphError(f"nodes {unreached} are not reachable from the inputs "
                             f"{self.input_names}")
        self._plan = Plan(self.input_names, [n for n in order if n not in self.input_names], modules, edges,
                          self.feedback_edges)
        self.state_names = self._plan.state_names
        shapes = input_shapes or {}
        self._input_shapes = [torch.Size(shapes[n]) if n in shapes else None for n in self.input_names]
        self._input_slots = [self._plan.output_slot(n) for n in self.input_names]
        self._output_slots = [self._plan.output_slot(n) for n in self.output_nodes]
        self._feedback_slots = dict(zip(self.feedback_edges, (fb for fb, _ in self._plan.carry)))

    @classmethod
    def from_graph(
        cls,
        graph: Graph,
        timesteps: int = 1,
        output_nodes: Sequence[str] | None = None,
        return_state: bool = False,
        node_map: CustomMap | None = None,
    ) -> "CyclicGraphExecutor":
        """From an IR graph (cyclic or not); `output_nodes` defaults to its Output nodes."""
        require(graph, Graph, "CyclicGraphExecutor.from_graph: graph", GraphError)
        boundary = set(graph.inputs) | set(graph.outputs)
        modules = {n: m for n, m in nodes_to_modules(graph, node_map).items() if n not in boundary}
        outputs = graph.outputs if output_nodes is None else output_nodes
        return cls(modules, graph.edges, timesteps=timesteps, output_nodes=outputs, return_state=return_state,
                   input_shapes={n: graph.nodes[n].shape for n in graph.inputs})

    def forward(self, x: Any, state: Mapping[str, Any] | None = None):
        """`timesteps` internal steps on input x: the list of per-step outputs (and the state)."""
        inputs = take_inputs(x, self.input_names, self._input_shapes, self.dtype)
        batch = inputs[0].shape[0]
        states = self._plan.import_state(state, self.dtype)
        vals: list = [None] * self._plan.num_slots
        feedback = getattr(state, "feedback", {}) or {}
        for edge, value in feedback.items():
            if edge not in self._feedback_slots:
                raise StateError(f"state.feedback has edge {edge}, which does not close a cycle; those that do: "
                                 f"{self.feedback_edges}")
            vals[self._feedback_slots[edge]] = cast_real(value, self.dtype, f"state.feedback[{edge}]", StateError)
        given = {**{f"state[{n!r}] membrane": s[0] for n, s in zip(self.state_names, states) if s},
                 **{f"state.feedback[{e}]": vals[self._feedback_slots[e]] for e in feedback}}
        for what, value in given.items():
            if value.dim() == 0 or value.shape[0] != batch:
                raise StateError(f"{what} has shape {tuple(value.shape)}; the input's batch is {batch}")
        outputs = []
        steps = self._plan.bind(self.node_modules)
        for t in range(self.timesteps):
            for slot, tensor in zip(self._input_slots, inputs):
                vals[slot] = tensor
            if t == 0 and given:
                self._first_step_with(given, vals, states, steps)
            else:
                self._plan.run(vals, states, steps)
            step = [vals[s] for s in self._output_slots]
            outputs.append(step[0] if len(step) == 1 else dict(zip(self.output_nodes, step)))
        if not self.return_state:
            return outputs
        carried = {e: vals[fb] for e, fb in self._feedback_slots.items()}
        return outputs, CyclicState(self._plan.export_state(states), carried)

    def _first_step_with(self, given: dict[str, torch.Tensor], vals: list, states: list, steps: list) -> None:
        """The first step from a given state, refusing a membrane or feedback of another shape than produced."""
        try:
            self._plan.run(vals, states, steps)
        except RuntimeError as exc:
            shapes = {what: tuple(v.shape) for what, v in given.items()}
            raise StateError(f"the given state does not fit the graph ({exc}); given shapes: {shapes}") from exc
        produced = [s[0] for s in states] + [vals[fb] for fb in self._feedback_slots.values()]
        names = [f"state[{n!r}] membrane" for n in self.state_names]
        names += [f"state.feedback[{e}]" for e in self._feedback_slots]
        for what, new in zip(names, produced):
            if what in given and given[what].shape != new.shape:
                raise StateError(f"{what} has shape {tuple(given[what].shape)}; expected {tuple(new.shape)}")

    def extra_repr(self) -> str:
        return (f"inputs={self.input_names}, outputs={self.output_nodes}, feedback={self.feedback_edges}, "
                f"timesteps={self.timesteps}")
