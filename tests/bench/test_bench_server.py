"""`segloop bench server`: the server in a subprocess, concurrent clients, every save read back."""

import json

import httpx
import numpy as np
import pytest

from segloop.bench.report import SUMMARY_KEYS
from segloop.bench.server import verify_saves
from segloop.bench.server_load import ServerProcess, digest, plan_calls, signature
from segloop.cli.main import main
from segloop.data import phantom_2d, phantom_3d
from segloop.errors import InvalidArgumentError
from segloop.io import Image, write_image
from segloop.server.masks import encode_mask

TOP_KEYS = {"suite", "segloop_version", "versions", "machine", "args", "summary", "cases", "notes"}


@pytest.fixture
def pairs(tmp_path):
    """images/ + labels/: one 3D NIfTI (16 x 40 x 36) and two 2D PNG phantoms (48 x 40)."""
    root = tmp_path / "pairs"
    ph = phantom_3d((16, 40, 36), seed=1)
    write_image(Image(ph.image.astype(np.float32), spacing=(2.0, 1.0, 1.0)),
                root / "images" / "a.nii.gz")
    write_image(Image((ph.label > 0).astype(np.uint8), spacing=(2.0, 1.0, 1.0), kind="label"),
                root / "labels" / "a.nii.gz")
    for i in (2, 3):
        p2 = phantom_2d((48, 40), seed=i, thin_structures=False)
        write_image(Image(np.clip(p2.image * 255, 0, 255).astype(np.uint8)),
                    root / "images" / f"b{i}.png")
        write_image(Image((p2.label > 0).astype(np.uint8), kind="label"),
                    root / "labels" / f"b{i}.png")
    return root


def test_bench_server_cli(pairs, tmp_path, capsys):
    out = tmp_path / "server.json"
    assert main(["bench", "server", "--data", str(pairs), "--clients", "2", "--seconds", "2",
                 "--single-seconds", "1", "--think-ms", "20", "--save-every", "2",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| clients | p95_ms | single_client_p95_ms | errors_5xx | lost_updates |" in printed
    report = json.loads(out.read_text())
    assert TOP_KEYS <= set(report) and report["suite"] == "server"
    (row,) = report["summary"]
    assert set(SUMMARY_KEYS["server"]) <= set(row)
    assert row["clients"] == 2 and row["dataset"] == "pairs" and row["db"] == "sqlite"
    assert row["errors_5xx"] == 0 and row["errors_4xx"] == 0 and row["errors_other"] == 0
    assert row["lost_updates"] == 0 and row["mixed_labels"] == 0 and row["conflicts"] == 0
    assert row["unacknowledged_versions"] == 0 and row["current_file_mismatches"] == 0
    assert row["tool_calls"] >= 6 and row["saves"] >= 2
    assert row["requests"] >= row["tool_calls"] + row["saves"]
    assert row["p95_ms"] > 0 and row["single_client_p95_ms"] > 0
    assert row["ratio"] == pytest.approx(row["p95_ms"] / row["single_client_p95_ms"])
    tools = {(c["image_id"], c["tool"]) for c in report["cases"] if c["phase"] == "concurrent"}
    assert tools == {(i, t) for i in ("a", "b2", "b3")
                     for t in ("threshold", "regiongrow", "graphcut")}
    assert not (pairs.parent / "pairs.segloop").exists()  # the dataset's side is never written


def test_verification_finds_lost_and_mixed_labels(pairs):
    with ServerProcess(pairs, users=["ann", "bob"]) as server:
        plan = plan_calls(server, ("threshold",), 2)
        assert [(p["image_id"], p["slice"]) for p in plan] == [
            ("a", {"axis": 0, "index": 8}), ("b3", None)]
        acked = {}
        for rater, value in (("ann", 1), ("bob", 2)):
            label = np.full((16, 40, 36), value, np.uint8)
            label.reshape(-1)[:4] = signature(rater, 1)
            r = httpx.put(f"{server.url}/api/labels/a/{rater}", timeout=30,
                          headers={"Authorization": f"Bearer {server.tokens[rater]}"},
                          json={"base_version": 0, "mask": encode_mask(label).model_dump()})
            assert r.status_code == 201, r.text
            acked[("a", rater, 1)] = digest(label)
        assert verify_saves(server, acked) == {"lost": [], "mixed": [], "unacknowledged": [],
                                               "current_mismatch": []}
        # pretend ann's save of version 1 had been bob's content, and a version 2 acknowledged
        swapped = {("a", "ann", 1): acked[("a", "bob", 1)], ("a", "bob", 1): "0" * 64,
                   ("a", "ann", 2): acked[("a", "ann", 1)]}
        found = verify_saves(server, swapped)
    assert sorted(map(tuple, found["lost"])) == [("a", "ann", 1, "content"),
                                                 ("a", "ann", 2, 404),
                                                 ("a", "bob", 1, "content")]
    assert found["mixed"] == [("a", "bob", 1, "ann")]  # bob's label holds what "ann sent"
    assert found["current_mismatch"] == [("a", "ann", 1), ("a", "bob", 1)]
    assert not server.root.exists()  # the temporary workspace is removed


def test_bench_server_rejects_bad_arguments(pairs):
    from segloop.bench.server import run_server_bench

    with pytest.raises(InvalidArgumentError, match="clients=0"):
        run_server_bench(pairs, clients=0)
