import numpy as np
import pytest

from segloop.bench.latency_cuts import measure, next_click, scribbles
from segloop.tools.spec import TOOL_NAMES

KEYS = {"tool", "size", "what", "median_ms", "p95_ms", "reference", "reference_median_ms",
        "ratio", "target_ms", "target_met"}


def test_quick_measure_rows_have_the_common_keys():
    rows = measure(repeats=1, quick=True)
    assert rows and all(KEYS <= set(r) for r in rows)
    tools = {r["tool"] for r in rows}
    assert {"graphcut", "boxclicks", "skimage-randomwalker", "opencv-grabcut"} <= tools
    assert tools - {"skimage-randomwalker", "opencv-grabcut"} <= set(TOOL_NAMES)
    whats = {(r["tool"], r["what"]) for r in rows}
    assert {("graphcut", "first cut"), ("graphcut", "correction"), ("boxclicks", "box"),
            ("boxclicks", "per click")} <= whats
    for r in rows:
        if r["reference"] is not None:
            assert r["ratio"] == pytest.approx(r["median_ms"] / r["reference_median_ms"], rel=0.01)
        if r["target_ms"] is not None:
            assert r["target_met"] == (r["median_ms"] <= r["target_ms"])


def test_scribbles_and_simulated_clicks():
    truth = np.zeros((8, 30, 30), bool)
    truth[2:6, 10:20, 12:18] = True
    fg, bg = scribbles(truth, margin=1)
    assert all(truth[tuple(p)] for p in fg[0])
    assert len(bg) == 12  # the edges of a box
    mask = truth.copy()
    mask[3:5, 12:18, 13:17] = False
    point, positive = next_click(mask, truth)
    assert positive and truth[point] and not mask[point]
    assert next_click(truth, truth) is None
