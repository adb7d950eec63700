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


def write_bids_contrasts(root: Path, ages: dict, shape=(16, 16), slices: int = 3) -> Path:
    """A BIDS folder: per subject a ``T1w`` and a ``T2w`` volume, their labels, and ages.

    Each volume is ``slices`` copies of :func:`segloop.data.phantom_2d` of seed
    ``k`` (the subject's rank; T2w is ``1 - T1w``), its label under
    ``derivatives/labels``; ``participants.tsv`` gives each subject's ``age``
    (``ages``: ``{subject: age or "n/a"}``): metadata a FiLM model can read.
    """
    import numpy as np

    from segloop.data import phantom_2d
    from segloop.io import Image, write_image

    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.8.0"}')
    (root / "participants.tsv").write_text("participant_id\tage\n" + "".join(
        f"sub-{s}\t{a}\n" for s, a in ages.items()))
    for k, sub in enumerate(ages):
        ph = phantom_2d(shape, seed=k, n_blobs=1, thin_structures=False)
        image, label = np.stack([ph.image] * slices), np.stack([ph.label > 0] * slices)
        for contrast, values in (("T1w", image), ("T2w", 1 - image)):
            write_image(Image(values.astype(np.float32)),
                        root / f"sub-{sub}" / "anat" / f"sub-{sub}_{contrast}.nii.gz")
            write_image(Image(label.astype(np.uint8), kind="label"),
                        root / "derivatives" / "labels" / f"sub-{sub}" / "anat"
                        / f"sub-{sub}_{contrast}_seg-manual.nii.gz")
    return root


def film_checkpoint(cfg, path: Path, *, seed: int = 0, scale: float = 0.5) -> Path:
    """A checkpoint of FiLM config ``cfg`` whose generator is far from zero.

    The metadata encoding is learned from ``cfg``'s data
    (:func:`segloop.learn.data.prepare_data`); the U-Net is seeded by ``seed``
    and the generator's weights are ``scale`` times standard normal draws, so
    the metadata change the outputs (a fresh generator starts at zero).
    """
    import torch

    from segloop.learn.checkpoint import save_checkpoint
    from segloop.learn.data import prepare_data
    from segloop.learn.networks import build_network

    spec = prepare_data(cfg, log=lambda _: None).preprocess["metadata"]
    torch.manual_seed(seed)
    net = build_network(cfg, in_channels=1, metadata=spec)
    with torch.no_grad():
        for p in net.film.parameters():
            p.copy_(torch.randn(p.shape) * scale)
    return save_checkpoint(path, {"config": cfg, "in_channels": 1, "model": net.state_dict(),
                                  "preprocess": {"metadata": spec}})
