"""The demo runs end to end on the built-in MNI152 data and reports real numbers."""

import json
from pathlib import Path

import pytest

from segloop.cli.main import main
from segloop.demo.runner import MARKER, _prepare
from segloop.errors import OutputExistsError
from segloop.io import read_image


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "report"
    assert main(["demo", "--out", str(out)]) == 0
    return out


def test_demo_writes_report_results_and_figures(demo_run):
    results = json.loads((demo_run / "results.json").read_text())
    assert set(results["steps"]) >= {"data", "dicom", "baseline", "phantom", "tools", "clicks",
                                     "learn"}
    assert results["steps"]["dicom"]["seg_identical"] is True
    assert results["steps"]["dicom"]["series_files"] == 189
    assert results["steps"]["dicom"]["max_intensity_error"] < 1e-3
    assert all(results["steps"]["data"]["round_trip_ok"].values())
    assert results["steps"]["data"]["t1"]["shape"] == [189, 233, 197]
    for rel in ("figures/tissue.png", "figures/baseline_otsu.png", "data/mni152_t1.nii.gz",
                "data/mni152_tissue.nrrd", "data/mni152_t1_axial.png",
                "phantom/phantom3d_label.nii.gz"):
        assert (demo_run / rel).stat().st_size > 1000, rel
    report = (demo_run / "report.md").read_text()
    assert "| grey matter | 0.89" in report


def test_demo_baseline_numbers_are_the_real_ones(demo_run):
    scores = json.loads((demo_run / "results.json").read_text())["steps"]["baseline"]["scores"]
    # deterministic: the template, the thresholds and the metrics have no randomness
    assert scores["grey matter"]["dice"] == pytest.approx(0.891, abs=0.002)
    assert scores["white matter"]["dice"] == pytest.approx(0.920, abs=0.002)
    assert scores["CSF"]["dice"] == pytest.approx(0.750, abs=0.002)
    assert 0 < scores["white matter"]["hd95"] < scores["CSF"]["hd95"]
    tissue = read_image(demo_run / "data" / "mni152_tissue.nii.gz", kind="label")
    assert tissue.label_values() == [0, 1, 2, 3]


