"""Scoring a model on preprocessed volumes (segloop.learn.scoring)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from segloop.learn.config import load_config  # noqa: E402
from segloop.learn.data import Volume  # noqa: E402
from segloop.learn.networks import build_network  # noqa: E402
from segloop.learn.predict import Predictor  # noqa: E402
from segloop.learn.scoring import infer_volume, score_cases, summarize  # noqa: E402


@pytest.fixture(scope="module")
def predictor():
    """A random 2D U-Net slicing axially by default (``data.slice_axis``)."""
    cfg = load_config({"data": {"path": "x", "normalize": "none"},
                       "model": {"channels": [4, 8], "num_res_units": 0}})
    torch.manual_seed(5)
    return Predictor(build_network(cfg, in_channels=1), cfg, in_channels=1)


def _volume(slice_axis):
    image = np.random.default_rng(6).random((1, 5, 6, 8), dtype=np.float32)
    label = (image[0] > 0.5).astype(np.uint8)
    return Volume("v", "s", image, label, (1.0, 1.0, 1.0), "v.nii.gz", slice_axis)


@pytest.mark.parametrize("axis", [None, 0, 2])
def test_a_volume_is_inferred_along_its_own_slice_axis(predictor, axis):
    vol = _volume(axis)
    probs, used = infer_volume(predictor, vol)
    assert used == (0 if axis is None else axis)  # None: the config's axial
    np.testing.assert_array_equal(probs, predictor.infer(vol.image, slice_axis=used))
    one = np.take(vol.image, 2, axis=1 + used)
    np.testing.assert_allclose(np.take(probs, 2, axis=1 + used), predictor.infer(one), atol=1e-6)


def test_scores_are_the_dice_of_the_label_and_their_means(predictor):
    vol = _volume(2)
    cases = score_cases(predictor, [vol, Volume("none", "s", vol.image, None, (1.0,) * 3, "x")])
    assert [c["id"] for c in cases] == ["v"]  # no label: skipped
    pred = predictor.to_label(infer_volume(predictor, vol)[0], slice_axis=2)
    fg, truth = pred == 1, vol.label == 1
    dice = 2 * np.count_nonzero(fg & truth) / (np.count_nonzero(fg) + np.count_nonzero(truth))
    assert cases[0]["dice"] == pytest.approx(dice) == cases[0]["per_class"]["foreground"]
    summary = summarize(cases, predictor.config)
    assert summary["dice"] == pytest.approx(dice) and summary["per_case"] == cases
