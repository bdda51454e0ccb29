"""Reading a HostRegion's ONNX model safely: protobuf parsing only (nothing in it is executed), no external data,
a valid model whose inputs and outputs agree with the node's declared shapes."""

from __future__ import annotations

import onnx
from google.protobuf.message import DecodeError

from talon.ir import HostRegion

from .errors import ConversionError
from .safety import check_external_data


def region_model(node: HostRegion, name: str = "HostRegion") -> onnx.ModelProto:
    """The node's ONNX model, parsed (protobuf only: nothing is executed) and checked: no external data, a valid
    model, and inputs and outputs that agree with the node's shapes. ConversionError names the node."""
    where = f"HostRegion {name!r}"
    try:
        proto = onnx.ModelProto.FromString(node.model.tobytes())
    except (DecodeError, ValueError) as exc:
        raise ConversionError(f"{where}: `model` is not a serialized ONNX model: {exc}") from None
    try:
        check_external_data(proto, None)
        onnx.checker.check_model(proto)
    except (ConversionError, onnx.checker.ValidationError) as exc:
        raise ConversionError(f"{where}: `model` is not a self-contained valid ONNX model: {exc}") from None
    for kind, infos, expected in (("input", proto.graph.input, node.region_inputs),
                                  ("output", proto.graph.output, node.region_outputs)):
        got = [_dims(i)[1:] for i in infos]
        if len(got) != len(expected) or any(not _fits(g, e) for g, e in zip(got, expected)):
            raise ConversionError(f"{where}: the model's {kind} shapes {got} disagree with the node's {expected}")
    return proto


def _dims(info: onnx.ValueInfoProto) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]


def _fits(dims: list[int | None], shape: tuple[int, ...]) -> bool:
    return len(dims) == len(shape) and all(d is None or d == s for d, s in zip(dims, shape))
