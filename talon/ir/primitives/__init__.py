"""All built-in TALON IR primitives, registered by class name on import."""

from .activations import ELU, GELU, Clamp, PReLU, ReLU, Sigmoid, Softmax, Tanh
from .base import Node, Shape, get_primitive, list_primitives, param, primitive_fields, register_primitive, values_equal
from .conv import Conv1d, Conv2d, SepConv2d
from .host import HostRegion
from .conv_transpose import ConvTranspose2d
from .elementwise import Bias, HardSigmoid, HardSwish, Multiply, SiLU, Subtract
from .io import Input, Output
from .layout import ChannelShuffle, Permute, Slice
from .linear import Affine, SpikingAffine
from .neurons import IF, LIF
from .nir_neurons import LI, CubaLIF, Integrator, Scale, SumPool2d, Threshold
from .padding import Pad
from .norms import BatchNorm1d, BatchNorm2d, Dropout, HybridRegion, LayerNorm
from .pooling import AvgPool2d, Flatten, MaxPool2d, Upsample
from .routing import ChannelSplit, Concat, Skip

__all__ = [
    "Node", "Shape", "param", "register_primitive", "get_primitive", "list_primitives", "primitive_fields",
    "values_equal", "Input", "Output", "Affine", "SpikingAffine", "Conv1d", "Conv2d", "SepConv2d", "MaxPool2d",
    "AvgPool2d", "Upsample", "Flatten", "LIF", "IF", "Skip", "ChannelSplit", "Concat", "ReLU", "Sigmoid", "Tanh",
    "Softmax", "GELU", "ELU", "PReLU", "Clamp", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout", "HybridRegion",
    "HostRegion", "LI", "Integrator", "CubaLIF", "Threshold", "Scale", "SumPool2d", "Pad",
    "HardSigmoid", "HardSwish", "SiLU", "Bias", "Multiply", "Subtract", "Permute", "ChannelShuffle", "Slice",
    "ConvTranspose2d",
]
