"""Shared test fixtures: paths to the real data in ``../shared/data``.

The real datasets live beside the project (``../shared/data`` from the
project root; CI has them). ``SEGLOOP_SHARED_DATA`` overrides the location.
Tests that need them are skipped, visibly, when they are absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SEGLOOP_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared(*parts: str) -> Path:
    """Path inside the shared data folder."""
    return SHARED_DATA.joinpath(*parts)


def needs_shared(*parts: str):
    """``skipif`` marker for tests that read ``../shared/data/<parts>``."""
    path = shared(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"shared data not found: {path}")


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder (skips the test when it is absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found: {SHARED_DATA}")
    return SHARED_DATA
