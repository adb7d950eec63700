"""`segloop bench quantize` end to end on phantoms (the smoke path), and its refusals."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import write_phantom_pairs
from segloop.bench.quantize import write_plot
from segloop.bench.report import SUMMARY_KEYS
from segloop.cli.main import main
from segloop.errors import InvalidArgumentError


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    root = tmp_path_factory.mktemp("quantize")
    data = write_phantom_pairs(root / "data", 6, (48, 48), n_blobs=2)
    raw = {"data": {"path": str(data), "split": {"test": 2, "val": 0}},
           "model": {"channels": [8, 16], "num_res_units": 1, "dropout": 0.0},
           "augmentation": {"enabled": False}, "optim": {"lr": 0.01},
           "training": {"epochs": 3, "iterations_per_epoch": 4, "batch_size": 4, "threads": 1},
           "output": {"dir": str(root / "run"), "tensorboard": False}}
    path = root / "q.yaml"
    path.write_text(yaml.safe_dump(raw))
    return root, path


def test_bench_quantize_trains_exports_scores_and_times(config, capsys):
    root, cfg = config
    out, png = root / "q.json", root / "q.png"
    argv = ["bench", "quantize", "--config", str(cfg), "--set", "training.epochs=1",
            "--calibration", "4", "--repeats", "2", "--threads", "1", "--json", str(out)]
    assert main([*argv, "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "source: training" in text and "int8 vs float32 on the calibration inputs" in text
    assert "| dataset | dice_fp32 | dice_int8 | latency_ratio | size_ratio |" in text
    assert png.stat().st_size > 1000
    report = json.loads(out.read_text())
    assert report["suite"] == "quantize" and report["args"]["threads"] == 1
    (row,) = report["summary"]
    assert set(SUMMARY_KEYS["quantize"]) <= set(row)
    assert row["dataset"] == "data" and row["cases"] == 2 and row["trained"] is True
    for key in ("dice_fp32", "dice_onnx_fp32", "dice_int8", "agreement"):
        assert 0.0 <= row[key] <= 1.0
    assert row["dice_onnx_fp32"] == pytest.approx(row["dice_fp32"], abs=0.02)
    assert row["latency_ratio"] == pytest.approx(row["seconds_fp32"] / row["seconds_int8"])
    assert row["size_ratio"] == pytest.approx(row["bytes_fp32"] / row["bytes_int8"])
    assert row["size_ratio"] > 1.2 and row["bytes_checkpoint"] > row["bytes_weights_fp32"]
    assert row["calibration_check"]["samples"] == 4
    assert {(c["id"], c["model"]) for c in report["cases"]} == {
        (i, m) for i in {c["id"] for c in report["cases"]} for m in ("fp32", "onnx_fp32", "int8")}
    assert all(len(c["runs"]) == 2 and c["seconds"] > 0 for c in report["cases"])
    assert (root / "run" / "export" / "model_int8.onnx").is_file()
    # a second run reuses the finished training run and keeps the previous exports
    assert main(argv) == 0
    assert "source: reusing" in capsys.readouterr().out
    assert (root / "run" / "export" / "model_int8.onnx.~1~").is_file()


def test_bench_quantize_refuses_bad_numbers(config, capsys):
    _, cfg = config
    for flag in ("--repeats", "--calibration", "--threads"):
        assert main(["bench", "quantize", "--config", str(cfg), flag, "0"]) == 1
        err = capsys.readouterr().err
        assert f"{flag} must be at least 1, got 0" in err and err.count("\n") == 1
    with pytest.raises(InvalidArgumentError, match="quantize report"):
        write_plot({"suite": "film"}, "x.png")
