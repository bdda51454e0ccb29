"""PyTorch <-> TALON IR: torch modules per primitive, graph executors, and to_ir."""

from . import cnn_modules  # noqa: F401  (registers the modules of the CNN-family primitives)
from .cyclic import CyclicGraphExecutor, CyclicState
from .errors import ExecutorError, InputError, StateError
from .executor import GraphExecutor, ir_to_torch
from .export import to_ir
from .host_region import HostRegionModule
from .modules import (
    AffineModule,
    ChannelSplitModule,
    ConcatModule,
    IFModule,
    LIFModule,
    PadModule,
    SepConv2dModule,
    SkipModule,
    SpikingAffineModule,
    node_to_module,
    nodes_to_modules,
    register_module,
)
from .nir_modules import CubaLIFModule, IntegratorModule, LIModule, ScaleModule, SumPool2dModule, ThresholdModule

__all__ = [
    "to_ir", "ir_to_torch", "GraphExecutor", "CyclicGraphExecutor", "CyclicState", "node_to_module",
    "nodes_to_modules", "register_module", "LIFModule", "IFModule", "ChannelSplitModule", "ConcatModule",
    "SkipModule", "SepConv2dModule", "AffineModule", "SpikingAffineModule", "PadModule", "ExecutorError",
    "InputError", "StateError", "HostRegionModule",
    "LIModule", "IntegratorModule", "CubaLIFModule", "ThresholdModule", "ScaleModule", "SumPool2dModule",
]
