"""Shared pytest fixtures: the repository root and the established toolchain's fixture files (tests/fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def fixture_manifest() -> list[dict]:
    """The MANIFEST.json entries of the established toolchain's .t1c fixtures."""
    return json.loads((FIXTURES / "MANIFEST.json").read_text())


@pytest.fixture
def fixtures_dir() -> Path:
    """The folder holding the established toolchain's .t1c files, their .npz traces and MANIFEST.json."""
    return FIXTURES
