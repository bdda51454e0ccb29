"""Clean-up passes run before ONNX import, all from the ecosystem's libraries (DESIGN.md).

Version conversion for opsets older than the importers know, initializers removed from the inputs
(old exporters list them there, so nothing looks constant), constant folding (ConstantOfShape
included, so weights that exporters compute by ConstantOfShape/Unsqueeze/Mul chains become
constants), constants lifted to initializers, dead-node removal and shape inference. No pass fuses
BatchNormalization into Conv: the IR keeps BatchNorm nodes.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import onnx
import onnx.version_converter
import onnx_ir as ir
import onnx_ir.passes.common as common
from onnxscript.optimizer import fold_constants

from .dynamic_shapes import resolve_batch_shapes
from .errors import ConversionError

MIN_OPSET = 7  # older default-domain models are brought up to this opset by onnx's version converter
# elements a folded constant may have (documented, can be raised): computed weights up to this size become
# constants; a node whose inferred output is larger is not evaluated, so folding never allocates more than
# a few such tensors however small the file (ConstantOfShape([16384, 16384]) is 256 M elements)
FOLD_LIMIT = 1 << 24


def default_opset(proto: onnx.ModelProto) -> int:
    """The model's opset for the default ONNX domain."""
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ConversionError("the model imports no default ONNX domain opset")


def upgrade_opset(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Bring a model older than MIN_OPSET up to it with onnx.version_converter; others are left as they are
    (also models without default-domain ops, such as ai.onnx.ml pipelines, whose nodes are then reported)."""
    if not any(e.domain in ("", "ai.onnx") for e in proto.opset_import) or default_opset(proto) >= MIN_OPSET:
        return proto
    return onnx.version_converter.convert_version(proto, MIN_OPSET)


def _should_fold(node: ir.Node) -> bool | None:
    """Never evaluate a node whose inferred output exceeds FOLD_LIMIT elements (or whose output shape is
    unknown when it makes tensors from a shape); fold ConstantOfShape too (onnxscript skips it by default)."""
    for value in node.outputs:
        shape = value.shape
        if shape is None or not all(isinstance(d, int) for d in shape):
            if node.op_type in _SHAPE_MAKERS and not _small_expand(node):
                return False
            continue
        if math.prod(shape) > FOLD_LIMIT:
            return False
    return True if node.op_type == "ConstantOfShape" and node.domain in ("", "ai.onnx") else None


def _small_expand(node: ir.Node) -> bool:
    """True for an Expand of a constant to a constant shape within FOLD_LIMIT elements (the dynamo exporter
    writes a bias-free Conv's zero bias so, before shape inference has run)."""
    if node.op_type != "Expand" or len(node.inputs) != 2 or any(v is None or v.const_value is None for v in node.inputs):
        return False
    try:
        data, target = node.inputs[0].const_value.shape, node.inputs[1].const_value.numpy()
        size = math.prod(int(d) for d in np.broadcast_shapes(tuple(data), tuple(int(t) for t in target.reshape(-1))))
    except (ValueError, TypeError):
        return False
    return size <= FOLD_LIMIT


_SHAPE_MAKERS = {"ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "Pad", "RandomNormal",
                 "RandomUniform", "EyeLike"}


@contextmanager
def _stage(source: str, stage: str) -> Iterator[None]:
    """Turn any library failure inside one clean-up stage into a ConversionError naming the model and stage;
    the libraries' own log records (onnx_ir logs a whole traceback when shape inference gives up) are muted."""
    muted = logging.getLogger("onnx_ir")
    level = muted.level
    muted.setLevel(logging.CRITICAL)
    try:
        yield
    except ConversionError:
        raise
    except Exception as exc:  # onnx, onnx_ir and onnxscript raise ValueError/RuntimeError/SerdeError subclasses
        raise ConversionError(f"{source}: {stage} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        muted.setLevel(level)


def clean(proto: onnx.ModelProto, folder: str | None = None, source: str = "the ONNX model") -> ir.Model:
    """Run the clean-up passes on a ModelProto (external data, already checked, read from `folder`) and return
    the onnx_ir model to import; `source` names the model in errors."""
    with _stage(source, f"opset conversion to {MIN_OPSET}"):
        proto = upgrade_opset(proto)
    with _stage(source, "reading the model into onnx_ir"):
        model = ir.serde.deserialize_model(proto)
        if folder is not None:
            ir.external_data.set_base_dir(model.graph, folder)
        common.RemoveInitializersFromInputsPass()(model)
        common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(model)
    with _stage(source, "reading external data"):
        ir.external_data.load_to_model(model)  # once, into owned arrays: the file may change later
    with _stage(source, "shape inference"):  # output shapes let constant folding skip oversized results unevaluated
        common.ShapeInferencePass(strict_mode=False, data_prop=True)(model)
    with _stage(source, "constant folding"):
        fold_constants(model, input_size_limit=FOLD_LIMIT, output_size_limit=FOLD_LIMIT,
                       should_fold=_should_fold)
        common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(model)
        common.RemoveUnusedNodesPass()(model)
    with _stage(source, "shape inference"):
        common.ShapeInferencePass(strict_mode=False, data_prop=True)(model)
        resolve_batch_shapes(model)
    return model
