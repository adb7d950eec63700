"""`segloop bench transfer` end to end on phantoms, and its refusals of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import write_phantom_pairs
from segloop.bench.report import SUMMARY_KEYS
from segloop.bench.transfer import subsets
from segloop.cli.main import main
from segloop.learn.checkpoint import save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.networks import build_network

TINY = {"model": {"channels": [4, 8], "num_res_units": 0, "dropout": 0.0},
        "augmentation": {"enabled": False}, "optim": {"lr": 0.01}}


def _write_config(path: Path, folder: Path, out: Path, **sections) -> Path:
    raw = {"data": {"path": str(folder), "split": {"test": 2, "val": 0}},
           "training": {"epochs": 1, "iterations_per_epoch": 2, "batch_size": 2, "threads": 1},
           "output": {"dir": str(out), "tensorboard": False}, **TINY}
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A source dataset (8 phantoms, 2 blobs) and a target one (7 phantoms, 1 blob) + configs."""
    root = tmp_path_factory.mktemp("transfer")
    source = write_phantom_pairs(root / "source", 8, (48, 48), prefix="s", n_blobs=2)
    target = write_phantom_pairs(root / "target", 7, (48, 48), prefix="t", n_blobs=1)
    src_cfg = _write_config(root / "src.yaml", source, root / "runs" / "src",
                            data={"classes": {"blobs": [1]}})
    tgt_cfg = _write_config(root / "tgt.yaml", target, root / "runs" / "tgt",
                            data={"classes": {"blob": [1]}})
    return root, src_cfg, tgt_cfg


def test_bench_transfer_compares_scratch_and_transfer_per_seed(setup, capsys):
    root, src_cfg, tgt_cfg = setup
    out, png = root / "t.json", root / "t.png"
    assert main(["bench", "transfer", "--config", str(tgt_cfg), "--source-config", str(src_cfg),
                 "--train-images", "2", "--seeds", "2", "--freeze", "--no-freeze",
                 "--json", str(out), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "source: training" in text and png.stat().st_size > 1000
    assert [line.split(":")[0] for line in text.splitlines() if "from scratch (gain" in line] \
        == ["transfer", "transfer_frozen"]
    report = json.loads(out.read_text())
    assert report["suite"] == "transfer"
    rows = report["summary"]
    assert [r["variant"] for r in rows] == ["transfer", "transfer_frozen"]
    for row in rows:
        assert set(SUMMARY_KEYS["transfer"]) <= set(row)
        assert row["dataset"] == "target" and row["train_images"] == 2 and row["seeds"] == 2
        assert row["source_dataset"] == "source" and row["source_classes"] == ["blobs"]
        assert row["source"] == str(root / "runs" / "src" / "best.pt")
        assert 0 <= row["wins"] <= 2 and all(0 <= d <= 1 for d in row["dice_transfer_per_seed"])
        assert row["dice_scratch"] == pytest.approx(sum(row["dice_scratch_per_seed"]) / 2)
    assert rows[0]["dice_scratch_per_seed"] == rows[1]["dice_scratch_per_seed"]  # shared runs
    cases = report["cases"]
    assert [(c["seed"], c["variant"]) for c in cases] == [
        (s, v) for s in (0, 1) for v in ("scratch", "transfer", "transfer_frozen")]
    picked = [c["train_ids"] for c in cases if c["variant"] == "scratch"]
    assert picked[0] != picked[1]  # seeds draw other cases...
    assert all(c["train_ids"] == picked[c["seed"]] for c in cases)  # ...the same per variant
    metrics = json.loads((root / "runs" / "tgt" / "seed1" / "transfer_frozen" /
                          "metrics.json").read_text())
    tested = {c["id"] for c in metrics["per_case"]}  # the same test split for every run
    assert len(tested) == 2
    pool = sorted({f"t{i}" for i in range(7)} - tested)
    assert picked == subsets(pool, 2, seeds=2, seed=0)
    # a second run reuses the finished source run of the same config
    assert main(["bench", "transfer", "--config", str(tgt_cfg), "--source-config", str(src_cfg),
                 "--train-images", "1", "--seeds", "1"]) == 0
    assert "source: reusing" in capsys.readouterr().out
    # ...and trains it again when the source config changed
    assert main(["bench", "transfer", "--config", str(tgt_cfg), "--source-config", str(src_cfg),
                 "--source-set", "training.iterations_per_epoch=1", "--train-images", "1",
                 "--seeds", "1"]) == 0
    assert "source: training" in capsys.readouterr().out


def test_a_source_checkpoint_of_another_shape_or_missing_is_a_one_line_error(setup, tmp_path,
                                                                             capsys):
    _, src_cfg, tgt_cfg = setup
    for raw, in_channels, message in [
            ({"data": {"dims": 3}}, 1, "--source: data.dims: 3 in the source, 2 here"),
            ({}, 3, "--source: in_channels: 3 in the source, 1 here")]:
        cfg = load_config({"data": {"path": "x", **raw.get("data", {})}, **TINY})
        ck = save_checkpoint(tmp_path / "other.pt", {
            "config": cfg, "in_channels": in_channels,
            "model": build_network(cfg, in_channels=in_channels).state_dict()})
        assert main(["bench", "transfer", "--config", str(tgt_cfg), "--source", str(ck)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"segloop bench: error: {ck}: {message}") and "\n" not in err
    wide = _write_config(tmp_path / "wide.yaml", tmp_path, tmp_path / "w",
                         model={"channels": [8, 16]})
    assert main(["bench", "transfer", "--config", str(tgt_cfg), "--source-config",
                 str(wide)]) == 1
    assert ("--source-config: model.channels: [8, 16] in the source, [4, 8] here"
            in capsys.readouterr().err)
    assert main(["bench", "transfer", "--config", str(tgt_cfg), "--source",
                 str(tmp_path / "nope.pt")]) == 1
    assert capsys.readouterr().err.strip() == (f"segloop bench: error: {tmp_path / 'nope.pt'}: "
                                               "checkpoint not found")


def test_bad_numbers_are_refused_before_training(setup, capsys):
    root, src_cfg, tgt_cfg = setup
    base = ["bench", "transfer", "--config", str(tgt_cfg), "--source-config", str(src_cfg)]
    for extra, message in [
            (["--train-images", "6"], "--train-images 6 is larger than the training split "
             f"(5 cases of {root / 'target'})"),
            (["--train-images", "0"], "--train-images must be at least 1, got 0"),
            (["--seeds", "0"], "--seeds must be at least 1, got 0")]:
        assert main(base + extra) == 1
        assert capsys.readouterr().err.strip() == f"segloop bench: error: {message}"
    assert main(["bench", "transfer", "--config", str(tgt_cfg), "--source", "x.pt",
                 "--source-set", "training.epochs=1"]) == 1
    assert "--source-set needs --source-config" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one source, not two
        main(base + ["--source", "x.pt"])
