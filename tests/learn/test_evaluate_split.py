"""Evaluation over a split: per-case scores, summary JSON, CSV, gallery (segloop.learn.evaluate)."""

import csv
import json

import numpy as np
import pytest
import torch
from torch import nn

from segloop.errors import InvalidArgumentError, OutputExistsError
from segloop.io import Image, write_image
from segloop.learn.checkpoint import save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.data import Volume, prepare_data
from segloop.learn.evaluate import evaluate_split, evaluate_volumes
from segloop.learn.networks import Segmenter, build_network
from segloop.learn.predict import Predictor
from segloop.learn.scoring import score_case, score_cases, soft_dice, truth_masks


def threshold_predictor(**cfg):
    """p(foreground) = sigmoid(20 (x - 0.5)) voxel by voxel."""
    config = load_config({"data": {"path": "x", "normalize": "none", **cfg.pop("data", {})},
                          "model": {"channels": [4, 8]}, **cfg})
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([-10.0, 10.0]).view(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([5.0, -5.0]))
    return Predictor(Segmenter(conv, "softmax"), config, in_channels=1)


def square(shape, lo, hi):
    m = np.zeros(shape, np.uint8)
    m[tuple(slice(lo, hi) for _ in shape)] = 1
    return m


def test_score_case_exact_values():
    truth = np.zeros((10, 10), np.uint8)
    truth[2:6, 2:6] = 1  # one lesion of 16 voxels
    truth[8, 8] = 1  # a second, missed lesion
    pred = np.zeros_like(truth)
    pred[2:6, 3:7] = 1  # shifted by one column
    pred[0, 9] = 1  # a false positive
    row = score_case(pred, truth, classes=["lesion"], spacing=(1.0, 2.0), distances=True)
    c = row["classes"]["lesion"]
    assert row["per_class"]["lesion"] == pytest.approx(2 * 12 / (17 + 17)) == row["dice"]
    assert (c["n_truth"], c["n_pred"], c["tp_truth"], c["fp_pred"]) == (2, 2, 1, 1)
    assert c["hd95"] > 0 and np.isfinite(c["assd"])
    assert "classes" not in score_case(pred, truth, classes=["lesion"])  # Dice only
    two = score_case(np.array([[1, 2, 0]]), np.array([[1, 1, 2]]), classes=["a", "b"])
    assert two["per_class"]["a"] == pytest.approx(2 / 3)
    assert two["per_class"]["b"] == pytest.approx(0.0)
    assert two["dice"] == pytest.approx(1 / 3)
    with pytest.raises(InvalidArgumentError, match="prediction shape"):
        score_case(np.zeros((3, 3)), np.zeros((3, 4)), classes=["a"])


def test_soft_truth_scores_hard_and_soft_dice():
    soft = np.array([[[0.0, 0.4, 0.6, 1.0]]])  # (1 class, 1, 4)
    masks, values = truth_masks(soft, 1, soft=True)
    np.testing.assert_array_equal(masks[0], [[False, False, True, True]])
    probs = np.stack([1 - soft[0], soft[0]])  # softmax output equal to the soft truth
    row = score_case(np.array([[0, 0, 1, 1]]), soft, classes=["brain"], probabilities=probs,
                     soft=True)
    assert row["per_class"]["brain"] == 1.0
    expected = 2 * np.sum(soft ** 2) / (2 * np.sum(soft))
    assert row["soft_per_class"]["brain"] == pytest.approx(expected) == row["soft_dice"]
    # probabilities equal to the soft truth: no squared error, every threshold agrees
    assert row["soft_mse"] == pytest.approx(0.0, abs=1e-12) and row["threshold_dice"] == 1.0
    binary = np.stack([1 - masks[0], masks[0]]).astype(float)[:, None]  # (2, 1, 1, 4)
    row = score_case(np.array([[0, 0, 1, 1]]), soft, classes=["brain"],
                     probabilities=binary[:, 0], soft=True)
    assert row["soft_mse"] == pytest.approx(np.mean((masks[0] - soft[0]) ** 2))
    # a 0/1 output misses the agreement levels: only thresholds 0.4 and 0.5 agree fully
    assert row["threshold_dice"] == pytest.approx((3 * 0.8 + 2 * 1.0 + 4 * 2 / 3) / 9)
    assert soft_dice(np.zeros(3), np.zeros(3)) == 1.0
    with pytest.raises(InvalidArgumentError, match="soft label needs 2 channels"):
        truth_masks(soft, 2, soft=True)


