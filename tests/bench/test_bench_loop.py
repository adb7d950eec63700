"""``segloop bench loop``: summary rows on hand-made curves, the plot, the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import write_phantom_pairs
from segloop.bench.loop import summary_rows, write_plot
from segloop.bench.report import SUMMARY_KEYS
from segloop.cli.main import main
from segloop.errors import InvalidArgumentError

TOP_KEYS = {"suite", "segloop_version", "versions", "machine", "args", "summary", "cases",
            "notes"}


def approx(value):
    """Summary values are rounded to 6 digits."""
    return pytest.approx(value, abs=1e-6)


def _cases(dataset: str, curves: dict[str, dict[int, list[float]]], labels) -> list[dict]:
    return [{"kind": "round", "dataset": dataset, "strategy": s, "seed": seed, "round": r,
             "labels": n, "dice": d, "train_seconds": 2.0, "select_seconds": 0.5 if r else 0.0,
             "reused": r == 0 and s != "random"}
            for s, by_seed in curves.items() for seed, curve in by_seed.items()
            for r, (n, d) in enumerate(zip(labels, curve, strict=True))]


def test_summary_rows_on_hand_made_curves():
    cases = _cases("nuclei", {
        "random": {0: [0.4, 0.5, 0.6], 1: [0.2, 0.5, 0.5]},
        "entropy": {0: [0.4, 0.7, 0.8], 1: [0.2, 0.4, 0.5]},
    }, [10, 20, 40]) + [{"kind": "full", "dataset": "nuclei", "strategy": "full-data",
                         "seed": 0, "labels": 100, "dice": 0.8}]
    rows = summary_rows(cases, pools={"nuclei": 100}, full={"nuclei": [0.78, 0.82]})
    random, entropy = rows
    assert [set(SUMMARY_KEYS["loop"]) <= set(r) for r in rows] == [True, True]
    # mean random curve [0.3, 0.5, 0.55]: (0.4 * 10 + 0.525 * 20) / 30
    assert random["auc"] == approx(14.5 / 30)
    assert random["seed_aucs"] == approx([15.5 / 30, 13.5 / 30])
    assert random["auc_std"] == approx(1 / 30)
    assert random["labels"] == [10, 20, 40] and random["final_dice"] == approx(0.55)
    assert random["full_dice"] == approx(0.8) and random["target_dice"] == 0.76
    assert random["labels_to_95pct"] is None and random["fraction_to_95pct"] is None
    assert random["wins_vs_random"] is None
    # mean entropy curve [0.3, 0.55, 0.65]: never reaches 0.76
    assert entropy["labels_to_95pct"] is None
    assert entropy["auc"] == approx((0.425 * 10 + 0.6 * 20) / 30)
    assert entropy["seed_aucs"] == approx([20.5 / 30, 12 / 30])
    assert entropy["wins_vs_random"] == 1  # seed 0 better, seed 1 worse
    assert entropy["seconds"] == approx(6 * 2.0 + 4 * 0.5)  # the shared round 0 counts too
    assert entropy["select_seconds_per_round"] == approx(0.5)
    rows = summary_rows(cases, pools={"nuclei": 100}, full={"nuclei": [0.55]})
    assert [r["labels_to_95pct"] for r in rows] == [40, 20]  # target 0.5225
    assert [r["fraction_to_95pct"] for r in rows] == [0.4, 0.2]
    assert summary_rows(cases)[0]["labels_to_95pct"] is None  # no full-data reference


def test_summary_refuses_seeds_with_different_schedules():
    cases = _cases("d", {"random": {0: [0.1, 0.2]}}, [1, 2]) + _cases(
        "d", {"random": {1: [0.1, 0.2]}}, [1, 3])
    with pytest.raises(InvalidArgumentError, match="different label schedules"):
        summary_rows(cases)


def test_plot_has_a_panel_per_dataset(tmp_path):
    cases = _cases("a", {"random": {0: [0.3, 0.6]}, "tta": {0: [0.3, 0.7]}}, [5, 10]) + _cases(
        "b", {"random": {0: [0.5, 0.6]}}, [2, 4])
    report = {"suite": "loop", "summary": summary_rows(cases, full={"a": [0.8]})}
    out = write_plot(report, tmp_path / "sub" / "loop.png")
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 5000
    with pytest.raises(InvalidArgumentError, match="loop report"):
        write_plot({"suite": "clicks"}, tmp_path / "x.png")


# ----------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("loopdata")
    write_phantom_pairs(root / "data", 10, (32, 32), prefix="p", n_blobs=1)
    cfg = {"data": {"path": str(root / "data"), "split": {"test": 3, "val": 0}},
           "model": {"channels": [4, 8], "num_res_units": 0, "dropout": 0.2},
           "augmentation": {"enabled": False},
           "training": {"epochs": 1, "iterations_per_epoch": 2, "batch_size": 2, "threads": 1},
           "output": {"dir": str(root / "unused"), "tensorboard": False}}
    path = root / "tiny_al.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_cli_writes_the_report_and_the_plot(tiny_config, tmp_path, capsys):
    out, png = tmp_path / "loop.json", tmp_path / "loop.png"
    assert main(["bench", "loop", "--config", str(tiny_config), "--strategy", "random",
                 "entropy", "--initial", "2", "--step", "3", "--budget", "5", "--seed", "0",
                 "--candidates", "4", "--out", str(tmp_path / "runs"), "--json", str(out),
                 "--plot", str(png)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == TOP_KEYS and report["suite"] == "loop"
    assert [(r["dataset"], r["strategy"]) for r in report["summary"]] == [
        ("data", "random"), ("data", "entropy")]
    for row in report["summary"]:
        assert set(SUMMARY_KEYS["loop"]) <= set(row)
        assert row["labels"] == [2, 5] and row["pool"] == 7 and row["seeds"] == [0]
        assert 0.0 <= row["auc"] <= 1.0 and row["full_dice"] is not None
    rounds = [c for c in report["cases"] if c["kind"] == "round"]
    assert [(c["strategy"], c["round"], c["labels"]) for c in rounds] == [
        ("random", 0, 2), ("random", 1, 5), ("entropy", 0, 2), ("entropy", 1, 5)]
    assert rounds[0]["selected"] == rounds[2]["selected"] and rounds[2]["reused"] is True
    assert [c["candidates"] for c in rounds] == [None, 4, None, 4]  # 5 unlabelled, 4 ranked
    (full,) = [c for c in report["cases"] if c["kind"] == "full"]
    assert full["labels"] == 7 and full["epochs"] == 2  # 1 epoch x 2 rounds
    assert report["args"]["budget"] == 5 and report["args"]["strategies"] == ["random", "entropy"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "runs" / "seed0" / "entropy" / "round01" / "best.pt").exists()
    assert "| dataset | strategy | auc | labels_to_95pct | final_dice |" in capsys.readouterr().out


@pytest.mark.parametrize("changes, message", [
    ({"--strategy": "uncertain"}, "--strategy: unknown strategy 'uncertain'"),
    ({"--budget": "8"}, "--budget 8 is larger than the pool (7 unlabelled"),
    ({"--initial": "0"}, "--initial must be at least 1, got 0"),
    ({"--step": "0"}, "--step must be at least 1, got 0"),
    ({"--seeds": "0"}, "--seeds must be at least 1, got 0"),
    ({"--set": "training.epoch=2"}, "training.epoch: unknown key"),
    ({"--full-epochs": "0"}, "--full-epochs must be at least 1, got 0"),
    ({"--candidates": "1"}, "--candidates 1 is smaller than --step 2"),
    ({"--strategy": "mc_dropout", "--set": "model.dropout=0"}, "mc_dropout needs a network"),
])
def test_cli_bad_input_is_one_line_before_any_training(tiny_config, tmp_path, changes,
                                                       message, capsys):
    args = {"--initial": "2", "--step": "2", "--budget": "4"} | changes
    runs = tmp_path / "runs"
    assert main(["bench", "loop", "--config", str(tiny_config), "--out", str(runs),
                 *[x for kv in args.items() for x in kv]]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not list(runs.glob("seed*"))  # nothing trained


@pytest.mark.parametrize("extra, message", [
    (["--seed", "1", "1"], "--seed: distinct seeds needed, got [1, 1]"),
    (["--config", "SAME"], "--config: several configs read the dataset folder 'data'"),
])
def test_cli_refuses_repeated_seeds_and_datasets(tiny_config, tmp_path, extra, message,
                                                 capsys):
    extra = [str(tiny_config) if a == "SAME" else a for a in extra]
    assert main(["bench", "loop", "--config", str(tiny_config), "--initial", "2", "--step",
                 "2", "--budget", "4", "--out", str(tmp_path), *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
