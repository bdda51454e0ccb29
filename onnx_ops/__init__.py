"""The `talon` ONNX operator domain: schemas, function bodies, torch custom ops and onnxruntime execution.

- :mod:`onnx_ops.schemas`: OpSchemas (registered on import) in domain ``talon`` version 1: LIF, IF, LI,
  Integrator, CubaLIF, Threshold, SpikingAffine, ChannelSplit, SepConv2d, SumPool2d, HybridRegion.
- :mod:`onnx_ops.functions`: their bodies in standard ONNX ops; :func:`attach_functions` adds them to a model.
- :mod:`onnx_ops.reference`: numpy implementations for ``onnx.reference.ReferenceEvaluator``.
- :mod:`onnx_ops.state`: graph input/output names of each stateful node's state (``<node>.v_in`` /
  ``<node>.v_out``; CubaLIF also ``<node>.i_in`` / ``<node>.i_out``).
- :mod:`onnx_ops.torch_ops`: ``torch.ops.talon.*`` custom ops and their translations for ``torch.onnx.export``.
- :mod:`onnx_ops.executor`: :class:`OrtExecutor`.
- :mod:`onnx_ops.errors`: the documented exceptions, all ValueErrors: OrtModelError, OrtInputError, OrtStateError.
"""

from .errors import OrtInputError, OrtModelError, OrtStateError
from .executor import OrtExecutor
from .functions import DEFAULT_OPSET, attach_functions, function_protos
from .reference import REFERENCE_OPS, reference_evaluator
from .schemas import DOMAIN, SCHEMAS, VERSION, register_schemas
from .state import (
    STATE_ITEMS,
    node_of_state_input,
    node_of_state_output,
    state_input_name,
    state_output_name,
    state_pairs,
)

__all__ = [
    "DOMAIN",
    "VERSION",
    "SCHEMAS",
    "DEFAULT_OPSET",
    "register_schemas",
    "attach_functions",
    "function_protos",
    "REFERENCE_OPS",
    "reference_evaluator",
    "OrtExecutor",
    "OrtInputError",
    "OrtModelError",
    "OrtStateError",
    "state_input_name",
    "state_output_name",
    "STATE_ITEMS",
    "node_of_state_input",
    "node_of_state_output",
    "state_pairs",
]