def volumes():
    """Three 2D cases with known Dice under the threshold predictor, and one volume."""
    out = []
    for i, shift in enumerate((0, 1, 3)):
        truth = square((12, 12), 2, 8)
        image = np.roll(truth, shift, axis=1).astype(np.float32)[None]
        out.append(Volume(f"case{i}", f"s{i}", image, truth, (1.0, 1.0), f"case{i}.png"))
    return out


def test_evaluate_volumes_writes_csv_json_gallery(tmp_path):
    predictor = threshold_predictor()
    result = evaluate_volumes(predictor, volumes(), tmp_path / "ev",
                              extra={"split": "test"})
    dices = [1.0, 2 * 30 / 72, 2 * 18 / 72]  # a 6x6 square shifted by 0, 1, 3 columns
    assert [c["dice"] for c in result["per_case"]] == pytest.approx(dices)
    assert result["dice"] == pytest.approx(np.mean(dices))
    # the per-case Dice of training's metrics.json: the same function, the same values
    trained = score_cases(predictor, volumes(), native=True)
    assert [c["dice"] for c in trained] == [c["dice"] for c in result["per_case"]]
    assert result["per_class"] == {"foreground": pytest.approx(np.mean(dices))}
    assert result["dice_pooled"] == pytest.approx(2 * (36 + 30 + 18) / (6 * 36))
    assert result["n_cases"] == 3 and result["split"] == "test"
    assert result["classes"]["foreground"]["lesions"]["tp_truth"] == 3
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["dice"] == pytest.approx(result["dice"])
    with open(tmp_path / "ev" / "cases.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == ["case0", "case1", "case2"]
    assert float(rows[1]["dice"]) == pytest.approx(dices[1], abs=1e-5)
    assert rows[0]["hd95"] == "0" and rows[0]["n_truth"] == "1"
    png = (tmp_path / "ev" / "gallery.png").read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 5000
    with pytest.raises(OutputExistsError, match="cases.csv: exists"):
        evaluate_volumes(predictor, volumes(), tmp_path / "ev")
    evaluate_volumes(predictor, volumes(), tmp_path / "ev", overwrite=True, gallery=False)
    assert (tmp_path / "ev" / "metrics.json.~1~").exists()
    with pytest.raises(InvalidArgumentError, match="no case"):
        evaluate_volumes(predictor, [], tmp_path / "none")


def test_a_2d_model_evaluates_a_volume_along_its_slice_axis(tmp_path):
    truth = np.zeros((4, 10, 10), np.uint8)
    truth[1:3, 2:7, 3:8] = 1
    vol = Volume("v", "s", truth.astype(np.float32)[None], truth, (3.0, 1.0, 1.0), "v.nii.gz",
                 slice_axis=2)
    result = evaluate_volumes(threshold_predictor(), [vol], tmp_path, gallery=True)
    assert result["dice"] == 1.0 and result["hd95"] == 0.0


def pair_dataset(root, n=6):
    rng = np.random.default_rng(0)
    for i in range(n):
        mask = square((24, 24), 4 + i % 3, 14 + i % 3)
        image = (mask * 150 + rng.integers(0, 60, (24, 24))).astype(np.uint8)
        write_image(Image(image), root / "images" / f"im{i}.png")
        write_image(Image(mask * 255, kind="label"), root / "labels" / f"im{i}.png")
    return root


def test_evaluate_split_recreates_the_test_split(tmp_path):
    data = pair_dataset(tmp_path / "data")
    cfg = load_config({"data": {"path": str(data), "split": {"test": 2, "val": 1}},
                       "model": {"channels": [4, 8], "num_res_units": 0},
                       "output": {"dir": str(tmp_path / "run")}})
    torch.manual_seed(0)
    net = build_network(cfg, in_channels=1)
    ck = save_checkpoint(tmp_path / "run" / "best.pt",
                         {"config": cfg, "in_channels": 1, "model": net.state_dict()})
    result = evaluate_split(ck, "test", tmp_path / "eval", tta=True)
    test_ids = [v.id for v in prepare_data(cfg, log=lambda _: None).test]
    assert [c["id"] for c in result["per_case"]] == test_ids and len(test_ids) == 2
    assert result["checkpoint"] == str(ck) and 0.0 <= result["dice"] <= 1.0
    assert {"cases.csv", "metrics.json", "gallery.png"} <= {
        p.name for p in (tmp_path / "eval").iterdir()}
    moved = evaluate_split(ck, "val", tmp_path / "eval_val", data_path=data)
    assert moved["n_cases"] == 1 and moved["split"] == "val"
    with pytest.raises(InvalidArgumentError, match="split must be"):
        evaluate_split(ck, "dev", tmp_path / "x")
