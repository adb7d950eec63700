import argparse
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial import cKDTree

from conftest import needs_shared, shared
from segloop.cli.evaluate import register
from segloop.errors import (
    DatasetError,
    FileMissingError,
    GeometryMismatchError,
    InvalidArgumentError,
    InvalidImageError,
    OutputExistsError,
)
from segloop.io import Image, read_image, write_image
from segloop.metrics import assd, evaluate, hausdorff95, pair_files, surface_distances, surface_mask

# Spacings exactly representable in float32 (NIfTI stores float32 zooms).
SPACING = (2.0, 0.75, 0.5)
BRATS_CASE = ("brats2013", "brats_2013_pat0003_1", "OTMultiClass.nii.gz")
BRATS_LABEL = shared(*BRATS_CASE)


def box_phantom():
    """A (10, 12, 14) volume holding a 6 x 8 x 10 box of label 1."""
    array = np.zeros((10, 12, 14), np.uint8)
    array[2:8, 2:10, 2:12] = 1
    return array


def write_label(path, array, spacing=SPACING):
    write_image(Image(array, spacing=spacing, kind="label"), path)
    return path


def strict_json(path):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="segloop")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["evaluate", *argv])
    return args.func(args)


# ------------------------------------------------------------- box phantom
def test_label_against_itself(tmp_path):
    truth = write_label(tmp_path / "truth.nii.gz", box_phantom())
    result = evaluate(truth, truth)
    assert [c.name for c in result.cases] == ["truth.nii.gz"]
    scores = result.cases[0].metrics[1]
    assert scores["dice"] == 1.0 and scores["iou"] == 1.0 and scores["rvd"] == 0.0
    assert scores["hd95"] == 0.0 and scores["assd"] == 0.0
    assert result.cases[0].spacing == SPACING
    assert result.cases[0].notes == {}


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_box_shifted_by_two_voxels(tmp_path, axis):
    truth_array = box_phantom()
    pred_array = np.roll(truth_array, 2, axis=axis)  # the box stays inside the volume
    truth = write_label(tmp_path / "truth.nii.gz", truth_array)
    pred = write_label(tmp_path / "pred.nii.gz", pred_array)
    scores = evaluate(pred, truth, metrics=("dice", "rvd", "hd95", "hausdorff", "assd"))
    scores = scores.cases[0].metrics[1]
    size = (6, 8, 10)[axis]
    s = SPACING[axis]
    # the overlap loses 2 of the `size` layers along the shift axis
    assert scores["dice"] == (size - 2) / size
    assert scores["rvd"] == 0.0
    # By hand: every directed distance is at most 2 s (each surface voxel's translate by
    # 2 voxels lies on the other surface).  The leading face of each box (48, 60 or 80 of its
    # 6*8*10 - 4*6*8 = 288 surface voxels, i.e. >= 17 % > 5 %) is exactly 2 s from the other
    # box's face, so the top 5 % of each directed set equals 2 s: HD95 = HD = 2 s.
    assert scores["hausdorff"] == 2 * s
    assert scores["hd95"] == 2 * s
    assert scores["assd"] == pytest.approx(assd(pred_array, truth_array, spacing=SPACING))


def test_float_nifti_mask_written_with_nibabel_is_a_label(tmp_path):
    data = np.zeros((14, 12, 10), np.float32)  # nibabel order (x, y, z)
    data[2:12, 2:10, 2:8] = 1.0
    affine = np.diag([0.5, 0.75, 2.0, 1.0])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "truth.nii.gz")
    nib.save(nib.Nifti1Image(np.roll(data, 2, axis=2), affine), tmp_path / "pred.nii.gz")
    scores = evaluate(tmp_path / "pred.nii.gz", tmp_path / "truth.nii.gz").cases[0].metrics
    assert list(scores) == [1]
    assert scores[1]["hd95"] == 2 * 2.0  # shifted 2 voxels along the 2.0 mm axis
    assert scores[1]["dice"] == 4 / 6


def test_non_integer_values_are_refused_by_the_reader(tmp_path):
    data = np.zeros((4, 4, 4), np.float32)
    data[1, 1, 1] = 0.5
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "soft.nii.gz")
    with pytest.raises(InvalidImageError, match="non-integer"):
        evaluate(tmp_path / "soft.nii.gz", tmp_path / "soft.nii.gz")


def test_grid_mismatch_names_both_files(tmp_path):
    truth = write_label(tmp_path / "truth.nii.gz", box_phantom())
    pred = write_label(tmp_path / "pred.nii.gz", box_phantom(), spacing=(1.0, 1.0, 1.0))
    with pytest.raises(GeometryMismatchError, match=r"pred\.nii\.gz.*truth\.nii\.gz"):
        evaluate(pred, truth)


