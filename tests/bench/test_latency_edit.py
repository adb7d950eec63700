import os
from pathlib import Path

import numpy as np
import pytest

from segloop.bench import itk_mci
from segloop.bench.latency_edit import measure
from segloop.tools import TOOL_NAMES

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
        if r["reference"] is not None and r["reference_median_ms"] >= 0.05:  # rounding aside
            assert r["ratio"] == pytest.approx(r["median_ms"] / r["reference_median_ms"], rel=0.01)
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
