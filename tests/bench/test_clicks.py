import json

import numpy as np
import pytest

from conftest import needs_shared, shared
from segloop.bench.clicks import TOOLS, check_tools, run_clicks, summarise, write_plot
from segloop.errors import InvalidArgumentError
from segloop.io import Image, write_image

DESIGN_KEYS = {"dataset", "tool", "n", "noc85", "noc90", "dice_at_1", "dice_at_3", "dice_at_5",
               "failures90", "polygon_vertices90", "ratio_vs_polygon90"}
EXTRA_KEYS = {"failures85", "failure_rate85", "failure_rate90", "dice_at_10",
              "polygon_vertices85", "polygon_unreached85", "polygon_unreached90",
              "ratio_vs_polygon85", "dims", "seconds", "seconds_per_interaction", "errors",
              "skipped", "dataset_seconds"}


@pytest.fixture(scope="module")
def cord_report():
    if not shared("spinalcord_sct").exists():
        pytest.skip("shared data not found: spinalcord_sct")
    return run_clicks([shared("spinalcord_sct")], limit=2, max_interactions=12, log=None)


def test_the_suite_end_to_end(cord_report):
    rep = cord_report
    assert set(rep) == {"suite", "segloop_version", "versions", "machine", "args", "summary",
                        "cases", "notes"}
    assert rep["notes"][0].startswith("spinalcord_sct (spinalcord_sct): 2 objects played of "
                                      "55 2D found")
    assert "spinalcord_sct: skipped 2 (no mask)" in rep["notes"]
    assert rep["suite"] == "clicks" and rep["args"]["limit"] == 2
    assert [r["tool"] for r in rep["summary"]] == list(TOOLS)
    for row in rep["summary"]:
        assert set(row) == DESIGN_KEYS | EXTRA_KEYS
        assert row["dataset"] == "spinalcord_sct" and row["n"] == 2 and row["dims"] == 2
        assert row["errors"] == 0 or row["tool"] != "polygon"
        for t in ("85", "90"):
            assert 1 <= row[f"noc{t}"] <= 12
            assert row[f"ratio_vs_polygon{t}"] == pytest.approx(
                row[f"polygon_vertices{t}"] / row[f"noc{t}"], abs=2e-3)
        dice = [row[f"dice_at_{k}"] for k in (1, 3, 5, 10)]
        assert all(0.0 <= d <= 1.0 for d in dice)
        assert row["skipped"]["no mask"] == 2
    by_tool = {r["tool"]: r for r in rep["summary"]}
    # the cord is a small bright disc: the box alone gets it
    assert by_tool["boxclicks"]["noc90"] == 1.0 and by_tool["boxclicks"]["failures90"] == 0
    # the polygon baseline's own row counts its vertices
    assert by_tool["polygon"]["noc90"] == by_tool["polygon"]["polygon_vertices90"]
    assert len(rep["cases"]) == 2 * len(TOOLS)
    case = rep["cases"][0]
    assert {"dataset", "case", "object", "dims", "size", "tool", "dice", "interactions",
            "seconds", "note", "polygon_vertices", "noc85", "noc90"} == set(case)
    json.dumps(rep)  # JSON-ready


def test_same_seed_same_traces(cord_report):
    again = run_clicks([shared("spinalcord_sct")], tools=["boxclicks", "livewire"], limit=2,
                       max_interactions=12, log=None)
    first = {(c["case"], c["object"], c["tool"]): c["dice"] for c in cord_report["cases"]}
    for c in again["cases"]:
        assert c["dice"] == first[c["case"], c["object"], c["tool"]]


def test_workers_do_not_change_the_report(cord_report):
    both = run_clicks([shared("spinalcord_sct")], tools=["graphcut", "opencv-scissors"],
                      limit=2, max_interactions=12, log=None, workers=2)
    first = {(c["case"], c["object"], c["tool"]): c for c in cord_report["cases"]}
    assert len(both["cases"]) == 4 and both["args"]["workers"] == 2
    for c in both["cases"]:
        ref = first[c["case"], c["object"], c["tool"]]
        assert (c["dice"], c["interactions"]) == (ref["dice"], ref["interactions"])
    with pytest.raises(InvalidArgumentError, match="workers"):
        run_clicks(["."], workers=0)


def test_volumes_run_the_3d_tools(tmp_path):
    z, y, x = np.mgrid[:24, :32, :32]
    ball = ((z - 12) ** 2 + (y - 16) ** 2 + (x - 16) ** 2) <= 49
    image = np.where(ball, 200, 50).astype(np.uint8)
    write_image(Image(image), tmp_path / "images" / "a.nii.gz")
    write_image(Image(ball.astype(np.uint8), kind="label"), tmp_path / "labels" / "a.nii.gz")
    lines = []
    rep = run_clicks([tmp_path], dims=(2, 3), max_interactions=5, log=lines.append,
                     tools=["boxclicks", "livewire", "opencv-grabcut"])
    rows = {(r["dataset"], r["tool"]): r for r in rep["summary"]}
    name = tmp_path.name
    assert set(rows) == {(name, "boxclicks"), (name, "livewire"), (name, "opencv-grabcut"),
                         (name + "-3d", "boxclicks")}
    vol = rows[name + "-3d", "boxclicks"]
    assert vol["n"] == 1 and vol["dims"] == 3 and vol["noc90"] == 1.0
    assert vol["polygon_vertices90"] is None and vol["ratio_vs_polygon90"] is None
    assert any(line.startswith(f"{name}: 2 objects") for line in lines)


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="unknown tool 'scissors'"):
        run_clicks(["."], tools=["scissors"])
    for targets in ((0.0, 0.9), (1.5,), ()):
        with pytest.raises(InvalidArgumentError, match="targets"):
            run_clicks(["."], targets=targets)
    for cap in (0, 2.5, True):
        with pytest.raises(InvalidArgumentError, match="max_interactions"):
            run_clicks(["."], max_interactions=cap)
    with pytest.raises(InvalidArgumentError, match="dims"):
        run_clicks(["."], dims=(4,))
    assert check_tools(["opencv-grabcut", "boxclicks"]) == ("boxclicks", "opencv-grabcut")


def test_summary_of_a_failure_counts_the_cap():
    rows = [{"dice": [0.5, 0.7], "seconds": 1.0, "note": None, "polygon_vertices": {"90": 10}},
            {"dice": [0.95], "seconds": 0.5, "note": "interaction 1: ValueError: x",
             "polygon_vertices": {"90": None}}]
    r = summarise("d", "t", rows, targets=(0.9,), max_interactions=20, dims=2)
    assert (r["noc90"], r["failures90"], r["failure_rate90"]) == (10.5, 1, 0.5)
    assert r["dice_at_1"] == pytest.approx(0.725) and r["dice_at_10"] == pytest.approx(0.825)
    assert (r["polygon_vertices90"], r["polygon_unreached90"]) == (10.0, 1)
    assert r["ratio_vs_polygon90"] == pytest.approx(10 / 10.5, abs=1e-3)
    assert r["errors"] == 1 and r["seconds_per_interaction"] == 0.5


@needs_shared("spinalcord_sct")
def test_the_plot_is_written(cord_report, tmp_path):
    out = write_plot(cord_report, tmp_path / "plots" / "clicks.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    with pytest.raises(InvalidArgumentError, match="clicks"):
        write_plot({"suite": "latency"}, tmp_path / "x.png")
