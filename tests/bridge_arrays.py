"""Seeded random arrays for the bridge tests: `rand` draws from a generator that the autouse fixture
`fresh_rng` (import it into a test module to apply it) reseeds before every test, so that every test draws
the same arrays whatever ran before it (some assert that neurons spike)."""

from __future__ import annotations

import numpy as np
import pytest

SEED = 7
_rng = [np.random.default_rng(SEED)]


@pytest.fixture(autouse=True)
def fresh_rng():
    _rng[0] = np.random.default_rng(SEED)


def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    """Standard normal float32 values of the given shape, times `scale`."""
    return (_rng[0].standard_normal(shape) * scale).astype(np.float32)
