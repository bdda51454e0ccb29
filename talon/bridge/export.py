"""PyTorch to TALON IR (placeholder until the to_ir work lands)."""


def to_ir(model, sample, **kwargs):  # pragma: no cover - replaced by the real implementation
    raise NotImplementedError("bridge.to_ir is not implemented yet")
