"""``segloop bench finetune``: the suite on phantoms through the CLI, its rows, its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import write_phantom_pairs
from segloop.bench.finetune import MIN_AREA, cases_of, play, summarize
from segloop.bench.report import SUMMARY_KEYS
from segloop.cli.main import main
from segloop.learn.checkpoint import save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.data import Volume
from segloop.learn.networks import build_network
from segloop.simulate.scribbles import first_scribbles
from segloop.tools import GraphCutSession

TOP_KEYS = {"suite", "segloop_version", "versions", "machine", "args", "summary", "cases",
            "notes"}


def _config(data: Path, classes=None) -> dict:
    return {"data": {"path": str(data), "split": {"test": 2, "val": 0},
                     **({"classes": classes} if classes else {})},
            "model": {"channels": [4, 8], "num_res_units": 0},
            "training": {"threads": 1}, "output": {"dir": str(data / "run")}}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Phantom pairs, their config file and an (untrained, seeded) checkpoint of it."""
    root = tmp_path_factory.mktemp("ft")
    data = write_phantom_pairs(root / "data", 5, (48, 48), prefix="p")
    cfg_file = root / "tiny.yaml"
    cfg_file.write_text(yaml.safe_dump(_config(data)))
    torch.manual_seed(0)
    cfg = load_config(cfg_file)
    ckpt = save_checkpoint(root / "model.pt", {"config": cfg, "in_channels": 1,
                                               "model": build_network(cfg, in_channels=1)
                                               .state_dict()})
    return root, cfg_file, ckpt


