"""Shared test fixtures: paths to the real data in ``../shared/data``.

The real datasets live beside the project (``../shared/data`` from the
project root; CI has them). ``SEGLOOP_SHARED_DATA`` overrides the location.
Tests that need them are skipped, visibly, when they are absent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The server tests' fixtures (``served``, PostgreSQL clusters) are a plugin module of their
# folder: one conftest.py only, since test modules import helpers from it by name.
sys.path.insert(0, str(Path(__file__).resolve().parent / "server"))
pytest_plugins = ["server_fixtures"]

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


def write_phantom_pairs(root: Path, n: int, shape=(64, 64), *, prefix: str = "c",
                        n_blobs: int = 2, weak_edges: bool = False) -> Path:
    """``root/images/`` + ``root/labels/``: ``n`` 8-bit PNG phantoms and binary blob labels.

    ``{prefix}{i}.png`` is :func:`segloop.data.phantom_2d` of seed ``i`` (no
    thin structures): a small dataset for training tests.
    """
    import numpy as np

    from segloop.data import phantom_2d
    from segloop.io import Image, write_image

    for i in range(n):
        ph = phantom_2d(shape, seed=i, n_blobs=n_blobs, thin_structures=False,
                        weak_edges=weak_edges)
        write_image(Image(np.clip(ph.image * 255, 0, 255).astype(np.uint8)),
                    root / "images" / f"{prefix}{i}.png")
        write_image(Image((ph.label > 0).astype(np.uint8), kind="label"),
                    root / "labels" / f"{prefix}{i}.png")
    return root
