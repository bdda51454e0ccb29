"""ir.Graph: validation, ordering, cycles, shape propagation (checked against torch) and equality."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from talon import ir
from talon.ir import GraphError

from strategies import graphs, input_shapes, node_for_shape


def chain(**extra) -> ir.Graph:
    return ir.Graph(
        {"in": ir.Input((4,)), "a": ir.ReLU(), "b": ir.Tanh(), "out": ir.Output((4,))},
        [("in", "a"), ("a", "b"), ("b", "out")], **extra,
    )


@pytest.mark.parametrize("edges, message", [
    ([("in", "ghost")], "missing node"),
    ([("in", "a"), ("in", "a")], "duplicate edge"),
    ([("a", "a")], "self-loop"),
    ([("in", "a"), ("a", "b"), ("b", "a")], "cycles"),
    ([("a", "in")], "Input node 'in' has incoming"),
    ([("out", "a")], "Output node 'out' has outgoing"),
    ([("in",)], "pair"),
    (["ab"], "pair"),
])
def test_invalid_structure_is_refused(edges, message):
    nodes = {"in": ir.Input((4,)), "a": ir.ReLU(), "b": ir.Tanh(), "out": ir.Output((4,)), "ab": ir.ReLU()}
    with pytest.raises(GraphError, match=message):
        ir.Graph(nodes, edges)


def test_bad_nodes_are_refused():
    with pytest.raises(GraphError, match="not a talon.ir primitive"):
        ir.Graph({"x": "ReLU"})
    with pytest.raises(GraphError, match="non-empty"):
        ir.Graph({"": ir.ReLU()})


def test_cycles_are_allowed_on_request_and_reported():
    g = ir.Graph({"in": ir.Input((2,)), "a": ir.ReLU(), "b": ir.Tanh()}, [("in", "a"), ("a", "b"), ("b", "a")],
                 allow_cycles=True)
    assert g.is_cyclic and g.back_edges() == [("b", "a")]
    assert g.topological_order() == ["in", "a", "b"]
    assert not chain().is_cyclic and chain().back_edges() == []


def test_inputs_outputs_and_neighbours_follow_edge_order():
    g = ir.Graph(
        {"cat": ir.Concat(dim=1), "x": ir.Input((2,)), "y": ir.Input((3,)), "s": ir.ChannelSplit(split_sections=(1, 1)),
         "o1": ir.Output((1,)), "o2": ir.Output((1,)), "z": ir.Output((5,))},
        [("y", "cat"), ("x", "cat"), ("cat", "z"), ("x", "s"), ("s", "o2"), ("s", "o1")],
    )
    assert g.inputs == ["x", "y"] and g.outputs == ["o1", "o2", "z"]
    assert g.predecessors("cat") == ["y", "x"] and g.successors("s") == ["o2", "o1"] and g.successors("x") == ["cat", "s"]
    shapes = g.infer_shapes()
    assert shapes["cat"] == (5,) and shapes["s"] == [(1,), (1,)]


def _structure(g: ir.Graph) -> tuple:
    """Neighbours, boundary nodes and output indices recomputed from scratch by scanning the edges."""
    names = list(g.nodes)
    pred = {n: [s for s, d in g.edges if d == n] for n in names}
    succ = {n: [d for s, d in g.edges if s == n] for n in names}
    index = {(s, d): [t for u, t in g.edges if u == s].index(d) for s, d in g.edges}
    inputs = [n for n in names if type(g.nodes[n]) is ir.Input]
    outputs = [n for n in names if type(g.nodes[n]) is ir.Output]
    return pred, succ, index, inputs, outputs


def _cached_structure(g: ir.Graph) -> tuple:
    return ({n: g.predecessors(n) for n in g.nodes}, {n: g.successors(n) for n in g.nodes},
            {e: g.output_index(*e) for e in g.edges}, g.inputs, g.outputs)


MUTATIONS = [
    lambda g: g.edges.append(("b", "c")),
    lambda g: g.edges.insert(0, ("b", "c")),
    lambda g: g.edges.__setitem__(1, ("b", "c")),
    lambda g: g.edges.__delitem__(1),
    lambda g: g.edges.pop(),
    lambda g: g.edges.remove(("a", "b")),
    lambda g: g.edges.extend([("b", "c")]),
    lambda g: g.edges.reverse(),
    lambda g: g.edges.sort(),
    lambda g: g.edges.clear(),
    lambda g: setattr(g, "edges", [("in", "c"), ("c", "out")]),
    lambda g: g.nodes.__setitem__("c", ir.Input((4,))),
    lambda g: g.nodes.__delitem__("b"),
    lambda g: g.nodes.pop("b"),
    lambda g: g.nodes.update(d=ir.Output((4,))),
    lambda g: g.nodes.setdefault("d", ir.Input((4,))),
    lambda g: setattr(g, "nodes", {"in": ir.Input((4,)), "out": ir.Output((4,))}),
]


@pytest.mark.parametrize("mutate", MUTATIONS)
def test_cached_adjacency_follows_in_place_changes(mutate):
    g = ir.Graph({"in": ir.Input((4,)), "a": ir.ReLU(), "b": ir.Tanh(), "c": ir.Sigmoid(), "out": ir.Output((4,))},
                 [("in", "a"), ("a", "b"), ("a", "c"), ("c", "out")])
    assert _cached_structure(g) == _structure(g)
    g.topological_order(), g.back_edges()
    mutate(g)
    assert _cached_structure(g) == _structure(g)
    if all(n in g.nodes for e in g.edges for n in e):  # orders are defined for edges between existing nodes
        fresh = ir.Graph.__new__(ir.Graph)  # the same nodes and edges without a cache, even when now invalid
        fresh.nodes, fresh.edges = dict(g.nodes), list(g.edges)
        assert g.topological_order() == fresh.topological_order() and g.back_edges() == fresh.back_edges()


def test_graph_copies_keep_their_structure():
    g = chain()
    g.predecessors("b")
    for other in (copy.deepcopy(g), pickle.loads(pickle.dumps(g))):
        assert other == g and _cached_structure(other) == _structure(g)
        other.edges.append(("in", "b"))
        assert other.predecessors("b") == ["a", "in"] and g.predecessors("b") == ["a"]


@settings(max_examples=25, deadline=None)
@given(graph=graphs(cycles=True), data=st.data())
def test_topological_order_and_back_edges_do_not_depend_on_node_order(graph, data):
    order = graph.topological_order()
    assert sorted(order) == sorted(graph.nodes)
    position = {n: i for i, n in enumerate(order)}
    back = set(graph.back_edges())
    assert all(position[s] < position[d] for s, d in graph.edges if (s, d) not in back)
    if not graph.allow_cycles:
        assert not back
    names = data.draw(st.permutations(list(graph.nodes)))
    shuffled = ir.Graph({n: graph.nodes[n] for n in names}, graph.edges, graph.metadata, graph.allow_cycles)
    assert shuffled.back_edges() == graph.back_edges()
    assert shuffled.infer_shapes() == graph.infer_shapes()
    assert shuffled.equals(graph)


def _torch_output(node: ir.Node, x: torch.Tensor) -> torch.Tensor:
    """The same layer computed with torch.nn.functional (batch dim added)."""
    t = lambda a: torch.from_numpy(np.asarray(a, np.float32))  # noqa: E731
    if isinstance(node, (ir.Conv1d, ir.Conv2d)):
        conv = F.conv1d if isinstance(node, ir.Conv1d) else F.conv2d
        return conv(x, t(node.weight), t(node.bias), node.stride, node.padding, node.dilation, node.groups)
    if isinstance(node, ir.SepConv2d):
        y = F.conv2d(x, t(node.depthwise_weight), t(node.depthwise_bias), node.stride, node.padding, node.dilation,
                     groups=node.depthwise_weight.shape[0])
        return F.conv2d(y, t(node.pointwise_weight), t(node.pointwise_bias))
    if isinstance(node, ir.MaxPool2d):
        return F.max_pool2d(x, node.kernel_size, node.stride, node.padding, node.dilation, node.ceil_mode)
    if isinstance(node, ir.AvgPool2d):
        return F.avg_pool2d(x, node.kernel_size, node.stride, node.padding, node.ceil_mode, node.count_include_pad)
    if isinstance(node, ir.SumPool2d):
        return F.avg_pool2d(x, node.kernel_size, node.stride, node.padding)
    if isinstance(node, ir.Upsample):
        kw = {"align_corners": node.align_corners} if node.mode == "bilinear" else {}
        size = {"size": node.size} if node.size is not None else {"scale_factor": node.scale_factor}
        return F.interpolate(x, mode=node.mode, **size, **kw)
    if isinstance(node, ir.Flatten):
        shift = lambda d: d + 1 if d >= 0 else d  # noqa: E731
        return torch.flatten(x, shift(node.start_dim), shift(node.end_dim))
    if isinstance(node, ir.Affine):
        return F.linear(x, t(node.weight), t(node.bias))
    if isinstance(node, ir.Pad):
        return F.pad(x, node.padding, value=node.value)
    raise AssertionError(type(node))


SHAPED = {"Conv1d": (2,), "Conv2d": (3,), "SepConv2d": (3,), "MaxPool2d": (3,), "AvgPool2d": (3,), "SumPool2d": (3,),
          "Upsample": (3,), "Flatten": (1, 2, 3), "Affine": (1, 2, 3), "Pad": (2, 3)}


@pytest.mark.parametrize("type_name", list(SHAPED))
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_infer_shapes_matches_torch(type_name, data):
    shape = data.draw(input_shapes(SHAPED[type_name]))
    node = data.draw(node_for_shape(type_name, shape, np.float32))
    graph = ir.Graph({"in": ir.Input(shape), "n": node}, [("in", "n")])
    expected = _torch_output(node, torch.zeros(2, *shape)).shape[1:]
    assert graph.infer_shapes()["n"] == tuple(expected)


def test_infer_shapes_names_the_node_that_does_not_fit():
    g = ir.Graph({"in": ir.Input((3,)), "fc": ir.Affine(weight=np.zeros((2, 5), np.float32))}, [("in", "fc")])
    with pytest.raises(GraphError, match="'fc'.*weight"):
        g.infer_shapes()
    g = ir.Graph({"in": ir.Input((3,)), "relu": ir.ReLU()}, [])
    with pytest.raises(GraphError, match="'relu'.*no input"):
        g.infer_shapes()


def test_channel_split_outputs_go_to_edges_in_order():
    g = ir.Graph(
        {"in": ir.Input((5, 2)), "s": ir.ChannelSplit(split_sections=(2, 3)), "a": ir.Flatten(), "b": ir.Flatten()},
        [("in", "s"), ("s", "b"), ("s", "a")],
    )
    shapes = g.infer_shapes()
    assert shapes["b"] == (4,) and shapes["a"] == (6,)
    extra = ir.Graph({**g.nodes, "c": ir.ReLU()}, [*g.edges, ("s", "c")])
    with pytest.raises(GraphError, match="2 outputs"):
        extra.infer_shapes()


def test_equality_is_exact():
    base = chain()
    assert base.equals(chain()) and base == chain()
    w32 = ir.Graph({"fc": ir.Affine(weight=np.ones((2, 2), np.float32))})
    w64 = ir.Graph({"fc": ir.Affine(weight=np.ones((2, 2), np.float64))})
    assert not w32.equals(w64) and "'fc' differs" in w32.diff(w64)[0]
    reordered = ir.Graph(dict(reversed(list(base.nodes.items()))), base.edges)
    assert base.equals(reordered)
    other_edges = ir.Graph(base.nodes, [("in", "a"), ("b", "out"), ("a", "b")])
    assert not base.equals(other_edges) and any("edges differ" in d for d in base.diff(other_edges))
    assert not base.equals(chain(metadata={"k": 1}))
    assert not base.equals(chain(allow_cycles=True))
    swapped = ir.Graph({**base.nodes, "a": ir.Tanh(), "b": ir.ReLU()}, base.edges)
    assert not base.equals(swapped)
    nan = ir.Graph({"p": ir.PReLU(weight=np.array([np.nan], np.float32))}, metadata={"x": np.float32("nan")})
    assert nan.equals(ir.Graph({"p": ir.PReLU(weight=np.array([np.nan], np.float32))}, metadata={"x": np.float32("nan")}))


def test_summary_lists_every_node():
    text = ir.Graph({"in": ir.Input((3,)), "fc": ir.Affine(weight=np.zeros((2, 3), np.float32))}, [("in", "fc")]).summary()
    assert "2 nodes, 1 edges, 8 parameters" in text and "Affine" in text and "(2,)" in text
