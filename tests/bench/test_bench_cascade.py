"""`segloop bench cascade` end to end on phantoms (smoke budget), and its refusals."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import write_phantom_pairs
from segloop.bench.report import SUMMARY_KEYS
from segloop.cli.main import main


def _config(path, data, out, **cascade):
    raw = {"data": {"path": str(data), "split": {"test": 2, "val": 0}},
           "model": {"channels": [4, 8], "num_res_units": 0, "dropout": 0.0},
           "augmentation": {"enabled": False},
           "training": {"epochs": 3, "iterations_per_epoch": 2, "batch_size": 2, "threads": 1},
           "output": {"dir": str(out), "tensorboard": False}}
    if cascade:
        raw["cascade"] = cascade
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_cascade")
    return root, write_phantom_pairs(root / "data", 6, (48, 48), n_blobs=1)


def test_bench_cascade_compares_single_and_cascade_on_the_same_cases(data, capsys):
    root, folder = data
    cfg = _config(root / "c.yaml", folder, root / "runs",
                  locate={"data": {"spacing": [2.0, 2.0]}}, margin_mm=4.0)
    out, png = root / "c.json", root / "c.png"
    assert main(["bench", "cascade", "--config", str(cfg), "--set", "training.epochs=1",
                 "--json", str(out), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "| dataset | dice_single | dice_cascade | seconds_single | seconds_cascade |" in text
    assert "locate: training stage 1" in text and png.stat().st_size > 1000
    report = json.loads(out.read_text())
    assert report["suite"] == "cascade" and report["args"]["set"] == ["training.epochs=1"]
    [row] = report["summary"]
    assert set(SUMMARY_KEYS["cascade"]) <= set(row)
    assert row["dataset"] == "data" and row["test_cases"] == 2 and row["classes"] == ["foreground"]
    for name in ("single", "cascade"):
        assert 0.0 <= row[f"dice_{name}"] <= 1.0 and row[f"seconds_{name}"] > 0
        assert set(row[f"per_class_{name}"]) == {"foreground"}
        assert row[f"train_seconds_{name}"] > 0
    assert row["train_seconds_cascade"] > row["train_seconds_locate"] > 0
    assert row["speedup"] == pytest.approx(row["seconds_single"] / row["seconds_cascade"])
    assert 0.0 < row["crop_fraction"] <= 1.0
    cases = report["cases"]
    single_metrics = json.loads((root / "runs" / "single" / "metrics.json").read_text())
    cascade_metrics = json.loads((root / "runs" / "metrics.json").read_text())
    tested = sorted(c["id"] for c in single_metrics["per_case"])
    assert sorted(c["id"] for c in cases) == tested == sorted(
        c["id"] for c in cascade_metrics["per_case"])  # the same test cases for both
    for case in cases:  # the bench's scores are the runs' own test scores
        own = next(c for c in cascade_metrics["per_case"] if c["id"] == case["id"])
        assert case["dice_cascade"] == pytest.approx(own["dice"])
        assert case["box"] == own["box"]
    assert single_metrics["epochs"] == cascade_metrics["epochs"] == 1  # --set reached all three
    assert json.loads((root / "runs" / "locate" / "metrics.json").read_text())["epochs"] == 1
    single_cfg = yaml.safe_load((root / "runs" / "single" / "config.yaml").read_text())
    assert single_cfg["cascade"] is None and single_cfg["training"]["resume"] is False


def test_bench_cascade_refuses_bad_configs_before_training(data, capsys):
    root, folder = data
    plain = _config(root / "plain.yaml", folder, root / "plain")
    assert main(["bench", "cascade", "--config", str(plain), "--json",
                 str(root / "x.json")]) == 1
    assert "not a cascade config" in capsys.readouterr().err
    bad = _config(root / "bad.yaml", folder, root / "bad", locate={"model": {"chanels": [4]}})
    assert main(["bench", "cascade", "--config", str(bad)]) == 1
    assert "cascade.locate: model.chanels: unknown key" in capsys.readouterr().err
    assert not (root / "plain").exists() and not (root / "bad").exists()