def test_output_folder_rules(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    with pytest.raises(OutputExistsError, match="not made by segloop demo"):
        _prepare(out, overwrite=False)
    _prepare(out, overwrite=True)  # the user's folder is kept as a version
    assert (tmp_path / "mine.~1~" / "notes.txt").read_text() == "precious"
    assert (out / MARKER).exists()
    (out / "result.txt").write_text("run 1")
    _prepare(out, overwrite=False)  # a previous demo run is moved aside
    assert (tmp_path / "mine.previous" / "result.txt").read_text() == "run 1"
    assert not (out / "result.txt").exists()


def test_demo_smart_tools_reach_their_numbers(demo_run):
    tools = json.loads((demo_run / "results.json").read_text())["steps"]["tools"]
    assert tools["boxclicks_dice"][-1] >= 0.9
    assert tools["livewire_dice"] >= 0.95 > tools["polygon_dice"]
    assert tools["interpolation"]["every_3"]["dice_unseen"] > 0.8
    assert (demo_run / tools["files"]["figure"]).stat().st_size > 1000


def test_demo_counts_the_clicks_of_every_tool(demo_run):
    clicks = json.loads((demo_run / "results.json").read_text())["steps"]["clicks"]
    summary = clicks["summary"]
    assert set(summary) == {"boxclicks", "graphcut", "livewire", "geodesic", "polygon"}
    assert len(clicks["objects"]) == 3
    # the region tools beat drawing a polygon vertex by vertex on the same objects
    for tool in ("boxclicks", "graphcut"):
        assert summary[tool]["noc90"] < summary["polygon"]["noc90"]
    # white matter's folded outline needs far more polygon vertices than the cap
    assert summary["polygon"]["polygon_vertices90"] > 3 * clicks["max_interactions"]
    assert summary["graphcut"]["dice_at_3"] >= 0.9
    assert (demo_run / clicks["files"]["figure"]).stat().st_size > 1000
    assert "Every click counted" in (demo_run / "report.md").read_text()


def test_demo_trains_a_unet_that_beats_the_threshold_baseline(demo_run):
    learn = json.loads((demo_run / "results.json").read_text())["steps"]["learn"]
    assert len(learn["test_cases"]) == 3 and len(learn["train_cases"]) == 10
    # a minute of CPU training beats the global thresholds on the held-out slabs
    for tissue in ("grey matter", "white matter"):
        assert learn["unet_dice"][tissue] > learn["otsu_dice"][tissue] + 0.005, tissue
    assert learn["unet_dice"]["grey matter"] > 0.9
    assert 0.75 < learn["test_dice"] < 1.0
    for scores in learn["uncertainty"].values():
        assert 0 < scores["mean_entropy"] < 0.5 and scores["inter_sample_dice"] > 0.9
    for rel in learn["files"]["predictions"] + [learn["files"]["checkpoint"]]:
        assert (demo_run / rel).stat().st_size > 100, rel
    seg = read_image(demo_run / "learn" / "predictions" / "slab06_seg.nii.gz", kind="label")
    image = read_image(demo_run / "learn" / "heldout" / "slab06.nii.gz")
    assert seg.shape == image.shape and seg.spacing == image.spacing
    assert seg.label_values() == [0, 1, 2, 3]


def test_demo_exports_the_unet_and_int8_keeps_its_dice(demo_run):
    deploy = json.loads((demo_run / "results.json").read_text())["steps"]["deploy"]
    rows = deploy["models"]
    assert set(rows) == {"torch float32", "onnx float32", "onnx int8"}
    fp32, onnx, int8 = rows["torch float32"], rows["onnx float32"], rows["onnx int8"]
    # the float32 ONNX file gives the checkpoint's labels; int8 loses little
    assert onnx["agreement"] > 0.999 and int8["agreement"] > 0.95
    for tissue, dice in fp32["dice"].items():
        assert abs(onnx["dice"][tissue] - dice) < 0.002, tissue
        assert int8["dice"][tissue] > dice - 0.03, tissue
    assert int8["bytes"] < onnx["bytes"] / 2
    for rel in deploy["files"].values():
        assert (demo_run / rel).stat().st_size == rows[
            "onnx int8" if "int8" in rel else "onnx float32"]["bytes"]


def test_demo_ranks_the_heldout_slabs_and_corrects_one_with_scribbles(demo_run):
    loop = json.loads((demo_run / "results.json").read_text())["steps"]["loop"]
    queue = json.loads((demo_run / loop["files"]["queue"]).read_text())
    ids = [item["id"] for item in queue["items"]]
    assert sorted(ids) == ["slab02.nii.gz", "slab06.nii.gz", "slab10.nii.gz"]
    assert [item["id"] for item in loop["queue"]] == ids  # most uncertain first
    scores = [item["score"] for item in loop["queue"]]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert all(Path(item["prediction"]).exists() for item in queue["items"])
    corrected = loop["corrected"]
    assert corrected["slab"] == ids[0].split(".")[0]
    assert corrected["tissue"] in ("grey matter", "white matter")
    assert len(corrected["slices"]) == 3
    for row in corrected["slices"]:
        assert 0.3 < row["model"] <= 1 and 0.3 < row["bifseg"] <= 1 and 0.3 < row["graphcut"] <= 1
        assert row["bifseg_seconds"] < 10
    # the shared model is untouched by the fine-tuning session
    assert not list((demo_run / "learn" / "run").glob("*.~*~"))


def test_demo_recovers_the_simulated_raters_and_fusion_beats_them(demo_run):
    step = json.loads((demo_run / "results.json").read_text())["steps"]["raters"]
    for rater in ("ana", "ben", "chloe", "eli"):
        found, given = step["raters"][rater]["boundary_bias_mm"], step["raters"][rater][
            "given_grow_mm"]
        assert abs(found - given) < 0.4, (rater, found, given)
    assert step["raters"]["dev"]["volume_bias"] < -0.05  # the rater who misses parts
    assert step["staple_rank"][-2:] == ["chloe", "dev"]  # least sensitive: drawn inside, misses
    single = max(step["fusion_dice"][r] for r in step["raters"])
    assert step["fusion_dice"]["majority"] > single
    assert step["fusion_dice"]["staple"] > single
    report = json.loads((demo_run / step["files"]["report.json"]).read_text())
    assert set(report["raters"]) == set(step["raters"])
    assert report["groups"]["attribute"] == "centre"
