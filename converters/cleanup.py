"""Clean-up passes run before ONNX import, all from the ecosystem's libraries (DESIGN.md).

Version conversion for opsets older than the importers know, initializers removed from the inputs
(old exporters list them there, so nothing looks constant), constant folding (ConstantOfShape
included, so weights that exporters compute by ConstantOfShape/Unsqueeze/Mul chains become
constants), constants lifted to initializers, dead-node removal and shape inference. No pass fuses
BatchNormalization into Conv: the IR keeps BatchNorm nodes.
"""

from __future__ import annotations

import onnx
import onnx.version_converter
import onnx_ir as ir
import onnx_ir.passes.common as common
from onnxscript.optimizer import fold_constants

from .errors import ConversionError

MIN_OPSET = 7  # older default-domain models are brought up to this opset by onnx's version converter
FOLD_LIMIT = 1 << 40  # fold computed weights of any size: they would be computed at every run otherwise


def default_opset(proto: onnx.ModelProto) -> int:
    """The model's opset for the default ONNX domain."""
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ConversionError("the model imports no default ONNX domain opset")


def upgrade_opset(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Bring a model older than MIN_OPSET up to it with onnx.version_converter; others are left as they are."""
    if default_opset(proto) >= MIN_OPSET:
        return proto
    try:
        return onnx.version_converter.convert_version(proto, MIN_OPSET)
    except Exception as exc:  # the converter raises RuntimeError/ValueError subclasses from C++
        raise ConversionError(f"cannot convert opset {default_opset(proto)} to {MIN_OPSET}: {exc}") from exc


def _fold_constant_of_shape(node: ir.Node) -> bool | None:
    """Fold ConstantOfShape too (onnxscript skips it by default to keep files small)."""
    return True if node.op_type == "ConstantOfShape" and node.domain in ("", "ai.onnx") else None


def clean(proto: onnx.ModelProto) -> ir.Model:
    """Run the clean-up passes on a ModelProto and return the onnx_ir model to import."""
    model = ir.serde.deserialize_model(upgrade_opset(proto))
    common.RemoveInitializersFromInputsPass()(model)
    common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(model)
    fold_constants(model, input_size_limit=FOLD_LIMIT, output_size_limit=FOLD_LIMIT, should_fold=_fold_constant_of_shape)
    common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(model)
    common.RemoveUnusedNodesPass()(model)
    common.ShapeInferencePass(strict_mode=False, data_prop=True)(model)
    return model
