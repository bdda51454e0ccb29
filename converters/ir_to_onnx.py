"""TALON IR to ONNX (placeholder until the ONNX domain work lands)."""


def ir_to_onnx(graph, opset=None):  # pragma: no cover
    raise NotImplementedError


def save_onnx(model, path, **kwargs):  # pragma: no cover
    raise NotImplementedError
