"""Shared pytest fixtures: paths to the shared docs and the established toolchain's fixture files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"


def fixture_manifest() -> list[dict]:
    """The MANIFEST.json entries of the established toolchain's .t1c fixtures."""
    return json.loads((FIXTURES / "MANIFEST.json").read_text())


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.exists():
        pytest.skip("../shared/fixtures is not present")
    return FIXTURES
