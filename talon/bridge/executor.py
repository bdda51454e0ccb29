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

import math
import os
from typing import Any, Mapping, Union

import torch

from .. import ir
from ..errors import GraphError, require
from ..ir.graph import Graph
from .base import ExecutorModule, take_inputs
from .errors import InputError
from .modules import CustomMap, nodes_to_modules
from .plan import Plan

# values per node that run_sequence computes at once: a chunk of timesteps this large stays in the caches
CHUNK_ELEMENTS = 1 << 20
Tensors = Union[torch.Tensor, Mapping[str, torch.Tensor]]


class GraphExecutor(ExecutorModule):
    """Runs an acyclic TALON IR graph: ``out = ex(x)`` or, with return_state, ``out, state = ex(x, state)``.

    `node_map` supplies modules first (keys: node names or primitive classes, see nodes_to_modules).
    ``ex.run_sequence(xs, state)`` runs inputs shaped [T, batch, ...] and stacks the T outputs.
    """

    def __init__(self, graph: Graph, return_state: bool = False, node_map: CustomMap | None = None):
        require(graph, Graph, "GraphExecutor: graph", GraphError)
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
        self._output_slots = [self._plan.output_slot(n) for n in self.output_names]
        # the most values per sample of any node: run_sequence takes chunks of CHUNK_ELEMENTS values per node
        self._widest = max((math.prod(s) for s in shapes.values() if s and all(type(d) is int for d in s)), default=1)
        self._state_shapes: list[torch.Size] = []
        self._batched_state_shapes: dict[int, list[torch.Size]] = {}
        # full shapes of single input tensors accepted before -> the state shapes for their batch
        self._accepted: dict[torch.Size, list[torch.Size]] = {}
        for name, module in zip(self.state_names, self._plan.state_modules):
            shape = torch.Size(shapes[name])
            if hasattr(module, "fit"):
                module.fit(shape)
            self._state_shapes.append(shape)
        self.eval()

    # -- checks and outputs ----------------------------------------------------------------------------
    def _inputs(self, x: Tensors) -> tuple[list[torch.Tensor], list[torch.Size]]:
        """The checked input tensors of one timestep and the membrane shapes [batch, *neuron shape] of the
        state; remembers the shape of a single input tensor, which the next calls check by a dict lookup."""
        inputs = take_inputs(x, self.input_names, self._input_shapes, self.dtype)
        state_shapes = self._batch_state_shapes(inputs[0].shape[0])
        if inputs[0] is x:
            self._accepted[x.shape] = state_shapes
        return inputs, state_shapes

    def _batch_state_shapes(self, batch: int) -> list[torch.Size]:
        """The membrane shapes [batch, *neuron shape] of the stateful nodes, computed once per batch size."""
        shapes = self._batched_state_shapes.get(batch)
        if shapes is None:
            shapes = self._batched_state_shapes[batch] = [torch.Size((batch, *s)) for s in self._state_shapes]
        return shapes

    def _outputs(self, values: list) -> Tensors:
        """The output tensor, or the dict of outputs by name, read from one timestep's slot values."""
        if len(self._output_slots) == 1:
            return values[self._output_slots[0]]
        return {name: values[s] for name, s in zip(self.output_names, self._output_slots)}

    # -- running --------------------------------------------------------------------------------------
    def forward(self, x: Tensors, state: Mapping[str, Any] | None = None):
        """One timestep: the output(s), and with return_state the next state dict."""
        plan = self._plan
        # the common call, one tensor of a shape and dtype accepted before, is checked by one dict lookup
        state_shapes = self._accepted.get(x.shape) if type(x) is torch.Tensor and x.dtype == self.dtype else None
        if state_shapes is None:
            inputs, state_shapes = self._inputs(x)
        else:
            inputs = [x]
        states = plan.import_state(state, self.dtype, state_shapes)
        vals = inputs + plan.unset
        plan.run(vals, states, plan.bind(self.node_modules))
        out = self._outputs(vals)
        if self.return_state:
            return out, plan.export_state(states)
        return out

    def run_sequence(self, xs: Tensors, state: Mapping[str, Any] | None = None):
        """T timesteps over inputs shaped [T, batch, ...]: outputs stacked to [T, batch, ...] (and the final state).

        Runs layer by layer (Plan.run_layers): each stateless module is called once on the whole sequence
        [T*batch, ...] (its hooks see that tensor), each LIF/IF neuron once on [T, batch, ...], other stateful
        modules once per timestep. Spikes and state equal those of T step calls, except that a layer's sums
        over T*batch rows may round differently in the last bit than over batch rows; for the same reason a
        sequence split over calls (state carried) equals one call to within float32 rounding."""
        plan = self._plan
        seqs = take_inputs(xs, self.input_names, self._input_shapes, self.dtype, lead=2)
        steps = {t.shape[0] for t in seqs}
        if len(steps) != 1 or 0 in steps:
            raise InputError(f"inputs must share one non-zero number of timesteps, got {sorted(steps)}")
        if len({t.shape[1] for t in seqs}) != 1:
            raise InputError(f"inputs must share one batch size, got {[tuple(t.shape[:2]) for t in seqs]}")
        timesteps, batch = seqs[0].shape[:2]
        states = plan.import_state(state, self.dtype, self._batch_state_shapes(batch))
        steps, chunk = plan.bind(self.node_modules), max(1, CHUNK_ELEMENTS // (batch * self._widest or 1))
        parts = []
        for start in range(0, timesteps, chunk):
            n = min(chunk, timesteps - start)
            vals = [t[start:start + n].reshape(n * batch, *t.shape[2:]) for t in seqs] + plan.unset
            plan.run_layers(vals, states, steps, n)
            parts.append([vals[s].reshape(n, batch, *vals[s].shape[1:]) for s in self._output_slots])
        outs = [p[0] if len(parts) == 1 else torch.cat(p) for p in zip(*parts)]
        out = outs[0] if len(outs) == 1 else dict(zip(self.output_names, outs))
        if self.return_state:
            return out, plan.export_state(states)
        return out

    def extra_repr(self) -> str:
        return f"inputs={self.input_names}, outputs={self.output_names}, return_state={self.return_state}"


def ir_to_torch(
    graph_or_path: Graph | str | os.PathLike, return_state: bool = False, node_map: CustomMap | None = None
) -> GraphExecutor:
    """A GraphExecutor (eval mode) for a Graph or a .t1c path. Cyclic graphs raise a GraphError that points
    to CyclicGraphExecutor.from_graph, which needs the number of internal timesteps."""
    require(graph_or_path, (Graph, str, os.PathLike), "ir_to_torch: graph_or_path", GraphError)
    graph = graph_or_path if isinstance(graph_or_path, Graph) else ir.read(graph_or_path)
    return GraphExecutor(graph, return_state=return_state, node_map=node_map)
