import math

import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.metrics import LesionDetection, lesion_detection


def two_truth_three_pred():
    truth = np.zeros((8, 10), np.uint8)
    truth[1:3, 1:3] = 1  # lesion A, 4 voxels
    truth[5:7, 6:9] = 1  # lesion B, 6 voxels
    pred = np.zeros((8, 10), np.uint8)
    pred[2:4, 2:4] = 1  # hits A in one voxel, (2, 2)
    pred[0, 6:8] = 1  # false positive
    pred[7, 0] = 1  # false positive (one voxel)
    return pred, truth


def test_two_truth_three_pred_one_hit():
    pred, truth = two_truth_three_pred()
    result = lesion_detection(pred, truth)
    assert result == LesionDetection(
        n_truth=2, n_pred=3, tp_truth=1, fp_pred=2, tpr=1 / 2, fdr=2 / 3
    )
    assert result.as_dict() == {
        "n_truth": 2,
        "n_pred": 3,
        "tp_truth": 1,
        "fp_pred": 2,
        "tpr": 0.5,
        "fdr": 2 / 3,
    }


def test_min_overlap_voxels():
    pred, truth = two_truth_three_pred()
    # the hit on A shares one voxel only: with 2 required, nothing matches
    strict = lesion_detection(pred, truth, min_overlap_voxels=2)
    assert (strict.tp_truth, strict.fp_pred, strict.tpr, strict.fdr) == (0, 3, 0.0, 1.0)
    pred[1, 2] = 1  # now the hit (still one component) shares (1, 2) and (2, 2) with A
    relaxed = lesion_detection(pred, truth, min_overlap_voxels=2)
    assert (relaxed.n_pred, relaxed.tp_truth, relaxed.fp_pred) == (3, 1, 2)


def test_connectivity_decides_what_is_one_lesion():
    truth = np.zeros((4, 4), bool)
    truth[0, 0] = truth[1, 1] = truth[2, 2] = True  # a diagonal chain
    pred = np.zeros((4, 4), bool)
    pred[2, 2] = True
    full = lesion_detection(pred, truth)  # default: 8-connectivity in 2D
    assert (full.n_truth, full.tp_truth, full.tpr) == (1, 1, 1.0)
    faces = lesion_detection(pred, truth, connectivity=1)
    assert (faces.n_truth, faces.tp_truth, faces.tpr) == (3, 1, 1 / 3)


def test_3d_edge_and_corner_neighbours():
    truth = np.zeros((3, 3, 3), bool)
    truth[0, 0, 0] = truth[1, 1, 0] = truth[2, 2, 1] = True  # edge, then corner neighbours
    counts = [lesion_detection(truth, truth, connectivity=c).n_truth for c in (1, 2, 3)]
    assert counts == [3, 2, 1]
    assert lesion_detection(truth, truth).n_truth == 1


def test_one_prediction_covering_two_lesions():
    truth = np.zeros((1, 7), bool)
    truth[0, [1, 5]] = True
    pred = np.zeros((1, 7), bool)
    pred[0, 1:6] = True
    result = lesion_detection(pred, truth)
    assert (result.n_truth, result.n_pred, result.tp_truth, result.fp_pred) == (2, 1, 2, 0)
    assert (result.tpr, result.fdr) == (1.0, 0.0)


@pytest.mark.parametrize(
    ("pred_on", "truth_on", "tpr", "fdr"),
    [
        (False, False, 1.0, 0.0),
        (True, False, math.nan, 1.0),
        (False, True, 0.0, math.nan),
    ],
    ids=["both-empty", "truth-empty", "pred-empty"],
)
def test_empty_masks(pred_on, truth_on, tpr, fdr):
    lesion = np.zeros((5, 5), bool)
    lesion[1:3, 1:3] = True
    empty = np.zeros((5, 5), bool)
    result = lesion_detection(lesion if pred_on else empty, lesion if truth_on else empty)
    assert (result.n_pred, result.n_truth) == (int(pred_on), int(truth_on))
    for value, expected in ((result.tpr, tpr), (result.fdr, fdr)):
        assert math.isnan(value) if math.isnan(expected) else value == expected


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"connectivity": 0}, "between 1 and 2"),
        ({"connectivity": 3}, "between 1 and 2"),
        ({"connectivity": 1.5}, "integer"),
        ({"min_overlap_voxels": 0}, "positive integer"),
        ({"min_overlap_voxels": 1.0}, "positive integer"),
        ({"min_overlap_voxels": True}, "positive integer"),
    ],
)
def test_bad_options_are_refused(kwargs, match):
    mask = np.ones((2, 2), bool)
    with pytest.raises(InvalidArgumentError, match=match):
        lesion_detection(mask, mask, **kwargs)


def test_shape_mismatch_is_refused():
    with pytest.raises(InvalidArgumentError, match="same shape"):
        lesion_detection(np.ones((2, 2)), np.ones((2, 2, 1)))
