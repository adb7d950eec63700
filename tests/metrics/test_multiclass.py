import math
from pathlib import Path

import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.metrics import (
    DEFAULT_METRICS,
    METRICS,
    dice,
    foreground_labels,
    hausdorff95,
    label_metrics,
    mean_over_labels,
    overlap_scores,
    surface_scores,
)


def two_label_maps():
    truth = np.zeros((6, 8), np.uint8)
    truth[1:3, 1:4] = 1  # 6 voxels
    truth[3:5, 4:7] = 2  # 6 voxels
    pred = np.zeros((6, 8), np.uint8)
    pred[1:3, 2:5] = 1  # 6 voxels, 4 shared with label 1
    pred[3:5, 4:7] = 2  # identical to the truth
    pred[5, 0] = 3  # a label absent from the truth
    return pred, truth


def test_each_label_is_scored_as_its_binary_pair():
    pred, truth = two_label_maps()
    spacing = (2.0, 0.5)
    result = label_metrics(pred, truth, spacing=spacing, metrics=METRICS)
    assert list(result) == [1, 2, 3]
    for label, scores in result.items():
        expected = overlap_scores(pred == label, truth == label)
        expected.update(surface_scores(pred == label, truth == label, spacing=spacing))
        assert list(scores) == list(METRICS)
        for name in METRICS:
            value = scores[name]
            assert value == expected[name] or (math.isnan(value) and math.isnan(expected[name]))


def test_hand_computed_values():
    pred, truth = two_label_maps()
    result = label_metrics(pred, truth, metrics=("dice", "iou", "rvd", "hausdorff"))
    assert result[1] == {"dice": 8 / 12, "iou": 4 / 8, "rvd": 0.0, "hausdorff": 1.0}
    assert result[2] == {"dice": 1.0, "iou": 1.0, "rvd": 0.0, "hausdorff": 0.0}
    # label 3 is predicted but absent from the truth
    assert result[3] == {"dice": 0.0, "iou": 0.0, "rvd": math.inf, "hausdorff": math.inf}


def test_default_metrics_and_their_order():
    pred, truth = two_label_maps()
    result = label_metrics(pred, truth)
    assert all(tuple(scores) == DEFAULT_METRICS for scores in result.values())


def test_labels_argument_selects_and_scores_absent_labels_as_empty():
    pred, truth = two_label_maps()
    result = label_metrics(pred, truth, labels=[9, 2, 2], metrics=["dice", "hd95", "precision"])
    assert list(result) == [2, 9]
    assert result[9] == {"dice": 1.0, "hd95": 0.0, "precision": 1.0}  # both empty


def test_float_label_maps_with_integer_values_are_accepted():
    pred, truth = two_label_maps()
    as_float = label_metrics(pred.astype(np.float32), truth.astype(np.float64))
    as_int = label_metrics(pred, truth)
    assert as_float.keys() == as_int.keys()
    for label in as_int:
        for name in DEFAULT_METRICS:
            a, b = as_float[label][name], as_int[label][name]
            assert a == b or (math.isnan(a) and math.isnan(b))


def test_3d_label_map_with_spacing():
    truth = np.zeros((4, 6, 6), np.int16)
    truth[1:3, 1:5, 1:5] = 4
    pred = np.roll(truth, 1, axis=0)  # shift by one slice of 3 mm
    result = label_metrics(pred, truth, spacing=(3.0, 1.0, 1.0), metrics=("dice", "hd95"))
    assert result == {4: {"dice": dice(pred, truth), "hd95": 3.0}}
    assert result[4]["dice"] == 2 * 16 / 64
    assert hausdorff95(pred, truth, spacing=(3.0, 1.0, 1.0)) == 3.0


def test_foreground_labels():
    pred, truth = two_label_maps()
    assert foreground_labels(pred, truth) == [1, 2, 3]
    assert foreground_labels(np.zeros((2, 2)), np.zeros((2, 2))) == []
    assert label_metrics(np.zeros((2, 2)), np.zeros((2, 2))) == {}


def test_mean_over_labels_ignores_nan_and_keeps_inf():
    per_label = {
        1: {"dice": 0.5, "precision": math.nan, "hd95": 2.0},
        2: {"dice": 1.0, "precision": 0.25, "hd95": math.inf},
        3: {"dice": 0.0, "precision": math.nan, "hd95": 1.0},
    }
    means = mean_over_labels(per_label)
    assert means["dice"] == 0.5
    assert means["precision"] == 0.25
    assert means["hd95"] == math.inf
    assert math.isnan(mean_over_labels({1: {"recall": math.nan}})["recall"])
    assert mean_over_labels({}) == {}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": [0, 1]}, "background"),
        ({"labels": [1, -1]}, r"label -1 cannot be scored: labels \(--labels\) are positive"),
        ({"labels": [1.5]}, "integers"),
        ({"labels": []}, "at least one label"),
        ({"metrics": ["dice", "hd99"]}, "unknown metric.*'hd99'"),
        ({"metrics": []}, "at least one metric"),
        ({"spacing": (1.0, 1.0, 1.0)}, "spacing"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    pred, truth = two_label_maps()
    with pytest.raises(InvalidArgumentError, match=match):
        label_metrics(pred, truth, **kwargs)


def test_non_integer_label_values_are_refused():
    pred, truth = two_label_maps()
    soft = pred.astype(float)
    soft[0, 0] = 0.5
    with pytest.raises(InvalidArgumentError, match=r"pred is not a label map.*0\.5"):
        label_metrics(soft, truth)


def test_metrics_modules_import_no_private_name_of_another_module():
    import ast
    import importlib

    import segloop.metrics.multiclass as multiclass

    assert {"check_labels", "check_metric_names"} <= set(multiclass.__all__)
    for name in ("evaluate", "lesions", "multiclass", "overlap", "surface"):
        module = importlib.import_module(f"segloop.metrics.{name}")
        tree = ast.parse(Path(module.__file__).read_text())
        private = [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("segloop")
            for alias in node.names
            if alias.name.startswith("_")
        ]
        assert private == [], (name, private)
