"""IR -> ONNX emitters, one module per op family, in ONE registry keyed by IR primitive class.

Convention of the models `converters.ir_to_onnx` writes (what `onnx_to_ir` reads to restore the exact graph):

- Every IR node except Input becomes exactly one *main* ONNX node with the same name. Its
  ``metadata_props`` hold ``talon.primitive`` (IR class name), ``talon.params`` (JSON of every
  non-array field), ``talon.arrays`` (JSON ``{field: initializer name}``; array fields are initializers
  named ``<node>.<field>`` holding the IR array with its exact dtype and shape) and, when non-empty,
  ``talon.metadata`` (JSON of the node's metadata dict). JSON values use
  :mod:`converters.export.jsonvalue` (``decode`` restores arrays, numpy scalars and tuples exactly).
- Input nodes are graph inputs (``[batch, *shape]``) whose ValueInfo carries the same metadata_props;
  Output nodes are ``Identity`` main nodes writing the graph output of the same name (whose ValueInfo
  carries them too).
- Helper nodes have ``metadata_props`` ``talon.role`` (``"sum"``: the sum of a node's several incoming
  edges, inputs in edge order; ``"aux"``: casts of non-float32 arrays, reshapes of flat neuron parameters,
  transposes) and
  ``talon.owner`` (the IR node they belong to); they are named ``<owner>/<suffix>``, as are helper
  initializers (Resize sizes/scales, Reshape shapes, Dropout ratio). An importer skips them.
- Value names: a node's output is the node name; output i of a ChannelSplit is ``<node>:<i>`` and goes
  to the node's i-th outgoing edge. Stateful nodes read ``<node>.v_in`` and write ``<node>.v_out``
  (graph input and output; CubaLIF also ``<node>.i_in`` / ``<node>.i_out``; see :mod:`onnx_ops.state`).
- Model ``metadata_props``: ``talon.edges`` (JSON list of [src, dst] in graph edge order),
  ``talon.metadata`` (graph metadata, when non-empty), ``talon.format`` (``"1"``).
- Ops: standard where exact (Gemm, Conv, MaxPool, AveragePool, Resize, Flatten/Reshape, Relu, LeakyRelu,
  Clip, Sigmoid, Tanh, Softmax, Gelu, Elu, PRelu, BatchNormalization, LayerNormalization, Dropout, Sum, Concat,
  Identity, Mul for Scale, Pad), talon ops for LIF, IF, LI, Integrator, CubaLIF, Threshold, SpikingAffine,
  ChannelSplit, SepConv2d, SumPool2d and HybridRegion. A HostRegion's ONNX subgraph is inlined (see export.host).
"""

from . import activations, cnn, conv, host, io, linear, neurons, norms, pooling, routing  # noqa: F401  (register emitters)
from .context import ARRAYS, METADATA, OWNER, PARAMS, PRIMITIVE, ROLE, EmitContext
from .registry import EMITTERS, emitter_for, register

__all__ = [
    "EMITTERS",
    "register",
    "emitter_for",
    "EmitContext",
    "PRIMITIVE",
    "PARAMS",
    "ARRAYS",
    "METADATA",
    "ROLE",
    "OWNER",
]
