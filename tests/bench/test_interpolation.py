import json
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_shared, shared
from segloop.bench import interpolation, itk_mci
from segloop.bench.interpolation import (
    nearest_slices,
    run_interpolation,
    summarize,
    unseen_dice,
    write_plot,
)
from segloop.errors import InvalidArgumentError
from segloop.io import Image, write_image

SUMMARY_KEYS = {"dataset", "method", "every", "dice_unseen", "seconds", "work_saved", "n",
                "dice_unseen_min", "work_saved85", "every85", "work_saved90", "every90"}
CASE_KEYS = {"dataset", "case", "label", "plane", "method", "every", "slices", "given",
             "unseen", "dice_unseen", "seconds", "work_saved"}
TOP_KEYS = {"suite", "segloop_version", "versions", "machine", "args", "summary", "cases",
            "notes"}


def _disks(radii, shape=(16, 21, 21)) -> np.ndarray:
    """A label volume with a centred disk of ``radii[i]`` on slice ``2 + i``."""
    vol = np.zeros(shape, np.uint8)
    yy, xx = np.mgrid[:shape[1], :shape[2]] - shape[1] // 2
    for i, r in enumerate(radii):
        vol[2 + i] = (yy**2 + xx**2) <= r * r
    return vol


def _pairs(root: Path, labels: dict[str, np.ndarray]) -> Path:
    for name, lab in labels.items():
        write_image(Image(np.zeros(lab.shape, np.int16)), root / "images" / f"{name}.nii.gz")
        write_image(Image(lab, kind="label"), root / "labels" / f"{name}.nii.gz")
    return root


@pytest.fixture
def no_itk(monkeypatch):
    monkeypatch.setattr(itk_mci, "itk_runner", lambda env=None: None)


def test_identical_disks_are_interpolated_exactly_and_work_saved_is_exact(tmp_path, no_itk):
    root = _pairs(tmp_path, {"cyl": _disks([5] * 11)})  # slices 2..12 hold the object
    report = run_interpolation([root], every=(5,), methods=["segloop", "nearest"],
                               log=lambda s: None)
    # given: 2, 7, 12 -> 11 object slices / 3 given; the 8 others unseen
    for method in ("segloop", "nearest"):
        (row,) = [r for r in report["cases"] if r["method"] == method]
        assert (row["slices"], row["given"], row["unseen"]) == (11, 3, 8)
        assert row["work_saved"] == round(11 / 3, 3) and row["dice_unseen"] == 1.0
        assert row["plane"] == "axial"
    assert {r["work_saved85"] for r in report["summary"]} == {round(11 / 3, 3)}


def test_segloop_beats_the_nearest_slice_on_a_cone(tmp_path, no_itk):
    cone = _disks(range(2, 13), shape=(16, 27, 27))  # the radius grows by 1 per slice
    root = _pairs(tmp_path, {"cone": cone})
    report = run_interpolation([root], every=(5,), methods=["nearest", "segloop"],
                               log=lambda s: None)
    dice = {r["method"]: r["dice_unseen"] for r in report["summary"]}
    assert dice["segloop"] > 0.98 and dice["nearest"] < 0.85
    assert [r["method"] for r in report["summary"]] == ["segloop", "nearest"]  # report order


def test_nearest_copies_the_nearest_given_slice_earlier_on_ties():
    vol = np.zeros((7, 1, 3), np.uint8)
    vol[1, 0, 0], vol[5, 0, 2] = 1, 2
    out = nearest_slices(vol, slices=[1, 5])
    assert out[:, 0].tolist() == [[0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0],
                                  [0, 0, 2], [0, 0, 2], [0, 0, 0]]
    across = nearest_slices(np.moveaxis(vol, 0, 2), slices=[1, 5], axis=2)
    assert np.array_equal(across, np.moveaxis(out, 0, 2))


def test_unseen_dice_skips_given_slices_and_averages_labels():
    truth = np.zeros((4, 2, 2), np.uint8)
    truth[:, 0], truth[:, 1] = 1, 2
    pred = truth.copy()
    pred[0] = 0  # wrong on a given slice: not scored
    pred[2, 1] = 1  # label 2 missed on one unseen slice
    # unseen slices 1, 2: label 1 Dice 2*4/(6+4) = 0.8, label 2 Dice 2*2/(2+4) = 2/3
    assert unseen_dice(pred, truth, slices=[0, 3]) == round((0.8 + 2 / 3) / 2, 4)


def test_summary_picks_the_largest_work_saved_that_keeps_the_target():
    cases = [{"dataset": "d", "method": "segloop", "every": k, "dice_unseen": d,
              "seconds": 0.1, "work_saved": w}
             for k, d, w in [(2, 0.95, 2.0), (5, 0.91, 4.5), (10, 0.86, 8.0), (20, 0.7, 12.0)]]
    rows = summarize(cases, targets=(0.85, 0.9, 0.99))
    assert [r["every"] for r in rows] == [2, 5, 10, 20]
    assert {(r["work_saved85"], r["every85"], r["work_saved90"], r["every90"],
             r["work_saved99"]) for r in rows} == {(8.0, 10, 4.5, 5, None)}


