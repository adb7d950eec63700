"""`segloop bench film` end to end on split-channel phantoms, and its refusals of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from segloop.bench.film import per_value, pooled_dice
from segloop.bench.report import SUMMARY_KEYS
from segloop.cli.main import main
from segloop.data import phantom_2d
from segloop.io import Image, write_image


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """5 phantoms as RGB PNGs (channels a, 1 - a, a / 2) and a tiny FiLM config."""
    root = tmp_path_factory.mktemp("film")
    for i in range(5):
        ph = phantom_2d((32, 32), seed=i, n_blobs=1, thin_structures=False)
        a = np.clip(ph.image, 0, 1)
        write_image(Image((np.stack([a, 1 - a, 0.5 * a], -1) * 255).astype(np.uint8),
                          channels=True), root / "data" / "images" / f"c{i}.png")
        write_image(Image((ph.label > 0).astype(np.uint8), kind="label"),
                    root / "data" / "labels" / f"c{i}.png")
    raw = {"data": {"path": str(root / "data"), "split_channels": ["a", "b", "c"],
                    "split": {"test": 2, "val": 0}},
           "model": {"channels": [4, 8], "num_res_units": 0, "dropout": 0.0,
                     "film": {"fields": ["contrast"]}},
           "augmentation": {"enabled": False},
           "training": {"epochs": 3, "iterations_per_epoch": 2, "batch_size": 4, "threads": 1},
           "output": {"dir": str(root / "runs"), "tensorboard": False}}
    (root / "film.yaml").write_text(yaml.safe_dump(raw))
    return root


def test_bench_film_compares_plain_and_film_per_contrast(setup, capsys):
    root = setup
    out, png = root / "f.json", root / "f.png"
    assert main(["bench", "film", "--config", str(root / "film.yaml"), "--set",
                 "training.epochs=1", "--json", str(out), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "plain: training" in text and "film: training" in text
    assert png.stat().st_size > 1000
    report = json.loads(out.read_text())
    assert report["suite"] == "film" and report["args"]["set"] == ["training.epochs=1"]
    [row] = report["summary"]
    assert set(SUMMARY_KEYS["film"]) <= set(row)
    assert row["dataset"] == "data" and row["metadata"] == ["contrast"]
    assert row["train_cases"] == 9 and row["test_cases"] == 6
    assert row["epochs_plain"] == row["epochs_film"] == 1
    assert row["gain"] == pytest.approx(row["dice_film"] - row["dice_plain"])
    cases = report["cases"]
    assert sorted(c["id"] for c in cases) == sorted(
        f"c{i}_{n}" for i in {int(c["id"][1]) for c in cases} for n in "abc")
    assert all(c["contrast"] == c["id"][-1] for c in cases)
    for name in ("plain", "film", "film_no_metadata"):
        assert row[f"dice_{name}"] == pytest.approx(np.mean([c[f"dice_{name}"] for c in cases]))
        assert row[f"pooled_{name}"] == pooled_dice(c[f"voxels_{name}"] for c in cases)
        assert 0 <= row[f"pooled_{name}"] <= 1
    assert row["per_contrast"] == per_value(cases, "contrast")
    assert {v: g["n"] for v, g in row["per_contrast"].items()} == {"a": 2, "b": 2, "c": 2}
    plain = json.loads((root / "runs" / "plain" / "metrics.json").read_text())
    film = json.loads((root / "runs" / "film" / "metrics.json").read_text())
    for name, metrics in (("plain", plain), ("film", film)):  # scored as segloop train scores
        assert {c["id"]: c["dice"] for c in metrics["per_case"]} == {
            c["id"]: c[f"dice_{name}"] for c in cases}
    assert not any(k.startswith("film.") for k in torch.load(
        root / "runs" / "plain" / "best.pt", weights_only=True)["model"])
    truth = sum(c["voxels_plain"][0][2] for c in cases)  # the same truth for every model
    assert truth > 0 and all(sum(c[f"voxels_{n}"][0][2] for c in cases) == truth
                             for n in ("film", "film_no_metadata"))


def test_per_value_groups_cases_and_pools_their_voxels():
    rows = [{"contrast": "t1", "dice_plain": 0.2, "voxels_plain": [[1, 2, 3]]},
            {"contrast": "t1", "dice_plain": 0.4, "voxels_plain": [[0, 0, 0]]},
            {"contrast": None, "dice_plain": 0.6, "voxels_plain": [[2, 2, 2]]}]
    groups = per_value(rows, "contrast")
    assert list(groups) == ["missing", "t1"]
    assert groups["t1"]["n"] == 2 and groups["t1"]["dice_plain"] == pytest.approx(0.3)
    assert groups["t1"]["pooled_plain"] == pytest.approx(0.4)  # 2 * 1 / (2 + 3)
    assert groups["missing"]["pooled_plain"] == 1.0 and groups["t1"]["dice_film"] is None
    assert pooled_dice([[[1, 2, 3], [0, 0, 0]]]) == pytest.approx(0.7)  # mean over classes
    assert pooled_dice([]) is None


def test_bench_film_refuses_a_config_without_film(setup, tmp_path, capsys):
    raw = yaml.safe_load((setup / "film.yaml").read_text())
    raw["model"].pop("film")
    path = Path(tmp_path / "plain.yaml")
    path.write_text(yaml.safe_dump(raw))
    assert main(["bench", "film", "--config", str(path), "--json", str(tmp_path / "x.json")]) == 1
    err = capsys.readouterr().err
    assert "the config has no model.film: nothing to compare" in err and str(path) in err
    assert not (tmp_path / "x.json").exists()
    assert main(["bench", "film", "--config", str(setup / "film.yaml"), "--set",
                 "model.film.fields=[]"]) == 1
    assert "model.film: fields: at least one metadata field" in capsys.readouterr().err
