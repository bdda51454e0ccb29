"""Resize and Upsample import to Upsample vs onnxruntime, only where the coordinate rule is torch's."""

import numpy as np
import pytest
from onnx import helper

from converters import UnsupportedOperatorError, onnx_to_ir
from onnx_import_helpers import check, model
from talon.ir import Upsample


@pytest.mark.parametrize("opset", (7, 8))
def test_upsample_nearest_attribute_scales(opset):
    node = helper.make_node("Upsample", ["x"], ["y"], mode="nearest", scales=[1.0, 1.0, 2.0, 2.0])
    g = check(model([node], [1, 2, 3, 4], opset=opset), (1, 2, 3, 4))
    assert g.nodes["upsample"] == Upsample(mode="nearest", scale_factor=2)


def test_upsample_9_and_resize_10_scales_input():
    for op, opset in (("Upsample", 9), ("Resize", 10)):
        node = helper.make_node(op, ["x", "s"], ["y"], mode="nearest")
        check(model([node], [1, 2, 3, 4], inits={"s": np.array([1, 1, 3, 3], np.float32)}, opset=opset), (1, 2, 3, 4))


@pytest.mark.parametrize("opset", (13, 19, 21))
@pytest.mark.parametrize("mode,coord,nearest", [("nearest", "asymmetric", "floor"), ("linear", "half_pixel", None),
                                                ("linear", "pytorch_half_pixel", None), ("linear", "align_corners", None)])
def test_resize(opset, mode, coord, nearest):
    attrs = dict(mode=mode, coordinate_transformation_mode=coord, **({"nearest_mode": nearest} if nearest else {}))
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], **attrs)
    check(model([node], [1, 2, 3, 4], inits={"s": np.array([1, 1, 2, 2], np.float32)}, opset=opset), (1, 2, 3, 4),
          rtol=1e-5, atol=1e-5)


def test_resize_with_sizes_and_refusals():
    node = helper.make_node("Resize", ["x", "", "", "sz"], ["y"], mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    check(model([node], [1, 2, 3, 4], inits={"sz": np.array([1, 2, 6, 10], np.int64)}, opset=13), (1, 2, 3, 4))
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], mode="cubic", name="cubic")
    with pytest.raises(UnsupportedOperatorError, match="cubic"):
        onnx_to_ir(model([node], [1, 2, 3, 4], inits={"s": np.array([1, 1, 2, 2], np.float32)}, opset=13))
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest", coordinate_transformation_mode="tf_half_pixel_for_nn",
                            nearest_mode="round_prefer_ceil", name="hp")
    with pytest.raises(UnsupportedOperatorError, match="other pixels"):
        onnx_to_ir(model([node], [1, 2, 3, 4], inits={"s": np.array([1, 1, 2, 2], np.float32)}, opset=13))
