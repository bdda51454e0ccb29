"""The `talon` ONNX operator domain: op specs, schemas, function bodies, torch custom ops and onnxruntime execution.

- :mod:`onnx_ops.spec`: :class:`OpSpec`, the one declaration of a talon op, and :func:`register_op`; the built-in
  ops are declared in :mod:`onnx_ops.neuron_ops` (LIF, IF, LI, Integrator, CubaLIF, Threshold) and
  :mod:`onnx_ops.layer_ops` (SpikingAffine, ChannelSplit, SepConv2d, SumPool2d, HybridRegion). Everything
  below is derived from the specs:
- :mod:`onnx_ops.schemas`: OpSchemas (registered with onnx) in domain ``talon`` version 1.
- :mod:`onnx_ops.functions`: their bodies in standard ONNX ops; :func:`attach_functions` adds them to a model.
- :mod:`onnx_ops.reference`: numpy implementations for ``onnx.reference.ReferenceEvaluator``.
- :mod:`onnx_ops.state`: graph input/output names of each stateful node's state items, as its spec declares
  them (``<node>.v_in`` / ``<node>.v_out``; CubaLIF also ``<node>.i_in`` / ``<node>.i_out``).
- :mod:`onnx_ops.torch_ops` (imports torch): ``torch.ops.talon.*`` custom ops and their translations for
  ``torch.onnx.export``.
- :mod:`onnx_ops.executor`: :class:`OrtExecutor`.
- :mod:`onnx_ops.errors`: the documented exceptions, all ValueErrors: OrtModelError, OrtInputError, OrtStateError.
"""

from .errors import OpSpecError, OrtInputError, OrtModelError, OrtStateError
from .spec import DOMAIN, VERSION, Attr, OpSpec, Variant, op_spec, op_specs, register_op, state_ops
from .schemas import SCHEMAS, register_schemas
from .reference import REFERENCE_OPS, reference_evaluator
from . import neuron_ops, layer_ops  # noqa: F401  (the built-in ops register their specs)
from .functions import DEFAULT_OPSET, attach_functions, function_protos
from .executor import OrtExecutor
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
    "OpSpec",
    "Attr",
    "Variant",
    "register_op",
    "op_spec",
    "op_specs",
    "state_ops",
    "OpSpecError",
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
