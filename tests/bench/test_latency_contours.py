import pytest

from segloop.bench.latency_contours import PER_MOVE_TARGET_MS, measure
from segloop.tools import TOOL_NAMES

ROW_KEYS = {"tool", "size", "what", "median_ms", "p95_ms", "reference", "reference_median_ms",
            "ratio", "target_ms", "target_met"}
PEERS = {"opencv-scissors", "skimage-mcp", "skimage-route"}


def test_quick_measure_gives_livewire_and_geodesic_rows():
    rows = measure(repeats=1, quick=True)
    assert all(ROW_KEYS <= set(r) for r in rows)
    assert {r["tool"] for r in rows} <= set(TOOL_NAMES) | PEERS
    assert {"livewire", "geodesic", "skimage-mcp", "skimage-route"} <= {r["tool"] for r in rows}
    assert {r["size"] for r in rows if r["tool"] == "geodesic"} == {"96x96", "32x32x32"}
    for r in rows:
        assert r["median_ms"] >= 0 and r["p95_ms"] >= r["median_ms"]
        if r["reference"] is not None and r["reference_median_ms"] >= 0.05:
            assert r["ratio"] == pytest.approx(r["median_ms"] / r["reference_median_ms"],
                                               rel=0.01)
    move = next(r for r in rows if r["tool"] == "livewire" and r["what"] == "per mouse move")
    assert move["target_ms"] == PER_MOVE_TARGET_MS and move["n"] >= 20
    assert move["target_met"] == (move["p95_ms"] <= PER_MOVE_TARGET_MS)
    anchor = next(r for r in rows if r["tool"] == "livewire" and r["what"] == "anchor precompute")
    peer = [r for r in rows if r["tool"] == "opencv-scissors" and "buildMap" in r["what"]]
    if peer:  # the target is OpenCV's buildMap time in the same run
        assert anchor["target_ms"] == pytest.approx(peer[0]["median_ms"], rel=1e-3)
    else:
        assert anchor["target_ms"] is None