def test_the_cli_writes_json_plot_and_the_summary_keys(setup, capsys):
    root, cfg_file, ckpt = setup
    out, png = root / "ft.json", root / "ft.png"
    assert main(["bench", "finetune", "--config", str(cfg_file), "--model", str(ckpt),
                 "--scribbles", "3", "--option", "steps=2", "--json", str(out),
                 "--plot", str(png)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == TOP_KEYS and report["suite"] == "finetune"
    rows = {r["method"]: r for r in report["summary"]}
    assert list(rows) == ["model", "graphcut", "bifseg_crf_only", "bifseg"]
    for row in rows.values():
        assert set(SUMMARY_KEYS["finetune"]) <= set(row)
        assert row["n"] == 2 and row["dataset"] == "data"  # the 2 test images hold blobs
        assert row["gain"] == pytest.approx(row["dice"] - row["dice_initial"])
        assert row["dice_initial"] == rows["model"]["dice"]
    assert rows["model"]["scribbles"] == 0 and rows["model"]["gain"] == 0
    for method in ("graphcut", "bifseg_crf_only", "bifseg"):
        r = rows[method]
        assert r["scribbles"] == 3 and r["dice"] == r["dice_at_3"] and "dice_at_2" in r
        assert r["seconds_per_round"] > 0
    cases = [c for c in report["cases"] if c["method"] == "bifseg"]
    assert len(cases) == 2 and all(1 <= len(c["dice"]) <= 2 for c in cases)
    assert report["args"]["options"] == {"steps": 2} and report["args"]["scribbles"] == 3
    assert any(n.startswith("held-back images") for n in report["notes"])
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "| dataset | method |" in capsys.readouterr().out


def test_a_method_subset_and_a_model_of_other_settings_are_noted(setup, tmp_path):
    root, _, ckpt = setup
    other = _config(root / "data")
    other["data"]["split"]["seed"] = 3  # not the split the model was trained with
    cfg_file = tmp_path / "other.yaml"
    cfg_file.write_text(yaml.safe_dump(other))
    out = tmp_path / "ft.json"
    assert main(["bench", "finetune", "--config", str(cfg_file), "--model", str(ckpt),
                 "--method", "model", "graphcut", "--limit", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [r["method"] for r in report["summary"]] == ["model", "graphcut"]
    assert report["summary"][0]["n"] == 1
    assert report["notes"][0].startswith("WARNING: the model was trained with other data/split")


@pytest.mark.parametrize("extra, message", [
    (["--scribbles", "1"], "--scribbles must be at least 2"),
    (["--label", "2"], "--label 2: the model has classes 1..1 (foreground)"),
    (["--option", "speed=3"], "--option 'speed=3': expected KEY=VALUE with KEY one of steps"),
    (["--option", "steps=many"], "'many' is not a number"),
    (["--method", "magic"], "unknown method 'magic'"),
    (["--set", "training.epoch=3"], "training.epoch: unknown key"),
])
def test_bad_arguments_are_one_clear_line(setup, extra, message, capsys):
    _, cfg_file, ckpt = setup
    assert main(["bench", "finetune", "--config", str(cfg_file), "--model", str(ckpt),
                 *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_model_of_other_classes_is_refused(setup, tmp_path, capsys):
    root, _, ckpt = setup
    cfg_file = tmp_path / "two.yaml"
    cfg_file.write_text(yaml.safe_dump(_config(root / "data", {"a": [1], "b": [2]})))
    assert main(["bench", "finetune", "--config", str(cfg_file), "--model", str(ckpt)]) == 1
    err = capsys.readouterr().err.strip()
    assert "the model has 1 class(es) ['foreground'] in 2D, the config's labels 2" in err


def test_cases_are_slices_evenly_spread_over_those_holding_the_class():
    label = np.zeros((10, 12, 12), np.uint8)
    label[2:9, 3:9, 3:9] = 1  # 36 voxels on slices 2..8
    label[5, 3:9, 3:9] = 2
    image = np.zeros((1, 10, 12, 12), np.float32)
    meta = np.array([0.0, 1.0, 0.0], np.float32)  # a FiLM model's vector rides along
    vol = Volume("v", "s", image, label, (2.0, 1.0, 0.5), "v.nii", slice_axis=0, meta=meta)
    picks = cases_of([vol], label=1, slices=3, limit=None, two_d=True)
    assert [c["slice"] for c in picks] == [2, 4, 8]  # of 2, 3, 4, 6, 7, 8 (5: class 2 only)
    assert picks[0]["image"].shape == (1, 12, 12) and picks[0]["spacing"] == (1.0, 0.5)
    assert all(c["meta"] is meta for c in picks)
    assert [c["slice"] for c in cases_of([vol], label=1, slices=9, limit=2, two_d=True)] == [2, 3]
    whole = cases_of([vol], label=1, slices=3, limit=None, two_d=False)
    assert len(whole) == 1 and whole[0]["slice"] is None and whole[0]["truth"].sum() == 6 * 36
    assert MIN_AREA == 20
    assert cases_of([vol], label=2, slices=3, limit=None, two_d=True)[0]["slice"] == 5


def test_play_gives_dice_after_each_scribble_and_stops_at_the_truth():
    truth = np.zeros((40, 40), bool)
    truth[10:30, 12:28] = True
    image = np.where(truth, 0.8, 0.2) + np.random.default_rng(0).normal(0, 0.02, truth.shape)
    dice, seconds = play(GraphCutSession(image), truth, scribbles=5)
    assert dice == [1.0] and len(seconds) == 1  # perfect after the first pair: no correction
    fg, bg = first_scribbles(truth, margin=5)
    assert fg.foreground and not bg.foreground


def test_summarize_carries_the_last_dice_of_a_stopped_case():
    cases = [{"dataset": "d", "method": "bifseg", "dice_initial": 0.5, "dice": [0.8],
              "seconds": [2.0]},
             {"dataset": "d", "method": "bifseg", "dice_initial": 0.7, "dice": [0.6, 0.7, 0.9],
              "seconds": [1.0, 1.0, 1.0]},
             {"dataset": "d", "method": "model", "dice_initial": 0.5, "dice": [0.5],
              "seconds": []}]
    bif, model = summarize(cases, scribbles=4)
    assert bif["n"] == 2 and bif["scribbles"] == 4
    assert [bif["dice_at_2"], bif["dice_at_3"], bif["dice_at_4"]] == pytest.approx(
        [0.7, 0.75, 0.85])
    assert bif["dice"] == pytest.approx(0.85) and bif["gain"] == pytest.approx(0.25)
    assert bif["seconds_per_round"] == pytest.approx(1.25)
    assert model["gain"] == 0 and model["seconds_per_round"] is None
