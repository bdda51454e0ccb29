"""Compatibility with the established TALON toolchain's reader and executor.

- Its reader requires some fields this IR treats as optional: `features` of ReLU, Sigmoid, Tanh, Softmax,
  GELU, ELU, PReLU, Dropout and HybridRegion. `with_required_fields` fills them from inferred shapes, so
  that every graph the converters build is written with them.
- Its executor ignores `Input.shape`, and one of its writers recorded input shapes that disagree with the
  first layer's weights. `reconcile_input_shapes` reads such a graph with the shape the layers imply and a
  warning naming the node, as that executor runs it.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from .errors import GraphError, PrimitiveError
from .graph import Graph
from .primitives import (
    ELU, GELU, Affine, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Dropout, HybridRegion, Input, Node, PReLU, ReLU,
    SepConv2d, Sigmoid, Softmax, Tanh,
)

FEATURES_REQUIRED = (ReLU, Sigmoid, Tanh, Softmax, GELU, ELU, PReLU, Dropout, HybridRegion)


class InputShapeWarning(UserWarning):
    """A file's Input shape disagrees with its first layer; the layer's shape is used (as established)."""


def features_value(shape: tuple[int, ...]) -> int | tuple[int, ...]:
    """`features` as the established toolchain writes it: an int for one feature dim, else the shape."""
    return int(shape[0]) if len(shape) == 1 else tuple(int(d) for d in shape)


def with_required_fields(graph: Graph) -> Graph:
    """The graph with every field the established reader requires filled (`features` from the input shape);
    a graph that already has them all, or whose shapes do not infer, is returned as it is."""
    missing = [n for n, node in graph.nodes.items() if isinstance(node, FEATURES_REQUIRED) and node.features is None]
    if not missing or graph.is_cyclic:
        return graph
    try:
        shapes = graph.infer_shapes()
    except GraphError:
        return graph
    nodes = dict(graph.nodes)
    for name in missing:
        nodes[name] = dataclasses.replace(nodes[name], features=features_value(tuple(shapes[name])))
    return Graph(nodes, graph.edges, graph.metadata, allow_cycles=graph.allow_cycles)


def implied_input_shape(layer: Node, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The input shape (without batch) the first layer's weights imply, keeping the recorded shape's other
    dims; None when the layer implies none."""
    if isinstance(layer, Affine):
        return (*shape[:-1], int(layer.weight.shape[1])) if shape else (int(layer.weight.shape[1]),)
    if isinstance(layer, (Conv1d, Conv2d)):
        channels = layer.in_channels
    elif isinstance(layer, SepConv2d):
        channels = int(layer.depthwise_weight.shape[0])
    elif isinstance(layer, (BatchNorm1d, BatchNorm2d)):
        channels = layer.num_features
    else:
        return None
    return (channels, *shape[1:]) if shape else (channels,)


def reconcile_input_shapes(graph: Graph, source: str = "the graph") -> Graph:
    """The graph with each Input whose recorded shape its successors refuse replaced by the shape they imply
    (warning InputShapeWarning naming the node); other graphs are returned as they are."""
    nodes = dict(graph.nodes)
    for name in graph.inputs:
        shape = tuple(int(d) for d in np.asarray(nodes[name].shape).reshape(-1))
        for succ in graph.successors(name):
            layer = nodes[succ]
            try:
                layer.output_shapes([shape])
                continue
            except (PrimitiveError, ValueError):
                implied = implied_input_shape(layer, shape)
            if implied is None or implied == shape:
                continue
            try:
                layer.output_shapes([implied])
            except (PrimitiveError, ValueError):
                continue
            warnings.warn(f"{source}: Input node {name!r} records shape {shape}, but its successor {succ!r} "
                          f"({type(layer).__name__}) takes {implied}; reading the input as {implied}, as the "
                          "established executor runs it", InputShapeWarning, stacklevel=3)
            nodes[name] = dataclasses.replace(nodes[name], shape=np.array(implied, dtype=np.int64))
            break
    if all(nodes[n] is graph.nodes[n] for n in graph.inputs):
        return graph
    return Graph(nodes, graph.edges, graph.metadata, allow_cycles=graph.allow_cycles)