def test_empty_labels_are_skipped_and_counted(tmp_path, no_itk):
    root = _pairs(tmp_path, {"a": _disks([4] * 6), "b": np.zeros((16, 21, 21), np.uint8)})
    report = run_interpolation([root], every=(2,), log=lambda s: None)
    assert f"{tmp_path.name}: skipped 1 (empty label)" in report["notes"]
    assert {r["case"] for r in report["cases"]} == {"a"}


def test_itk_rows_are_skipped_with_a_note_when_itk_is_missing(tmp_path, no_itk):
    root = _pairs(tmp_path, {"cyl": _disks([5] * 6)})
    report = run_interpolation([root], every=(2,), methods=["segloop", "itk-mci"],
                               log=lambda s: None)
    assert {r["method"] for r in report["cases"]} == {"segloop"}
    assert report["args"]["methods"] == ["segloop"]
    assert len(report["notes"]) == 1 and report["notes"][0].startswith("itk-mci skipped")


def test_itk_outputs_are_scored_and_a_failure_becomes_a_note(tmp_path, monkeypatch):
    root = _pairs(tmp_path, {"cyl": _disks([5] * 6)})
    monkeypatch.setattr(itk_mci, "itk_runner", lambda env=None: "fake")
    monkeypatch.setattr(itk_mci, "run_jobs", lambda given, **kw: (  # echoes its input
        [g.copy() for g in given], [[250.0] for _ in given]))
    report = run_interpolation([root], every=(2, 3), methods=["itk-mci"], log=lambda s: None)
    rows = report["cases"]
    assert [(r["every"], r["seconds"]) for r in rows] == [(2, 0.25), (3, 0.25)]
    assert all(r["dice_unseen"] == 0.0 for r in rows)  # nothing filled in

    def fail(given, **kw):
        raise RuntimeError("ITK failed 3 times: boom")

    monkeypatch.setattr(itk_mci, "run_jobs", fail)
    report = run_interpolation([root], every=(2,), methods=["itk-mci"], log=lambda s: None)
    assert report["cases"] == [] and "boom" in report["notes"][0]


@pytest.mark.parametrize("kwargs, name", [
    ({"every": (1,)}, "every"), ({"every": (2.5,)}, "every"), ({"axis": 3}, "axis"),
    ({"methods": ["segloop", "magic"]}, "magic"), ({"targets": (0.0,)}, "targets"),
    ({"limit": 0}, "limit"),
])
def test_bad_arguments_are_named(kwargs, name, tmp_path):
    with pytest.raises(InvalidArgumentError, match=name):
        run_interpolation([tmp_path], log=lambda s: None, **kwargs)


def test_data_must_be_a_list_of_folders(tmp_path):
    with pytest.raises(InvalidArgumentError, match="data"):
        run_interpolation(str(tmp_path))


@needs_shared("left_atrium_h5")
def test_suite_end_to_end_on_one_left_atrium(tmp_path, no_itk):
    lines = []
    report = run_interpolation([shared("left_atrium_h5")], every=(3, 5), limit=1,
                               log=lines.append)
    report = json.loads(json.dumps(report))  # JSON-ready
    assert set(report) == TOP_KEYS and report["suite"] == "interpolation"
    assert all(set(r) == SUMMARY_KEYS for r in report["summary"])
    assert all(set(r) == CASE_KEYS for r in report["cases"])
    assert [(r["method"], r["every"]) for r in report["summary"]] == [
        ("segloop", 3), ("segloop", 5), ("nearest", 3), ("nearest", 5)]
    by = {(r["method"], r["every"]): r for r in report["summary"]}
    assert by[("segloop", 5)]["dice_unseen"] > 0.93
    assert by[("segloop", 5)]["dice_unseen"] > by[("nearest", 5)]["dice_unseen"]
    assert 4 < by[("segloop", 5)]["work_saved"] < 5 and lines[0] == "left_atrium_h5:"
    write_plot(report, tmp_path / "interp.png")
    assert (tmp_path / "interp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_of_several_datasets_is_written(tmp_path):
    rows = [{"dataset": d, "method": m, "every": k, "dice_unseen": 0.9, "work_saved": k * 0.9}
            for d in "abcd" for m in interpolation.METHODS for k in (2, 5)]
    out = write_plot({"summary": rows, "args": {"targets": [0.85, 0.9]}}, tmp_path / "f" / "p.png")
    assert out == tmp_path / "f" / "p.png" and out.stat().st_size > 10_000
