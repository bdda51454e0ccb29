"""The torch module of a HostRegion: its ONNX subgraph run by an onnxruntime session, on the host's CPU.

The session is made on the first call (and again after a copy or unpickling: sessions cannot be copied).
Inputs are cast to the dtypes the region declares; floating outputs come back in the first input's dtype and
on its device. A region exported for a static batch (HostRegion.batch = b) runs in chunks of b samples.
No gradient flows through a host region.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from converters.host_model import region_model

from .. import ir
from .errors import ExecutorError
from .modules import exporting, register_module


class HostRegionModule(nn.Module):
    """Runs a HostRegion's ONNX model in onnxruntime: ``forward(*inputs) -> tuple of outputs``."""

    _is_merge = True
    _is_multi_output = True

    def __init__(self, node: ir.HostRegion):
        super().__init__()
        proto = region_model(node)
        self._bytes = proto.SerializeToString()
        self._names = [i.name for i in proto.graph.input]
        self._dtypes = [onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type) for i in proto.graph.input]
        self.batch = node.batch
        self.num_outputs = len(proto.graph.output)
        self._session: ort.InferenceSession | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_session"] = None
        return state

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        if self._session is None:
            options = ort.SessionOptions()
            options.log_severity_level = 3
            self._session = ort.InferenceSession(self._bytes, options, providers=["CPUExecutionProvider"])
        return self._session.run(None, dict(zip(self._names, arrays)))

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if exporting():
            raise ExecutorError("a HostRegion runs in onnxruntime and cannot be traced by torch.export; "
                                "export the graph with converters.ir_to_onnx, which inlines the region")
        if len(xs) != len(self._names):
            raise ExecutorError(f"this HostRegion takes {len(self._names)} inputs, got {len(xs)}")
        arrays = [x.detach().cpu().numpy().astype(d, copy=False) for x, d in zip(xs, self._dtypes)]
        size = arrays[0].shape[0]
        step = self.batch or size
        if size % step:
            raise ExecutorError(f"this HostRegion was exported for a batch of {self.batch}: it runs batches of a "
                                f"multiple of {self.batch} samples, got {size}")
        chunks = [self._run([a[i : i + step] for a in arrays]) for i in range(0, size, step)]
        outputs = [np.concatenate(parts) if len(parts) > 1 else parts[0] for parts in zip(*chunks)]
        like = xs[0]
        return tuple(torch.from_numpy(np.ascontiguousarray(o)).to(
            device=like.device, dtype=like.dtype if o.dtype.kind == "f" and like.is_floating_point() else None)
            for o in outputs)

    def extra_repr(self) -> str:
        return f"inputs={self._names}, outputs={self.num_outputs}, batch={self.batch or 'any'}"


@register_module(ir.HostRegion)
def _host_region(node: ir.HostRegion) -> nn.Module:
    return HostRegionModule(node)
