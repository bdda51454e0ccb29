"""The `talon` ONNX operator domain: schemas, function bodies, torch custom ops and onnxruntime execution."""
