"""Training on the consensus of each case's raters (``data.fusion``)."""

from pathlib import Path

import numpy as np
import pytest

from segloop.errors import SegloopError
from segloop.io import Image, open_dataset, write_image
from segloop.learn.config import load_config
from segloop.learn.data import prepare_data, read_volume

pytest.importorskip("torch")


def _raters_folder(root: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """Two images; raters x, y, z on the first, only x and y on the second."""
    masks = {}
    for i, name in enumerate(("a.png", "b.png")):
        write_image(Image(np.full((16, 16), 40 + i, np.uint8)), root / "images" / name)
        for rater, (lo, hi) in {"x": (4, 12), "y": (4, 12), "z": (2, 14)}.items():
            if name == "b.png" and rater == "z":
                continue
            m = np.zeros((16, 16), np.uint8)
            m[lo:hi, lo:hi] = 1
            m[0, 0] = rater == "z"  # a single vote, outvoted
            masks[f"{name}:{rater}"] = m
            write_image(Image(m, kind="label"), root / "labels" / rater / name)
    return root, masks


def _cfg(path, **data):
    return load_config({"data": {"path": str(path), "normalize": "none", **data}}).data


def test_majority_and_soft_consensus_become_the_training_truth(tmp_path):
    root, masks = _raters_folder(tmp_path)
    case = open_dataset(root)["a"]
    votes = np.sum([masks[f"a.png:{r}"] for r in "xyz"], axis=0)
    hard = read_volume(case, _cfg(root, fusion="majority"))
    assert np.array_equal(hard.label, (votes >= 2).astype(np.uint8))
    soft = read_volume(case, _cfg(root, fusion="soft", soft_labels=True))
    assert soft.label.dtype == np.float32
    assert np.allclose(soft.label[0], votes / 3.0)
    staple = read_volume(case, _cfg(root, fusion="staple"))
    assert staple.label[0, 0] == 0 and staple.label[8, 8] == 1
    posterior = read_volume(case, _cfg(root, fusion="soft_staple", soft_labels=True))
    assert 0.0 <= posterior.label.min() and posterior.label.max() <= 1.0
    assert posterior.label[0, 8, 8] > 0.99 and posterior.label[0, 0, 0] < 0.5


def test_fusion_uses_every_case_its_own_raters(tmp_path):
    root, masks = _raters_folder(tmp_path)
    cfg = load_config({"data": {"path": str(root), "fusion": "soft", "soft_labels": True,
                                "normalize": "none", "split": {"test": 0, "val": 0}},
                       "output": {"dir": str(tmp_path / "out")}})
    data = prepare_data(cfg)
    b = next(v for v in data.train if v.id == "b")
    assert np.allclose(b.label[0], masks["b.png:x"])  # x and y agree on b


def test_fusion_config_errors():
    with pytest.raises(SegloopError, match="soft_labels"):
        load_config({"data": {"path": ".", "fusion": "soft"}})
    with pytest.raises(SegloopError, match="not a list"):
        load_config({"data": {"path": ".", "fusion": "majority", "label": ["a", "b"]}})
    with pytest.raises(SegloopError, match="fusion"):
        load_config({"data": {"path": ".", "fusion": "median"}})
