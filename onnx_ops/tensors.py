"""Every tensor an ONNX model holds, wherever it sits (initializers, sparse initializers, node attributes
(dense and sparse), subgraphs, functions): the one walk that external-data checks in onnx_ops and converters
share; and torch tensors as numpy arrays for feeding onnxruntime."""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import onnx
import torch
from onnx import AttributeProto, TensorProto


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Iterable[onnx.NodeProto]) -> Iterator[TensorProto]:
    for node in nodes:
        for attr in node.attribute:
            if attr.type == AttributeProto.TENSOR:
                yield attr.t
            elif attr.type == AttributeProto.TENSORS:
                yield from attr.tensors
            elif attr.type == AttributeProto.SPARSE_TENSOR:
                yield from (attr.sparse_tensor.values, attr.sparse_tensor.indices)
            elif attr.type == AttributeProto.SPARSE_TENSORS:
                for sparse in attr.sparse_tensors:
                    yield from (sparse.values, sparse.indices)
            elif attr.type == AttributeProto.GRAPH:
                yield from _graph_tensors(attr.g)
            elif attr.type == AttributeProto.GRAPHS:
                for graph in attr.graphs:
                    yield from _graph_tensors(graph)


def external_tensors(model: onnx.ModelProto) -> Iterator[TensorProto]:
    """Every tensor of the model (graph, subgraphs, functions) whose data lives in an external file."""
    tensors = [*_graph_tensors(model.graph), *(t for f in model.functions for t in _node_tensors(f.node))]
    return (t for t in tensors if t.data_location == TensorProto.EXTERNAL)


def torch_to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A torch tensor as a numpy array; dtypes numpy lacks (bfloat16, the float8 types) go through float32,
    which holds each of their values exactly."""
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point() and tensor.dtype not in (torch.float16, torch.float32, torch.float64):
        tensor = tensor.float()
    return tensor.numpy()
