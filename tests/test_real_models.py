"""CNN topologies written by the legacy and the dynamo exporters at several opsets: the IR run by the torch
executor matches onnxruntime on the original file (rtol 1e-4)."""

import io

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from onnx import TensorProto, helper

from onnx_import_helpers import check, model as make_model


def conv_bn(cin, cout, k=3, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.body = nn.Sequential(conv_bn(8, 8), nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.down = nn.Sequential(conv_bn(8, 16, stride=2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.body(x) + x)
        return self.fc(torch.flatten(self.pool(self.down(x)), 1))


class Dense(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2 = conv_bn(4, 4), conv_bn(8, 4)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(12 * 8 * 8, 6), nn.Softmax(dim=1))

    def forward(self, x):
        x = self.stem(x)
        x = torch.cat([x, self.l1(x)], 1)
        x = torch.cat([x, self.l2(x)], 1)
        return self.head(x)


class Fire(nn.Module):
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU(inplace=True))
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU(inplace=True))
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU(inplace=True))

    def forward(self, x):
        x = self.squeeze(x)
        return torch.cat([self.e1(x), self.e3(x)], 1)


class Squeeze(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
                                      Fire(8, 4, 8), Fire(16, 4, 8))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(16, 5, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


class VGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 8), nn.MaxPool2d(2), conv_bn(8, 16), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Dropout(), nn.Linear(32, 10))

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.view(x.size(0), -1))


def _random_bn(m):
    torch.manual_seed(0)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.3, 0.3)
            mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


def _export(m, x, opset, dynamo, dynamic_batch=False):
    if dynamo:
        return torch.onnx.export(m, (x,), dynamo=True, opset_version=opset, optimize=False, verbose=False).model_proto
    f = io.BytesIO()
    axes = {"x": {0: "batch"}} if dynamic_batch else None
    torch.onnx.export(m, (x,), f, dynamo=False, opset_version=opset, do_constant_folding=False, input_names=["x"],
                      dynamic_axes=axes)
    return onnx.load_from_string(f.getvalue())


@pytest.mark.parametrize("net", [Residual, Dense, Squeeze, VGG])
@pytest.mark.parametrize("opset,dynamo", [(9, False), (13, False), (18, True)])
def test_cnn_topologies(net, opset, dynamo):
    torch.manual_seed(3)
    m = _random_bn(net())
    x = torch.randn(1, 3, 16, 16)
    proto = _export(m, x, opset, dynamo)
    graph = check(proto, (1, 3, 16, 16), rtol=1e-4, atol=1e-5)
    assert sum(type(n).__name__.startswith("BatchNorm") for n in graph.nodes.values()) >= (net is not Squeeze)


@pytest.mark.parametrize("net", [Residual, VGG, Squeeze])
@pytest.mark.parametrize("opset", [9, 13])
def test_dynamic_batch_exports_with_shapes_computed_at_run_time(net, opset):
    """x.view(x.size(0), -1) with a dynamic batch becomes Shape/Gather/Unsqueeze/Concat feeding Reshape."""
    m = _random_bn(net())
    proto = _export(m, torch.randn(1, 3, 16, 16), opset, False, dynamic_batch=True)
    check(proto, (3, 3, 16, 16), rtol=1e-4, atol=1e-5)


def test_weights_computed_by_constant_of_shape_unsqueeze_mul_chains():
    ones = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    nodes = [
        helper.make_node("ConstantOfShape", ["wshape"], ["w1"], value=ones),
        helper.make_node("Unsqueeze", ["scale", "axes"], ["s4"]),
        helper.make_node("Mul", ["w1", "s4"], ["W"]),
        helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"]),
    ]
    rng = np.random.default_rng(0)
    inits = {"wshape": np.array([4, 2, 3, 3], np.int64), "scale": rng.standard_normal((4, 2, 3)).astype(np.float32),
             "axes": np.array([3], np.int64), "g": np.ones(4, np.float32), "b": np.zeros(4, np.float32),
             "m": rng.standard_normal(4).astype(np.float32), "v": np.ones(4, np.float32)}
    graph = check(make_model(nodes, [1, 2, 6, 6], inits=inits), (1, 2, 6, 6), rtol=1e-4, atol=1e-5)
    assert [type(n).__name__ for n in graph.nodes.values()] == ["Input", "Conv2d", "BatchNorm2d", "Output"]


@pytest.mark.parametrize("net", [Residual, Dense, Squeeze, VGG])
def test_legacy_and_dynamo_exports_give_the_same_module_names(net):
    m, x = _random_bn(net()), torch.randn(1, 3, 16, 16)
    from converters import onnx_to_ir

    legacy, dynamo = (list(onnx_to_ir(_export(m, x, opset, d)).nodes) for opset, d in ((13, False), (18, True)))
    assert legacy == dynamo
    if net is Squeeze:
        assert {"features.3.squeeze.0", "features.3.e3.0", "features.3.cat", "classifier.1"} <= set(legacy)


def conv_bn_relu6(cin, cout, k=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion, 3x3 depthwise, linear 1x1 projection, residual when shapes match."""

    def __init__(self, cin, cout, stride, expand=4):
        super().__init__()
        hidden = cin * expand
        self.residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(conv_bn_relu6(cin, hidden, 1), conv_bn_relu6(hidden, hidden, 3, stride, hidden),
                                  nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn_relu6(3, 8, stride=2), InvertedResidual(8, 8, 1),
                                      InvertedResidual(8, 12, 2), conv_bn_relu6(12, 16, 1))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(16, 10), nn.Hardtanh(-2.0, 2.0))

    def forward(self, x):
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


@pytest.mark.parametrize("opset,dynamo", [(9, False), (13, False), (18, True)])
def test_mobilenet_block_with_relu6_and_depthwise_conv(opset, dynamo):
    m = _random_bn(MobileNet())
    x = torch.randn(2, 3, 16, 16)
    graph = check(_export(m, x, opset, dynamo), (2, 3, 16, 16), rtol=1e-4, atol=1e-5)
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert kinds.count("Clamp") == 7 and "ReLU" not in kinds and "Skip" in kinds
    assert any(n.groups == n.weight.shape[0] > 1 for n in graph.nodes.values() if type(n).__name__ == "Conv2d")
