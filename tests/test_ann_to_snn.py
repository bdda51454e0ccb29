"""ANN -> SNN conversion: BatchNorm folding, threshold balancing, executors, .t1c, the report and refusals."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto
from onnx import helper as h
from onnx import numpy_helper

from converters import ConversionError, ir_to_onnx
from onnx_ops.executor import OrtExecutor
from talon import ir
from talon.bridge import GraphExecutor
from talon.bridge.ann_to_snn import REPORT_KEY, ann_to_snn, encode, fold_batch_norms, format_report


def _f32(rng, *shape, scale=1.0):
    return (rng.normal(size=shape) * scale).astype(np.float32)


def _cnn(rng, pool: ir.Node | None = None) -> ir.Graph:
    """Conv -> BatchNorm -> ReLU -> pooling -> Flatten -> Affine -> ReLU -> Affine, on 1x6x6 inputs."""
    bn = ir.BatchNorm2d(num_features=4, weight=rng.uniform(0.5, 2, 4).astype(np.float32),
                        bias=_f32(rng, 4, scale=0.3), running_mean=_f32(rng, 4, scale=0.5),
                        running_var=rng.uniform(0.3, 3, 4).astype(np.float32))
    nodes = {
        "input": ir.Input(shape=(1, 6, 6)),
        "conv": ir.Conv2d(weight=_f32(rng, 4, 1, 3, 3, scale=0.5), bias=_f32(rng, 4, scale=0.1), padding=(1, 1)),
        "bn": bn,
        "relu1": ir.ReLU(),
        "pool": pool or ir.AvgPool2d(kernel_size=(2, 2)),
        "flat": ir.Flatten(start_dim=0, end_dim=-1),
        "fc1": ir.Affine(weight=_f32(rng, 12, 36, scale=0.3), bias=_f32(rng, 12, scale=0.1)),
        "relu2": ir.ReLU(),
        "fc2": ir.Affine(weight=_f32(rng, 5, 12, scale=0.5), bias=_f32(rng, 5, scale=0.1)),
        "output": ir.Output(shape=(5,)),
    }
    order = list(nodes)
    return ir.Graph(nodes, list(zip(order, order[1:])))


def _run(graph: ir.Graph, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return GraphExecutor(graph)(torch.from_numpy(x)).numpy()


def test_batchnorm_folding_matches_the_unfolded_ann() -> None:
    rng = np.random.default_rng(0)
    graph = _cnn(rng)
    x = rng.uniform(0, 1, (16, 1, 6, 6)).astype(np.float32)
    folded = fold_batch_norms(graph)
    assert "bn" not in folded.nodes and ("conv", "relu1") in folded.edges
    # float64 reference of the unfolded conv + BatchNorm, computed here with torch's functional ops
    bn = graph.nodes["bn"]
    conv = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(graph.nodes["conv"].weight).double(),
                                      torch.from_numpy(graph.nodes["conv"].bias).double(), padding=1)
    ref = torch.nn.functional.batch_norm(conv, torch.from_numpy(bn.running_mean).double(),
                                         torch.from_numpy(bn.running_var).double(), torch.from_numpy(bn.weight).double(),
                                         torch.from_numpy(bn.bias).double(), eps=bn.eps)
    layer = folded.nodes["conv"]
    got = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(layer.weight).double(),
                                     torch.from_numpy(layer.bias).double(), padding=1)
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-6, atol=1e-6)  # float32-rounded weights
    np.testing.assert_allclose(_run(folded, x), _run(graph, x), rtol=1e-5, atol=1e-5)


def test_converted_cnn_follows_the_ann_and_runs_identically_on_torch_and_onnxruntime(tmp_path) -> None:
    rng = np.random.default_rng(1)
    graph = _cnn(rng)
    x = rng.uniform(0, 1, (64, 1, 6, 6)).astype(np.float32)
    labels = _run(graph, x).argmax(1)
    snn = ann_to_snn(graph, x, timesteps=64, labels=labels)
    assert [type(snn.nodes[n]).__name__ for n in ("relu1", "relu2")] == ["IF", "IF"]
    assert all(snn.nodes[n].reset_mode == "subtract" for n in ("relu1", "relu2"))
    assert "bn" not in snn.nodes and not any(isinstance(n, ir.ReLU) for n in snn.nodes.values())
    report = snn.metadata[REPORT_KEY]
    assert report["ann_accuracy"] == 1.0 and report["agreement"] >= 0.9
    assert report["snn_accuracy"] == report["agreement"]  # the labels are the ANN's predictions
    assert 0 < report["layers"]["relu1"]["firing_rate"] < 1
    assert "SNN-ANN agreement (argmax) at T=64" in format_report(report)

    # spikes identical on both executors: probe the IF layers as extra outputs
    probes = {f"p_{n}": ir.Output(shape=snn.infer_shapes()[n]) for n in ("relu1", "relu2")}
    probed = ir.Graph({**snn.nodes, **probes}, [*snn.edges, ("relu1", "p_relu1"), ("relu2", "p_relu2")])
    seq = encode(x[:8], 20)
    with torch.no_grad():
        torch_out = {k: v.numpy() for k, v in GraphExecutor(probed).run_sequence(seq).items()}
    ort_out = OrtExecutor(ir_to_onnx(probed)).run_sequence(seq.numpy())
    for name in ("p_relu1", "p_relu2"):
        assert torch_out[name].any()
        np.testing.assert_array_equal(torch_out[name], ort_out[name])
    np.testing.assert_allclose(torch_out["output"], ort_out["output"], rtol=1e-5, atol=1e-5)

    path = tmp_path / "snn.t1c"
    ir.write(path, snn)
    assert ir.read(path) == snn


def test_one_hidden_layer_output_is_within_the_rate_error_bound() -> None:
    # with max normalisation nothing saturates on the calibration data, and a subtract-reset IF neuron under a
    # constant current c in [0, 1] fires floor(T*c) (+1 at a float tie) times: its rate is within 1/T of c
    rng = np.random.default_rng(2)
    w1, b1, w2, b2 = _f32(rng, 8, 4), _f32(rng, 8, scale=0.2), _f32(rng, 3, 8), _f32(rng, 3, scale=0.2)
    graph = ir.Graph({"input": ir.Input(shape=(4,)), "fc1": ir.Affine(weight=w1, bias=b1), "relu": ir.ReLU(),
                      "fc2": ir.Affine(weight=w2, bias=b2), "output": ir.Output(shape=(3,))},
                     [("input", "fc1"), ("fc1", "relu"), ("relu", "fc2"), ("fc2", "output")])
    x = _f32(rng, 32, 4)
    hidden = np.maximum(x.astype(np.float64) @ w1.T + b1, 0)
    ann = hidden @ w2.T + b2
    steps = 50
    snn = ann_to_snn(graph, x, timesteps=steps, normalization="max")
    lam = hidden.max()
    assert snn.metadata[REPORT_KEY]["layers"]["relu"]["scale"] == pytest.approx(lam, rel=1e-6)
    with torch.no_grad():
        mean = GraphExecutor(snn).run_sequence(encode(x, steps)).numpy().mean(0)
    bound = np.abs(w2).sum(1) * lam / steps * 1.01 + 1e-5
    assert np.all(np.abs(mean - ann) <= bound)
    assert np.abs(mean - ann).max() > 0  # the bound is not trivially met by an exact copy


def test_torch_and_onnx_models_convert_with_a_residual_sum() -> None:
    rng = np.random.default_rng(4)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc3 = torch.nn.Linear(4, 6), torch.nn.Linear(6, 6), torch.nn.Linear(6, 3)

        def forward(self, x):
            a = torch.relu(self.fc1(x))
            return self.fc3(torch.relu(self.fc2(a) + a))  # identity shortcut around fc2

    torch.manual_seed(0)
    net = Net().eval()
    x = rng.uniform(-1, 1, (40, 4)).astype(np.float32)
    snn = ann_to_snn(net, x, timesteps=100)
    scales = [n for n, node in snn.nodes.items() if isinstance(node, ir.Scale)]
    assert len(scales) == 1  # the shortcut carries spikes of the first layer's scale into the second's
    with torch.no_grad():
        ann = net(torch.from_numpy(x)).numpy()
        out = GraphExecutor(snn).run_sequence(encode(x, 100)).numpy().mean(0)
    assert np.mean(out.argmax(1) == ann.argmax(1)) >= 0.9
    assert snn.metadata[REPORT_KEY]["agreement"] == pytest.approx(np.mean(out.argmax(1) == ann.argmax(1)))

    # the same layers as a hand-written ONNX model (Gemm, Relu, Add)
    p = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    inits = [numpy_helper.from_array(v, k) for k, v in p.items()]
    nodes = [h.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["z1"], transB=1), h.make_node("Relu", ["z1"], ["a"]),
             h.make_node("Gemm", ["a", "fc2.weight", "fc2.bias"], ["z2"], transB=1), h.make_node("Add", ["z2", "a"], ["s"]),
             h.make_node("Relu", ["s"], ["b"]), h.make_node("Gemm", ["b", "fc3.weight", "fc3.bias"], ["y"], transB=1)]
    model = h.make_model(h.make_graph(nodes, "g", [h.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                                      [h.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits),
                         opset_imports=[h.make_opsetid("", 21)])
    onnx.checker.check_model(model)
    from_onnx = ann_to_snn(model, torch.from_numpy(x), timesteps=100)
    with torch.no_grad():
        out2 = GraphExecutor(from_onnx).run_sequence(encode(x, 100)).numpy().mean(0)
    np.testing.assert_allclose(out2, out, rtol=1e-4, atol=1e-4)


def test_rate_encoding_is_seeded_and_max_pooling_is_handled_as_asked() -> None:
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, (20, 1, 6, 6)).astype(np.float32)
    a, b = encode(x, 30, "rate", seed=7), encode(x, 30, "rate", seed=7)
    assert torch.equal(a, b) and set(a.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(a, encode(x, 30, "rate", seed=8))
    assert abs(float(a.mean(0).mean()) - float(x.mean())) < 0.02
    graph = _cnn(rng, ir.MaxPool2d(kernel_size=(2, 2)))
    kept = ann_to_snn(graph, x, timesteps=16, encoding="rate", seed=3)
    assert isinstance(kept.nodes["pool"], ir.MaxPool2d) and kept.metadata[REPORT_KEY]["encoding"] == "rate"
    assert isinstance(ann_to_snn(graph, x, timesteps=16, max_pool="avg").nodes["pool"], ir.AvgPool2d)
    with pytest.raises(ConversionError, match=r"'pool' \(MaxPool2d\): max pooling refused"):
        ann_to_snn(graph, x, timesteps=16, max_pool="refuse")


def test_what_cannot_be_converted_is_refused_at_once() -> None:
    rng = np.random.default_rng(6)
    graph = _cnn(rng)
    nodes = dict(graph.nodes)
    nodes["relu1"], nodes["relu2"] = ir.Sigmoid(), ir.ReLU(negative_slope=0.1)
    x = rng.uniform(0, 1, (4, 1, 6, 6)).astype(np.float32)
    with pytest.raises(ConversionError) as err:
        ann_to_snn(ir.Graph(nodes, graph.edges), x, timesteps=8)
    assert "'relu1' (Sigmoid): no spiking equivalent" in str(err.value)
    assert "'relu2' (ReLU): a leaky ReLU" in str(err.value)
    # BatchNorm after a ReLU has no preceding layer to fold into
    order = ["input", "conv", "relu1", "bn", "pool", "flat", "fc1", "relu2", "fc2", "output"]
    with pytest.raises(ConversionError, match="'bn' \\(BatchNorm2d\\): BatchNorm is folded only"):
        ann_to_snn(ir.Graph(graph.nodes, list(zip(order, order[1:]))), x, timesteps=8)
    with pytest.raises(ConversionError, match=r"calibration must be shaped \[N, 1, 6, 6\].*got \[4, 36\]"):
        ann_to_snn(graph, x.reshape(4, 36), timesteps=8)
    with pytest.raises(ConversionError, match="timesteps must be a positive int.*encoding must be one of"):
        ann_to_snn(graph, x, timesteps=0, encoding="poisson")
    with pytest.raises(ConversionError, match="percentile must be in"):
        ann_to_snn(graph, x, timesteps=8, percentile=0)
    with pytest.raises(ConversionError, match="labels: 3 labels for 4 calibration samples"):
        ann_to_snn(graph, x, timesteps=8, labels=[0, 1, 2])
    with pytest.raises(ConversionError, match="rate encoding needs inputs in"):
        ann_to_snn(graph, x * 2, timesteps=8, encoding="rate")
    with pytest.raises(ConversionError, match="model must be an ir.Graph"):
        ann_to_snn([1, 2], x, timesteps=8)
    with pytest.raises(ConversionError, match="NaN"):
        ann_to_snn(graph, np.full_like(x, np.nan), timesteps=8)
