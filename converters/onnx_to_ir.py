"""ONNX to TALON IR (placeholder until the ONNX import work lands)."""


def onnx_to_ir(model_or_path, **kwargs):  # pragma: no cover
    raise NotImplementedError