# --------------------------------------------------------- folders, pairing
def make_folders(tmp_path):
    pred_dir, truth_dir = tmp_path / "pred", tmp_path / "truth"
    pred_dir.mkdir()
    truth_dir.mkdir()
    box = box_phantom()
    two = box.copy()
    two[2:8, 2:10, 8:12] = 2  # two labels: 1 (6x8x6) and 2 (6x8x4)
    write_label(truth_dir / "a.nii.gz", box)
    write_label(pred_dir / "a.nii.gz", np.roll(box, 1, axis=0))
    write_label(truth_dir / "b.nii.gz", two)
    write_label(pred_dir / "b.nii.gz", np.where(two == 2, 0, two).astype(np.uint8))  # 2 missed
    write_label(pred_dir / "only_pred.nii.gz", box)
    write_label(truth_dir / "only_truth.nii.gz", box)
    (truth_dir / "README.txt").write_text("not an image")
    return pred_dir, truth_dir


def test_folders_are_paired_by_name(tmp_path):
    pred_dir, truth_dir = make_folders(tmp_path)
    result = evaluate(pred_dir, truth_dir)
    assert [c.name for c in result.cases] == ["a.nii.gz", "b.nii.gz"]
    assert len(result.problems) == 2
    assert "only_pred.nii.gz" in result.problems[0] and "truth folder" in result.problems[0]
    assert "only_truth.nii.gz" in result.problems[1] and "pred folder" in result.problems[1]
    case_b = result.cases[1]
    assert case_b.metrics[2]["dice"] == 0.0
    assert case_b.metrics[2]["hd95"] == math.inf
    assert math.isnan(case_b.metrics[2]["precision"])
    assert case_b.notes[2][0] == "pred empty"
    # summary: label 1 in both cases, label 2 only in b, where hd95 is infinite
    hd95_1 = result.summary[1]["hd95"]
    assert (hd95_1.n, hd95_1.n_nan, hd95_1.n_inf) == (2, 0, 0)
    assert hd95_1.mean == pytest.approx(
        (result.cases[0].metrics[1]["hd95"] + case_b.metrics[1]["hd95"]) / 2
    )
    hd95_2, precision_2 = result.summary[2]["hd95"], result.summary[2]["precision"]
    assert (hd95_2.n, hd95_2.n_inf) == (0, 1) and math.isnan(hd95_2.mean)
    assert (precision_2.n, precision_2.n_nan) == (0, 1)
    assert result.summary[2]["dice"].mean == 0.0


def test_pairing_errors(tmp_path):
    pred_dir, truth_dir = make_folders(tmp_path)
    with pytest.raises(InvalidArgumentError, match="both be files or both be folders"):
        pair_files(pred_dir / "a.nii.gz", truth_dir)
    with pytest.raises(FileMissingError, match="missing.nii.gz"):
        pair_files(tmp_path / "missing.nii.gz", truth_dir / "a.nii.gz")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no file name is in both folders"):
        evaluate(empty, truth_dir)


def test_explicit_labels(tmp_path):
    pred_dir, truth_dir = make_folders(tmp_path)
    result = evaluate(pred_dir / "a.nii.gz", truth_dir / "a.nii.gz", labels=[2])
    # label 2 is in neither file: a perfect empty match, noted as such
    assert result.cases[0].metrics[2]["dice"] == 1.0
    assert result.cases[0].notes[2] == ["pred and truth empty"]


def test_background_only_case_is_reported(tmp_path):
    empty = write_label(tmp_path / "zeros.nii.gz", np.zeros((4, 5, 6), np.uint8))
    result = evaluate(empty, empty)
    assert result.cases == [] and "all background" in result.problems[0]


def test_lesion_counts(tmp_path):
    truth_array = np.zeros((6, 10, 10), np.uint8)
    truth_array[1:3, 1:3, 1:3] = 1
    truth_array[3:5, 6:9, 6:9] = 1
    pred_array = np.zeros_like(truth_array)
    pred_array[2:4, 2:4, 2:4] = 1  # hits the first lesion
    pred_array[0, 8, 0] = 1  # false positive
    truth = write_label(tmp_path / "t.nii.gz", truth_array)
    pred = write_label(tmp_path / "p.nii.gz", pred_array)
    result = evaluate(pred, truth, lesions=True)
    d = result.cases[0].lesions[1]
    assert (d.n_truth, d.n_pred, d.tp_truth, d.fp_pred, d.tpr, d.fdr) == (2, 2, 1, 1, 0.5, 0.5)
    assert result.lesion_summary[1] == d


# --------------------------------------------------------------------- JSON
def test_json_is_strict_and_explains_nulls(tmp_path):
    pred_dir, truth_dir = make_folders(tmp_path)
    out = tmp_path / "report.json"
    evaluate(pred_dir, truth_dir, lesions=True).write_json(out)
    report = strict_json(out)
    label2 = report["cases"][1]["labels"]["2"]
    assert label2["dice"] == 0.0
    assert label2["hd95"] is None and label2["assd"] is None and label2["precision"] is None
    assert label2["notes"][0] == "pred empty"
    assert "hd95=inf" in label2["notes"][1] and "precision=nan" in label2["notes"][1]
    assert "notes" not in report["cases"][0]["labels"]["1"]
    assert report["summary"]["2"]["hd95"] == {"mean": None, "n": 0, "n_nan": 0, "n_inf": 1}
    assert report["cases"][1]["lesions"]["2"]["fdr"] is None
    assert len(report["problems"]) == 2
    with pytest.raises(OutputExistsError):
        evaluate(pred_dir, truth_dir).write_json(out)


