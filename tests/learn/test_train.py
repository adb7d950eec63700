"""Training end to end on phantom folders: learning, resume, budget, SoftSeg, 3D, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from scipy.ndimage import binary_dilation, binary_erosion

import segloop.learn.epoch as epoch_module
import segloop.learn.train as train_module
from conftest import write_phantom_pairs
from segloop.data import phantom_2d, phantom_3d
from segloop.errors import CorruptFileError, InvalidArgumentError, SegloopError
from segloop.io import Image, write_image
from segloop.learn.checkpoint import load_checkpoint, restore_network
from segloop.learn.config import load_config, to_dict
from segloop.learn.train import train

TINY = {"model": {"channels": [8, 16], "num_res_units": 0, "dropout": 0.0},
        "optim": {"lr": 0.01}, "augmentation": {"enabled": False}}


def _config(data_path: Path, out: Path, **sections) -> dict:
    cfg = {"data": {"path": str(data_path), "split": {"test": 2, "val": 1}},
           "training": {"epochs": 4, "batch_size": 4, "iterations_per_epoch": 5, "threads": 1},
           "output": {"dir": str(out), "tensorboard": False}, **TINY}
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **values}
    return cfg


def _quiet(line: str) -> None:
    pass


@pytest.fixture(scope="module")
def pairs_2d(tmp_path_factory) -> Path:
    """8 PNG phantoms 64² with binary blob labels, as images/ + labels/."""
    return write_phantom_pairs(tmp_path_factory.mktemp("pairs2d"), 8, (64, 64))


@pytest.fixture(scope="module")
def run_2d(pairs_2d, tmp_path_factory):
    """One 4-epoch 2D run (shared by the tests that inspect its outputs).

    Also records the progress events and the order of the checkpoint saves.
    """
    out = tmp_path_factory.mktemp("run2d")
    lines: list[str] = []
    record = {"events": [], "saves": []}
    save = train_module.save_checkpoint

    def recording(path, content):
        record["saves"].append((Path(path).name, content["epoch"]))
        return save(path, content)

    cfg = load_config(_config(pairs_2d, out, output={"tensorboard": True}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "save_checkpoint", recording)
        result = train(cfg, log=lines.append, progress=record["events"].append)
    return cfg, result, out, lines, record


def test_2d_training_learns_and_writes_its_outputs(run_2d):
    cfg, result, out, lines, _ = run_2d
    history = load_checkpoint(out / "last.pt")["history"]
    losses = [r["loss"] for r in history]
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert losses[-1] < 0.6 * losses[0]
    assert history[-1]["val_dice"] > max(0.8, history[0]["val_dice"])
    assert result["dice"] > 0.75 and result["stopped"] == "epochs" and result["epochs"] == 4
    assert json.loads((out / "metrics.json").read_text())["dice"] == result["dice"]
    assert [c["id"] for c in result["per_case"]] == ["c2", "c4"]  # the seeded test split
    assert result["dice"] == pytest.approx(np.mean([c["dice"] for c in result["per_case"]]))
    assert result["samples_per_second"] > 0 and result["loader_seconds"] >= 0
    assert result["best"]["epoch"] == max(history, key=lambda r: r["val_dice"])["epoch"]
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,loss,val_dice") and len(rows) == 5
    assert load_config(yaml.safe_load((out / "config.yaml").read_text())) == cfg
    assert (out / "learning_curves.png").stat().st_size > 5000
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tb").iterdir())
    assert load_checkpoint(out / "best.pt")["epoch"] == result["best"]["epoch"]
    assert sum(line.startswith("epoch ") for line in lines) == 4
    assert "samples/s" in lines[-2] and "loader" in lines[-2]
    # lr: the rate each epoch started with (cosine over 4 x 5 steps, no warm-up)
    assert history[0]["lr"] == 0.01
    assert history[1]["lr"] == pytest.approx(0.01 * 0.5 * (1 + np.cos(np.pi * 5 / 20)))


def test_progress_reports_every_iteration_and_each_validation(run_2d):
    _, _, out, _, record = run_2d
    events, history = record["events"], load_checkpoint(out / "last.pt")["history"]
    steps = [e for e in events if e["stage"] == "train"]
    assert [(e["epoch"], e["iteration"]) for e in steps] == [
        (epoch, i) for epoch in range(1, 5) for i in range(1, 6)]
    assert all(e["iterations"] == 5 and e["epochs"] == 4 and e["samples_per_second"] > 0
               for e in steps)
    # the running loss of an epoch's last iteration is the epoch's loss
    assert [e["loss"] for e in steps if e["iteration"] == 5] == pytest.approx(
        [r["loss"] for r in history])
    stages = [(e["stage"], e["epoch"]) for e in events if e["stage"] != "train"]
    assert stages == [("validate", epoch) for epoch in range(1, 5)]
    assert events.index({"stage": "validate", "epoch": 1, "epochs": 4}) == 5  # after epoch 1


def test_best_is_saved_before_last(run_2d):
    """A kill between the two saves leaves last.pt one epoch behind, never ahead of best.pt."""
    _, result, _, _, record = run_2d
    saves = record["saves"]
    assert [s for s in saves if s[0] == "last.pt"] == [("last.pt", e) for e in range(1, 5)]
    for i, (name, epoch) in enumerate(saves):
        if name == "best.pt":
            assert saves[i + 1] == ("last.pt", epoch)
    assert ("best.pt", 1) in saves and ("best.pt", result["best"]["epoch"]) in saves


def test_interrupted_run_resumes_at_the_next_epoch_exactly(run_2d, tmp_path, monkeypatch):
    cfg, reference, _, _, _ = run_2d
    raw = to_dict(cfg)
    raw["output"]["dir"] = str(tmp_path)
    raw["output"]["tensorboard"] = False
    calls = {"n": 0}
    step = epoch_module.train_step

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # the second step of epoch 2 (5 iterations per epoch)
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(epoch_module, "train_step", interrupted)
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        train(load_config(raw), log=lines.append)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert not (tmp_path / "metrics.json").exists()
    assert lines[-1] == (f"interrupted: 1 finished epochs are in {tmp_path / 'last.pt'}; run "
                         "the same command again to resume")

    monkeypatch.setattr(epoch_module, "train_step", step)
    lines: list[str] = []
    resumed = train(load_config(raw), log=lines.append)
    assert any("resuming from" in line and "after epoch 1" in line for line in lines)
    history = load_checkpoint(tmp_path / "last.pt")["history"]
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 5
    # seeded per epoch: the resumed run is the uninterrupted one, loss for loss
    ref = load_checkpoint(Path(cfg.output.dir) / "last.pt")["history"]
    assert [r["loss"] for r in history] == [r["loss"] for r in ref]
    assert resumed["dice"] == reference["dice"]

    again = train(load_config(raw), log=_quiet)  # finished: evaluates only
    assert again["epochs"] == 4 and again["dice"] == reference["dice"]


def test_max_minutes_stops_cleanly_evaluates_and_saves(pairs_2d, tmp_path):
    cfg = load_config(_config(pairs_2d, tmp_path, training={"max_minutes": 1e-4,
                                                            "epochs": 50}))
    result = train(cfg, log=_quiet)
    assert result["stopped"] == "max_minutes" and result["epochs"] == 1
    ck = load_checkpoint(tmp_path / "last.pt")
    assert ck["epoch"] == 1 and ck["history"][0]["samples"] == 4  # one iteration
    assert ck["history"][0]["val_dice"] is not None
    assert json.loads((tmp_path / "metrics.json").read_text())["stopped"] == "max_minutes"


def test_ctrl_c_in_the_first_epoch_leaves_nothing_and_says_so(pairs_2d, tmp_path,
                                                               monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(epoch_module, "train_step", interrupted)
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        train(load_config(_config(pairs_2d, tmp_path)), log=lines.append)
    assert lines[-1] == "interrupted during the first epoch: no epoch finished, nothing to resume"
    assert not (tmp_path / "last.pt").exists() and not (tmp_path / "best.pt").exists()


def test_a_budget_spent_as_the_last_epoch_ends_reports_epochs(pairs_2d, tmp_path):
    """Every epoch done: ``epochs``; epochs left: ``max_minutes``, the last one validated."""
    one = _config(pairs_2d, tmp_path / "one", training={"max_minutes": 1e-4, "epochs": 1,
                                                        "iterations_per_epoch": 1})
    assert train(load_config(one), log=_quiet)["stopped"] == "epochs"
    two = _config(pairs_2d, tmp_path / "two", training={"max_minutes": 1e-4, "epochs": 2,
                                                        "iterations_per_epoch": 1,
                                                        "val_every": 5})
    result = train(load_config(two), log=_quiet)
    assert result["stopped"] == "max_minutes" and result["epochs"] == 1
    history = load_checkpoint(tmp_path / "two" / "last.pt")["history"]
    assert history[0]["samples"] == 4 and history[0]["val_dice"] is not None


def test_early_stopping_counts_validations_without_improvement(pairs_2d, tmp_path):
    cfg = load_config(_config(pairs_2d, tmp_path, optim={"lr": 1e-9, "schedule": "none"},
                              training={"early_stopping": 1, "epochs": 10,
                                        "iterations_per_epoch": 1}))
    result = train(cfg, log=_quiet)
    assert result["stopped"] == "early_stopping"
    assert result["epochs"] == 2 and result["best"]["epoch"] == 1


def test_3d_training_runs_two_iterations_with_sliding_window(tmp_path):
    data = tmp_path / "vols"
    for i in range(4):
        ph = phantom_3d((20, 28, 28), seed=i, n_blobs=1, thin_structures=False)
        write_image(Image(ph.image), data / "images" / f"v{i}.nii.gz")
        write_image(Image((ph.label > 0).astype(np.uint8), kind="label"),
                    data / "labels" / f"v{i}.nii.gz")
    cfg = load_config(_config(data, tmp_path / "out",
                              data={"dims": 3, "patch_size": [16, 16, 16],
                                    "split": {"test": 1, "val": 1}},
                              training={"epochs": 1, "iterations_per_epoch": 2,
                                        "batch_size": 1}))
    result = train(cfg, log=_quiet)
    assert result["epochs"] == 1 and result["test_cases"] == 1
    assert 0.0 <= result["dice"] <= 1.0
    assert load_checkpoint(tmp_path / "out" / "last.pt")["history"][0]["samples"] == 2


def test_softseg_outputs_stay_in_unit_interval_and_the_loss_falls(tmp_path):
    """Three raters (eroded, true, dilated masks): their mean is the soft truth."""
    data = tmp_path / "raters"
    data.mkdir()
    images, masks = [], []
    for i in range(8):
        ph = phantom_2d((48, 48), seed=i, n_blobs=2, thin_structures=False, weak_edges=False)
        m = ph.label > 0
        images.append(ph.image.astype(np.float32))
        masks.append(np.stack([binary_erosion(m, iterations=2), m,
                               binary_dilation(m, iterations=2)]).astype(np.uint8))
    np.savez(data / "raters.npz", image=np.stack(images), masks=np.stack(masks))
    cfg = load_config(_config(data, tmp_path / "out",
                              data={"soft_labels": True, "label": ["rater1", "rater2", "rater3"]},
                              model={"final_activation": "normrelu"},
                              loss={"name": "adaptive_wing"}))
    result = train(cfg, log=_quiet)
    ck = load_checkpoint(tmp_path / "out" / "last.pt")
    losses = [r["loss"] for r in ck["history"]]
    assert losses[-1] < 0.7 * losses[0]
    assert result["dice"] == result["hard_dice"] > 0.6
    assert 0.4 < result["soft_dice"] < 1.0
    net = restore_network(ck)
    with torch.no_grad():
        x = np.stack(images[:4])[:, None]
        out = net(torch.from_numpy((x - x.mean()) / x.std()))
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    soft = [v for v in np.unique(out.numpy()) if 0.05 < v < 0.95]
    assert len(soft) > 100  # graded, not binarised


def test_init_from_loads_the_tensors_that_fit(run_2d, pairs_2d, tmp_path):
    source = Path(run_2d[0].output.dir) / "best.pt"
    cfg = load_config(_config(pairs_2d, tmp_path,
                              data={"classes": {"a": [1], "b": [2]}},
                              training={"epochs": 1, "iterations_per_epoch": 1,
                                        "init_from": str(source)}))
    lines: list[str] = []
    train(cfg, log=lines.append)
    loaded = [line for line in lines if line.startswith("init_from")]
    n_own = len(restore_network(load_checkpoint(tmp_path / "last.pt")).state_dict())
    assert loaded and f"of {n_own} tensors" in loaded[0]
    n_loaded = int(loaded[0].split("loaded ")[1].split(" ")[0])
    assert 0 < n_loaded < n_own  # the output layer has another number of classes


def test_resume_refuses_other_optimiser_settings_and_takes_more_epochs(run_2d, pairs_2d,
                                                                       tmp_path):
    shutil.copy(Path(run_2d[0].output.dir) / "last.pt", tmp_path / "last.pt")
    for optim, change in [({"name": "sgd"}, "optim.name: 'adamw' there, 'sgd' here"),
                          ({"lr": 0.5}, "optim.lr: 0.01 there, 0.5 here"),
                          ({"schedule": "poly"}, "optim.schedule: 'cosine' there, 'poly' here"),
                          ({"weight_decay": 0.0}, "optim.weight_decay: 0.0001 there, 0.0 here")]:
        with pytest.raises(InvalidArgumentError) as err:
            train(load_config(_config(pairs_2d, tmp_path, optim=optim)), log=_quiet)
        assert str(err.value) == (f"{tmp_path / 'last.pt'}: was trained with other optimiser "
                                  f"settings ({change}); use another output.dir or set "
                                  "training.resume=false")
    # more epochs continue the run (momentum means nothing to AdamW: not compared)
    lines: list[str] = []
    more = _config(pairs_2d, tmp_path, training={"epochs": 5}, optim={"momentum": 0.5})
    result = train(load_config(more), log=lines.append)
    assert any("resuming from" in line and "after epoch 4" in line for line in lines)
    assert result["epochs"] == 5
    history = load_checkpoint(tmp_path / "last.pt")["history"]
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]


def test_other_architecture_and_corrupt_checkpoints_are_one_line_errors(run_2d, pairs_2d,
                                                                         tmp_path):
    shutil.copy(Path(run_2d[0].output.dir) / "last.pt", tmp_path / "last.pt")
    wider = load_config(_config(pairs_2d, tmp_path, model={"channels": [8, 16, 32]}))
    with pytest.raises(InvalidArgumentError) as err:
        train(wider, log=_quiet)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "last.pt"))
    assert "model.channels: [8, 16] there, [8, 16, 32] here" in message

    (tmp_path / "last.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CorruptFileError) as err:
        train(load_config(_config(pairs_2d, tmp_path)), log=_quiet)
    assert "\n" not in str(err.value) and str(tmp_path / "last.pt") in str(err.value)

    missing = load_config(_config(pairs_2d, tmp_path / "b",
                                  training={"init_from": str(tmp_path / "nope.pt")}))
    with pytest.raises(SegloopError, match="nope.pt: checkpoint not found"):
        train(missing, log=_quiet)


def test_given_data_is_what_trains_and_tests(pairs_2d, tmp_path):
    """``train(cfg, data=...)`` trains on the given volumes only (active learning's labelled)."""
    from segloop.learn.data import PreparedData, prepare_data

    cfg = load_config(_config(pairs_2d, tmp_path,
                              training={"epochs": 1, "iterations_per_epoch": 1}))
    full = prepare_data(cfg, log=_quiet)
    subset = PreparedData(full.train[:1], [], full.test[:1], full.in_channels, full.preprocess)
    seen = []
    real = train_module.make_loader

    def loader(config, volumes, *, seed):
        seen.extend(v.id for v in volumes)
        return real(config, volumes, seed=seed)

    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "make_loader", loader)
        result = train(cfg, data=subset, log=lines.append)
    assert seen == [full.train[0].id]
    assert result["test_cases"] == 1 and [c["id"] for c in result["per_case"]] == [
        full.test[0].id]
    assert "1 training, 0 validation, 1 test cases" in "\n".join(lines)
