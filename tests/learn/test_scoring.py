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


# ----------------------------------------------------------------------------- native grid
def _threshold_predictor(cfg):
    """p(foreground) = sigmoid(20 (x - 0.5)) voxel by voxel."""
    from segloop.learn.networks import Segmenter

    conv = torch.nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([-10.0, 10.0]).view(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([5.0, -5.0]))
    return Predictor(Segmenter(conv, "softmax"), cfg, in_channels=1)


def _anisotropic_pairs(root, n=4):
    """2D NIfTI images at 0.4 x 1.3 mm with thin, oblique structures; label value 2."""
    from segloop.io import Image, write_image

    y, x = np.indices((40, 24))
    for i in range(n):
        mask = ((y - 18 - i) ** 2 / 90 + (x - 11) ** 2 / 20 <= 1) | (np.abs(y - 2 * x - i) <= 1)
        mask[:, :2] = False
        image = np.where(mask, 0.9, 0.0).astype(np.float32)
        image[5:35, 3:21] += 0.1  # a non-zero body, so crop_foreground has a box to keep
        geometry = {"spacing": (0.4, 1.3), "origin": (1.0, 2.0)}
        write_image(Image(image, **geometry), root / "images" / f"c{i}.nii.gz")
        write_image(Image(mask.astype(np.uint8) * 2, kind="label", **geometry),
                    root / "labels" / f"c{i}.nii.gz")
    return root


@pytest.mark.parametrize("data", [{"spacing": [1.0, 1.0]}, {"crop_foreground": True}])
def test_test_cases_are_scored_on_their_native_grid(tmp_path, data):
    from segloop.io import read_image
    from segloop.learn.data import prepare_data
    from segloop.learn.evaluate import evaluate_volumes
    from segloop.metrics import dice

    root = _anisotropic_pairs(tmp_path / "data")
    cfg = load_config({"data": {"path": str(root), "normalize": "none", "classes": {"fg": [2]},
                                "split": {"test": 2, "val": 0}, **data},
                       "model": {"channels": [4, 8]}, "output": {"dir": str(tmp_path / "run")}})
    test = prepare_data(cfg, log=lambda _: None).test
    assert all(v.info["resampled"] or v.info["crop"] for v in test)
    predictor = _threshold_predictor(cfg)
    cases = score_cases(predictor, test, native=True)
    expected = []
    for v in test:  # what predict gives on the case's own image, against its own annotation
        label = predictor.predict(read_image(root / "images" / f"{v.id}.nii.gz")).label.array
        truth = read_image(root / "labels" / f"{v.id}.nii.gz", kind="label").array == 2
        assert label.shape == truth.shape == (40, 24)
        expected.append(dice(label == 1, truth))
    assert [c["dice"] for c in cases] == pytest.approx(expected, abs=1e-12)
    assert {c["grid"] for c in cases} == {"native"}
    assert summarize(cases, cfg)["grid"] == "native"
    network = score_cases(predictor, test)  # validation: the preprocessed grid
    assert {c["grid"] for c in network} == {"network"}
    if "spacing" in data:  # resampling both sides flatters the thin structures
        assert np.mean([c["dice"] for c in network]) > np.mean(expected) + 0.01  # 0.016
    evaluated = evaluate_volumes(predictor, test, tmp_path / "eval")  # segloop evaluate --model
    assert [c["dice"] for c in evaluated["per_case"]] == [c["dice"] for c in cases]
    assert evaluated["grid"] == "native" and (tmp_path / "eval" / "gallery.png").stat().st_size