# ---------------------------------------------------------------------- CLI
def test_cli_prints_table_and_writes_json(tmp_path, capsys):
    pred_dir, truth_dir = make_folders(tmp_path)
    out = tmp_path / "report.json"
    argv = ["--pred", str(pred_dir), "--truth", str(truth_dir), "--json", str(out), "--lesions"]
    assert run_cli(argv) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == [
        "case",
        "label",
        "dice",
        "iou",
        "precision",
        "recall",
        "rvd",
        "hd95",
        "assd",
        "notes",
    ]
    row_b2 = next(line for line in lines if line.startswith("b.nii.gz") and line.split()[1] == "2")
    assert row_b2.split()[2:9] == ["0.0000", "0.0000", "nan", "0.0000", "-1.0000", "inf", "inf"]
    assert any(line.startswith("mean (2 cases)") for line in lines)
    assert any("label 2 hd95: mean of 0 finite values; left out 1 infinite" in x for x in lines)
    assert any(line.split()[:2] == ["total", "1"] for line in lines)  # lesion table
    assert "only_pred.nii.gz" in captured.err
    assert strict_json(out)["metrics"][0] == "dice"
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run_cli(argv)
    assert run_cli([*argv, "--overwrite", "--labels", "1", "--metrics", "dice"]) == 0
    assert list(strict_json(out)["summary"]) == ["1"]
    assert strict_json(out)["metrics"] == ["dice"]


def test_cli_rejects_unknown_metric(capsys):
    with pytest.raises(SystemExit):
        run_cli(["--pred", "p", "--truth", "t", "--metrics", "hd99"])
    assert "invalid choice" in capsys.readouterr().err


def test_cli_negative_label_is_a_one_line_error_naming_it(tmp_path, capsys):
    from segloop.cli.main import main

    truth = write_label(tmp_path / "t.nii.gz", box_phantom())
    argv = ["evaluate", "--pred", str(truth), "--truth", str(truth), "--labels", "1", "-1"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        "segloop evaluate: error: label -1 cannot be scored: labels (--labels) are "
        "positive integers\n"
    )


def test_cli_unwritable_json_is_a_one_line_error(tmp_path, capsys):
    from segloop.cli.main import main

    truth = write_label(tmp_path / "t.nii.gz", box_phantom())
    argv = ["evaluate", "--pred", str(truth), "--truth", str(truth), "--json", "/proc/nope/x.json"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("segloop evaluate: error: /proc/nope/x.json: cannot write: ")
    assert err.count("\n") == 1


# -------------------------------------------------------------- real data
def kdtree_hd95(pred, truth, spacing):
    """HD95 with nearest neighbours from a k-d tree (independent of the EDT)."""
    a = np.argwhere(surface_mask(pred)) * np.asarray(spacing)
    b = np.argwhere(surface_mask(truth)) * np.asarray(spacing)
    forward = cKDTree(b).query(a)[0]
    backward = cKDTree(a).query(b)[0]
    return max(np.percentile(forward, 95), np.percentile(backward, 95)), forward, backward


@pytest.mark.shared_data
@needs_shared(*BRATS_CASE)
def test_brats_label_against_itself_and_a_shifted_copy(tmp_path):
    truth_image = read_image(BRATS_LABEL, kind="label")
    k, axis = 3, 1
    s = truth_image.spacing[axis]
    shifted = np.roll(truth_image.array, k, axis=axis)  # the tumour is far from the border
    write_image(truth_image.with_array(shifted), tmp_path / "shifted.nii.gz")

    itself = evaluate(BRATS_LABEL, BRATS_LABEL, metrics=("dice", "hd95"))
    assert itself.cases[0].metrics == {label: {"dice": 1.0, "hd95": 0.0} for label in (1, 2, 3, 4)}

    moved = evaluate(
        tmp_path / "shifted.nii.gz", BRATS_LABEL, metrics=("dice", "hd95", "hausdorff")
    )
    assert list(moved.cases[0].metrics) == [1, 2, 3, 4]
    for label, scores in moved.cases[0].metrics.items():
        pred, truth = shifted == label, truth_image.array == label
        reference, forward, backward = kdtree_hd95(pred, truth, truth_image.spacing)
        # A translation by k voxels maps each surface onto the other: no directed distance
        # exceeds k * s.  The translate of a truth surface voxel with the largest index along
        # the axis is k voxels beyond every truth voxel along that axis, so it is exactly
        # k * s away: the Hausdorff distance is k * s.  HD95 is only bounded by it.
        assert max(forward.max(), backward.max()) <= k * s + 1e-9
        assert scores["hausdorff"] == k * s
        assert 0.0 < scores["hd95"] <= k * s
        assert scores["hd95"] == pytest.approx(reference, rel=1e-12)
        assert scores["dice"] < 1.0
        d = surface_distances(pred, truth, spacing=truth_image.spacing)
        np.testing.assert_allclose(np.sort(d.pred_to_truth), np.sort(forward), rtol=1e-12)
        assert hausdorff95(pred, truth, spacing=truth_image.spacing) == scores["hd95"]
