import math

import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.metrics import (
    confusion_counts,
    dice,
    iou,
    overlap_scores,
    precision,
    recall,
    relative_volume_difference,
)

ALL = {
    "dice": dice,
    "iou": iou,
    "precision": precision,
    "recall": recall,
    "rvd": relative_volume_difference,
}


def rows(length, *spans):
    """A (1, length) mask true on the half-open column spans given."""
    mask = np.zeros((1, length), bool)
    for start, stop in spans:
        mask[0, start:stop] = True
    return mask


def test_two_rectangles_with_known_overlap():
    pred = rows(8, (0, 6))  # 6 voxels
    truth = rows(8, (2, 8))  # 6 voxels, 4 shared
    assert confusion_counts(pred, truth) == (4, 2, 2, 0)
    assert dice(pred, truth) == 2 * 4 / (6 + 6)
    assert iou(pred, truth) == 4 / 8
    assert precision(pred, truth) == 4 / 6
    assert recall(pred, truth) == 4 / 6
    assert relative_volume_difference(pred, truth) == 0.0


def test_unequal_sizes_give_signed_rvd_and_asymmetric_precision_recall():
    pred = rows(10, (0, 3))  # 3 voxels
    truth = rows(10, (1, 7))  # 6 voxels, 2 shared
    assert dice(pred, truth) == 2 * 2 / (3 + 6)
    assert iou(pred, truth) == 2 / 7
    assert precision(pred, truth) == 2 / 3
    assert recall(pred, truth) == 2 / 6
    assert relative_volume_difference(pred, truth) == (3 - 6) / 6
    assert relative_volume_difference(truth, pred) == (6 - 3) / 3


def test_3d_and_non_boolean_inputs():
    truth = np.zeros((3, 4, 5), np.uint8)
    truth[1, 1:3, 1:4] = 7  # 6 voxels, any non-zero value is foreground
    pred = np.zeros((3, 4, 5), np.float32)
    pred[1, 1:3, 2:5] = 1.0  # 6 voxels, 4 shared
    assert confusion_counts(pred, truth) == (4, 2, 2, 60 - 8)
    assert dice(pred, truth) == 8 / 12


def test_overlap_scores_equal_single_functions():
    rng = np.random.default_rng(0)
    pred = rng.random((9, 11)) > 0.5
    truth = rng.random((9, 11)) > 0.6
    scores = overlap_scores(pred, truth)
    assert scores == {name: fn(pred, truth) for name, fn in ALL.items()}


def test_iou_dice_identity():
    rng = np.random.default_rng(1)
    pred = rng.random((6, 7, 8)) > 0.4
    truth = rng.random((6, 7, 8)) > 0.5
    d = dice(pred, truth)
    assert iou(pred, truth) == pytest.approx(d / (2 - d), rel=1e-12)


@pytest.mark.parametrize(
    ("pred_on", "truth_on", "expected"),
    [
        (
            False,
            False,
            {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0, "rvd": 0.0},
        ),
        (
            False,
            True,
            {"dice": 0.0, "iou": 0.0, "precision": math.nan, "recall": 0.0, "rvd": -1.0},
        ),
        (
            True,
            False,
            {"dice": 0.0, "iou": 0.0, "precision": 0.0, "recall": math.nan, "rvd": math.inf},
        ),
    ],
    ids=["both-empty", "pred-empty", "truth-empty"],
)
def test_empty_mask_conventions(pred_on, truth_on, expected):
    pred = rows(5, (1, 3)) if pred_on else rows(5)
    truth = rows(5, (2, 5)) if truth_on else rows(5)
    for name, fn in ALL.items():
        value = fn(pred, truth)
        if math.isnan(expected[name]):
            assert math.isnan(value), name
        else:
            assert value == expected[name], name
    scores = overlap_scores(pred, truth)
    assert [math.isnan(v) for v in scores.values()] == [math.isnan(v) for v in expected.values()]


def test_disjoint_masks():
    pred, truth = rows(6, (0, 2)), rows(6, (3, 6))
    assert dice(pred, truth) == 0.0
    assert precision(pred, truth) == 0.0
    assert recall(pred, truth) == 0.0


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(InvalidArgumentError, match=r"pred \(2, 3\) and truth \(3, 2\)"):
        dice(np.zeros((2, 3)), np.zeros((3, 2)))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros(4), "2D or 3D"),
        (np.zeros((2, 2, 2, 2)), "2D or 3D"),
        (np.array([[0.0, np.nan]]), "NaN"),
        (np.array([["a", "b"]]), "numeric"),
    ],
)
def test_bad_inputs_are_refused(bad, match):
    with pytest.raises(InvalidArgumentError, match=match):
        dice(bad, np.zeros(bad.shape))
