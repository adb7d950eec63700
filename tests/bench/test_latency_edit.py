import os
from pathlib import Path

import numpy as np
import pytest

from segloop.bench import itk_mci, latency_edit
from segloop.bench.latency_data import latency_input
from segloop.bench.latency_edit import measure
from segloop.tools import TOOL_NAMES

ROOT = Path(__file__).resolve().parents[2]

ROW_KEYS = {"tool", "size", "what", "median_ms", "p95_ms", "reference", "reference_median_ms",
            "ratio", "target_ms", "target_met"}


def test_quick_measure_gives_a_row_per_tool_and_size():
    rows = measure(repeats=1, quick=True)
    assert all(ROW_KEYS <= set(r) for r in rows)
    tools = {r["tool"] for r in rows}
    assert {"threshold", "regiongrow", "brush", "polygon", "islands", "smooth",
            "interpolate"} <= tools <= set(TOOL_NAMES) | {"itk-mci"}
    assert {r["size"] for r in rows if r["tool"] == "islands"} == {"64x64", "40x40x32"}
    for r in rows:
        assert r["median_ms"] >= 0 and r["p95_ms"] >= r["median_ms"]
        if r["reference"] is not None and r["reference_median_ms"] >= 0.05:
            # both medians are rounded to 0.001 ms: the ratio of the rounded values is off by
            # at most 0.0005 / median + 0.0005 / reference (relative), the ratio by 0.0005
            rounding = 0.0005 / max(r["median_ms"], 1e-3) + 0.0005 / r["reference_median_ms"]
            assert r["ratio"] == pytest.approx(r["median_ms"] / r["reference_median_ms"],
                                               rel=rounding + 0.002)
    interp = next(r for r in rows if r["tool"] == "interpolate")
    assert 0.8 < interp["dice"] <= 1.0 and interp["n_cases"] == 1


def test_itk_runner_is_none_without_itk():
    assert itk_mci.itk_runner(env={itk_mci.ITK_ENV: "/no/such/python"}) is None
    with pytest.raises(RuntimeError, match="ITK is not importable"):
        itk_mci.run_jobs([np.zeros((3, 3, 3), np.uint8)], runner=None)


@pytest.mark.skipif(not Path(os.environ.get(itk_mci.ITK_ENV, "/nonexistent")).exists(),
                    reason=f"{itk_mci.ITK_ENV} does not name an interpreter with ITK")
def test_itk_interpolates_between_two_squares():
    vol = np.zeros((5, 8, 8), np.uint8)
    vol[0, 2:6, 2:6] = vol[4, 2:6, 2:6] = 1
    (out,), (times,) = itk_mci.run_jobs([vol], repeats=1, runner=itk_mci.itk_runner())
    assert out[2, 2:6, 2:6].all() and len(times) == 1


@pytest.mark.parametrize("shape", [(64, 64), (32, 40, 40)])
def test_smooth_references_run_on_the_tools_box_with_its_settings(shape):
    inp = latency_input(shape)
    lab = (inp.truth > 0).astype(np.uint8)
    pairs = {p["what"].split()[0]: p for p in latency_edit._smooth_pairs(lab, inp.spacing)}
    assert set(pairs) == {"grow", "shrink", "open", "close", "median", "gaussian"}
    # the reference's own output, read as the tool reads it, is the tool's answer in its box
    expect = {"grow": lambda raw: raw <= 2.0, "shrink": lambda raw: raw > 2.0,
              "gaussian": lambda raw: raw > 0.5}
    for op, p in pairs.items():
        box = p["box"]
        assert all(b.stop - b.start < n for b, n in zip(box, shape, strict=True)), op
        assert p["reference"].endswith("same box")
        out = p["tool"]()
        outside = np.ones(shape, bool)
        outside[box] = False
        assert np.array_equal(out[outside], lab[outside]), op  # the tool edits only its box
        if op in expect:
            assert np.array_equal(out[box] > 0, expect[op](p["raw"]())), op


def test_region_growing_with_a_radius_is_timed_beside_the_same_box():
    rows = [r for r in measure(repeats=1, quick=True) if r["tool"] in ("regiongrow", "smooth")]
    radius = [r for r in rows if "radius" in r["what"]]
    assert len(radius) == 2 and all(r["reference"].endswith("same box") for r in radius)
    assert all(r["reference"].endswith("same box") for r in rows if r["tool"] == "smooth")


def test_shared_data_follows_the_tests_rule(monkeypatch, tmp_path):
    monkeypatch.delenv("SEGLOOP_SHARED_DATA", raising=False)
    assert latency_edit._shared_data() == ROOT.parent / "shared" / "data"
    monkeypatch.setenv("SEGLOOP_SHARED_DATA", str(tmp_path / "elsewhere"))
    assert latency_edit._shared_data() == tmp_path / "elsewhere"


def test_absent_real_labels_are_skipped_with_a_note(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGLOOP_SHARED_DATA", str(tmp_path))
    found, skipped = latency_edit._real_labels()
    assert found == []
    assert [what for what, _ in skipped] == ["brats2013 whole tumour", "left atrium"]
    assert str(tmp_path / "brats2013") in skipped[0][1] and "SEGLOOP_SHARED_DATA" in skipped[0][1]
    monkeypatch.setattr(latency_edit, "_interpolation_inputs",
                        lambda quick: ([("ellipsoid", [latency_edit._ellipsoid(16)])], skipped))
    rows = latency_edit._interpolation_rows(1, quick=True)
    assert [r["what"] for r in rows if r["median_ms"] is None] == [
        "every 5th slice: brats2013 whole tumour", "every 5th slice: left atrium"]
    assert all("not found" in r["note"] for r in rows[-2:])
