"""GraphExecutor: runs an acyclic TALON IR graph in PyTorch, one timestep per call or a whole sequence.

Semantics (docs/DESIGN.md): tensors carry a leading batch dim; a node with several incoming edges gets
their sum (merge nodes: Concat, Skip, take them in edge order); a ChannelSplit hands output i to its
i-th outgoing edge; several Inputs/Outputs are dicts keyed by node name; the state is a dict keyed by
stateful node name, ``state[name] = (membrane,)`` (a bare tensor is accepted; None or {} is rest).

Unlike the established executor this one is returned in eval mode (Dropout is the identity), flattens
with any end_dim, never normalises Softmax over the batch, reshapes LIF parameters stored flat after a
convolution, and runs graphs with several inputs and outputs. Cyclic graphs need CyclicGraphExecutor.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Union

import torch

from .. import ir
from ..ir.errors import GraphError
from ..ir.graph import Graph
from .base import ExecutorModule, take_inputs
from .errors import InputError
from .modules import CustomMap, nodes_to_modules
from .plan import Plan

Tensors = Union[torch.Tensor, Mapping[str, torch.Tensor]]


class GraphExecutor(ExecutorModule):
    """Runs an acyclic TALON IR graph: ``out = ex(x)`` or, with return_state, ``out, state = ex(x, state)``.

    `node_map` supplies modules first (keys: node names or primitive classes, see nodes_to_modules).
    ``ex.run_sequence(xs, state)`` runs inputs shaped [T, batch, ...] and stacks the T outputs.
    """

    def __init__(self, graph: Graph, return_state: bool = False, node_map: CustomMap | None = None):
        if graph.back_edges():
            raise GraphError(f"graph has cycles (edges {graph.back_edges()}); GraphExecutor runs acyclic graphs: "
                             "use bridge.CyclicGraphExecutor.from_graph(graph, timesteps=...)")
        if not graph.inputs or not graph.outputs:
            raise GraphError(f"graph needs at least one Input and one Output node (inputs {graph.inputs}, "
                             f"outputs {graph.outputs})")
        shapes = graph.infer_shapes()
        boundary = set(graph.inputs) | set(graph.outputs)
        modules = {n: m for n, m in nodes_to_modules(graph, node_map).items() if n not in boundary}
        super().__init__(modules)
        self.graph = graph
        self.return_state = return_state
        order = [n for n in graph.topological_order() if n not in graph.inputs]
        self._plan = Plan(graph.inputs, order, modules, graph.edges)
        self.input_names: list[str] = graph.inputs
        self.output_names: list[str] = graph.outputs
        self.state_names: list[str] = self._plan.state_names
        self._input_shapes = [torch.Size(shapes[n]) for n in self.input_names]
        self._input_slots = [self._plan.output_slot(n) for n in self.input_names]
        self._output_slots = [self._plan.output_slot(n) for n in self.output_names]
        self._state_shapes: list[torch.Size] = []
        self._batched_state_shapes: dict[int, list[torch.Size]] = {}
        for name, module in zip(self.state_names, self._plan.state_modules):
            shape = torch.Size(shapes[name])
            if hasattr(module, "fit"):
                module.fit(shape)
            self._state_shapes.append(shape)
        self.eval()

    # -- state and outputs -----------------------------------------------------------------------------
    def _states(self, state: Mapping[str, Any] | None, batch: int) -> list[tuple]:
        """Internal state tuples from a user state dict, each membrane checked as [batch, *neuron shape]."""
        if not state:
            return self._plan.import_state(None, self.dtype)
        shapes = self._batched_state_shapes.get(batch)
        if shapes is None:
            shapes = self._batched_state_shapes[batch] = [torch.Size((batch, *s)) for s in self._state_shapes]
        return self._plan.import_state(state, self.dtype, shapes)

    def _outputs(self, values: list[torch.Tensor]) -> Tensors:
        if len(values) == 1:
            return values[0]
        return dict(zip(self.output_names, values))

    # -- running --------------------------------------------------------------------------------------
    def forward(self, x: Tensors, state: Mapping[str, Any] | None = None):
        """One timestep: the output(s), and with return_state the next state dict."""
        inputs = take_inputs(x, self.input_names, self._input_shapes, self.dtype)
        states = self._states(state, inputs[0].shape[0])
        vals: list = [None] * self._plan.num_slots
        for slot, t in zip(self._input_slots, inputs):
            vals[slot] = t
        self._plan.run(vals, states, self._plan.current_steps())
        out = self._outputs([vals[s] for s in self._output_slots])
        if self.return_state:
            return out, self._plan.export_state(states)
        return out

    def run_sequence(self, xs: Tensors, state: Mapping[str, Any] | None = None):
        """T timesteps over inputs shaped [T, batch, ...]: outputs stacked to [T, batch, ...] (and the final state)."""
        seqs = take_inputs(xs, self.input_names, self._input_shapes, self.dtype, lead=2)
        steps = {t.shape[0] for t in seqs}
        if len(steps) != 1 or 0 in steps:
            raise InputError(f"inputs must share one non-zero number of timesteps, got {sorted(steps)}")
        states = self._states(state, seqs[0].shape[1])
        collected: list[list[torch.Tensor]] = [[] for _ in self._output_slots]
        n, run, plan_steps = self._plan.num_slots, self._plan.run, self._plan.current_steps()
        for t in range(steps.pop()):
            vals: list = [None] * n
            for slot, seq in zip(self._input_slots, seqs):
                vals[slot] = seq[t]
            run(vals, states, plan_steps)
            for acc, slot in zip(collected, self._output_slots):
                acc.append(vals[slot])
        out = self._outputs([torch.stack(acc) for acc in collected])
        if self.return_state:
            return out, self._plan.export_state(states)
        return out

    def extra_repr(self) -> str:
        return f"inputs={self.input_names}, outputs={self.output_names}, return_state={self.return_state}"


def ir_to_torch(
    graph_or_path: Graph | str | os.PathLike, return_state: bool = False, node_map: CustomMap | None = None
) -> GraphExecutor:
    """A GraphExecutor (eval mode) for a Graph or a .t1c path. Cyclic graphs raise a GraphError that points
    to CyclicGraphExecutor.from_graph, which needs the number of internal timesteps."""
    graph = graph_or_path if isinstance(graph_or_path, Graph) else ir.read(graph_or_path)
    return GraphExecutor(graph, return_state=return_state, node_map=node_map)
