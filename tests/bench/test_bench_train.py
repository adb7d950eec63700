"""``segloop bench train``: the suite end to end on phantoms, the plain loop, the configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import write_phantom_pairs
from segloop.bench.plain_loop import PatchSamples, plain_loop
from segloop.bench.report import SUMMARY_KEYS
from segloop.bench.train import run_train_bench
from segloop.cli.main import main
from segloop.data import phantom_2d
from segloop.errors import InvalidArgumentError
from segloop.learn.config import load_config
from segloop.learn.losses import build_loss
from segloop.learn.networks import build_network

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
TOP_KEYS = {"suite", "segloop_version", "versions", "machine", "args", "summary", "cases",
            "notes"}


def _quiet(line: str) -> None:
    pass


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> Path:
    """6 PNG phantoms 48² with binary blob labels, as images/ + labels/."""
    return write_phantom_pairs(tmp_path_factory.mktemp("phantoms"), 6, (48, 48), prefix="p")


def _tiny(data: Path, out: Path) -> dict:
    return {"data": {"path": str(data), "split": {"test": 2, "val": 0}},
            "model": {"channels": [8, 16], "num_res_units": 0, "dropout": 0.0},
            "augmentation": {"enabled": False}, "optim": {"lr": 0.01},
            "training": {"epochs": 2, "iterations_per_epoch": 3, "batch_size": 2,
                         "threads": 1},
            "output": {"dir": str(out), "tensorboard": False}}


def test_the_suite_reports_dice_time_and_both_throughputs(phantoms, tmp_path):
    out = tmp_path / "run"
    (out).mkdir()
    cfg = load_config(_tiny(phantoms, out))
    report = run_train_bench(cfg, config_path="tiny.yaml", overrides=["a=1"], log=_quiet)
    assert set(report) == TOP_KEYS and report["suite"] == "train"
    (row,) = report["summary"]
    assert set(SUMMARY_KEYS["train"]) <= set(row)
    assert row["dataset"] == phantoms.name and row["config"] == "tiny.yaml"
    metrics = json.loads((out / "metrics.json").read_text())
    assert row["dice"] == metrics["dice"] and 0.0 <= row["dice"] <= 1.0
    # 2 epochs x 3 iterations of 2 samples; the plain loop runs as many
    assert (row["iterations"], row["reference_iterations"], row["epochs"]) == (6, 6, 2)
    assert row["stopped"] == "epochs" and row["patch"] == [48, 48]
    assert row["ratio"] == pytest.approx(row["samples_per_s"] / row["reference_samples_per_s"])
    assert 0 < row["samples_per_s_wall"] <= row["samples_per_s"]  # checkpoints etc. count too
    assert row["ratio_wall"] <= row["ratio"]
    assert row["loader_share"] == pytest.approx(row["loader_seconds"] / (
        row["iterations"] * 2 / row["samples_per_s"]))
    assert row["seconds"] > 0 and row["loader_seconds"] >= 0 and row["total_seconds"] > 0
    tested = [c["case"] for c in report["cases"] if c["case"] != "plain-loop"]
    assert tested == [c["id"] for c in metrics["per_case"]] and len(tested) == 2
    assert report["cases"][-1]["case"] == "plain-loop"
    assert report["args"]["set"] == ["a=1"]
    assert report["args"]["resolved"]["training"]["resume"] is False  # timed from scratch
    json.dumps(report, allow_nan=False)


def test_reference_iterations_cap_and_skip_the_plain_loop(phantoms, tmp_path):
    cfg = load_config(_tiny(phantoms, tmp_path / "run"), overrides=["training.epochs=1"])
    capped = run_train_bench(cfg, reference_iterations=2, log=_quiet)
    (row,) = capped["summary"]
    assert (row["iterations"], row["reference_iterations"]) == (3, 2)
    assert "2 of segloop's 3 iterations" in capped["notes"][0]
    none = run_train_bench(cfg, reference_iterations=0, log=_quiet)["summary"][0]
    assert none["reference_samples_per_s"] is None and none["ratio"] is None
    with pytest.raises(InvalidArgumentError, match="reference-iterations"):
        run_train_bench(cfg, reference_iterations=-1, log=_quiet)


def test_the_plain_loop_trains(phantoms):
    cfg = load_config(_tiny(phantoms, phantoms / "unused"))
    torch.manual_seed(0)
    net = build_network(cfg, in_channels=1).backbone
    images, labels = [], []
    for i in range(4):
        ph = phantom_2d((32, 32), seed=10 + i, n_blobs=2, thin_structures=False,
                        weak_edges=False)
        images.append(((ph.image - ph.image.mean()) / ph.image.std())[None].astype(np.float32))
        labels.append((ph.label > 0).astype(np.uint8))
    run = plain_loop(net, build_loss(cfg), torch.optim.Adam(net.parameters(), lr=0.01),
                     images, labels, patch=(32, 32), batch_size=4, iterations=20, seed=0)
    losses = run["losses"]
    assert (run["iterations"], run["samples"], len(losses)) == (20, 80, 20)
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert run["samples_per_s"] == pytest.approx(80 / run["seconds"])
    assert 0 <= run["loader_seconds"] < run["seconds"]


def test_patch_samples_are_seeded_slices_and_padded_crops():
    image = np.arange(2 * 5 * 6 * 7, dtype=np.float32).reshape(2, 5, 6, 7)
    label = (image[0] % 3 == 0).astype(np.uint8)
    data = PatchSamples([image], [label], patch=(4, 9), length=10, slice_axes=[1], seed=3)
    item = data[4]
    assert item["image"].shape == (2, 4, 9) and item["label"].shape == (1, 4, 9)
    assert item["label"].dtype == torch.int64 and item["image"].dtype == torch.float32
    assert torch.equal(item["image"], data[4]["image"])  # the same for (seed, k)
    # 7 wide -> 9: one column of zeros each side; the slice is one y of the volume
    assert (item["image"][:, :, 0] == 0).all() and (item["image"][:, :, -1] == 0).all()
    y = int(item["image"][0, 0, 1] // 7) % 6
    rows = item["image"][0, :, 1:-1].numpy()
    z0 = int(item["image"][0, 0, 1] // 42)
    assert np.array_equal(rows, image[0, z0:z0 + 4, y])
    soft = PatchSamples([image[:, 0]], [np.full((3, 6, 7), 0.5, np.float32)], patch=(6, 7),
                        length=1)[0]
    assert soft["label"].shape == (3, 6, 7) and soft["label"].dtype == torch.float32
    assert torch.equal(soft["image"], torch.from_numpy(image[:, 0]))


def test_command_line_writes_the_json(phantoms, tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(_tiny(Path("elsewhere"), tmp_path / "run")))
    out = tmp_path / "r.json"
    code = main(["bench", "train", "--config", str(cfg), "--data", str(phantoms),
                 "--set", "training.epochs=1", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["suite"] == "train" and report["summary"][0]["epochs"] == 1
    assert report["args"]["set"] == ["training.epochs=1", f"data.path={phantoms}"]
    assert "| dataset | dice | seconds |" in capsys.readouterr().out


@pytest.mark.parametrize("change, key", [({"training": {"epoch": 3}}, "training.epoch"),
                                          ({"model": {"dropout": 2}}, "model.dropout")])
def test_a_bad_config_is_a_one_line_error(tmp_path, capsys, change, key):
    raw = _tiny(tmp_path, tmp_path / "run")
    for section, values in change.items():
        raw[section] = {**raw[section], **values}
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["bench", "train", "--config", str(cfg), "--json", str(tmp_path / "r.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err and "bad.yaml" in err
    assert not (tmp_path / "r.json").exists()


def test_missing_dataset_is_a_one_line_error(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(_tiny(tmp_path / "nowhere", tmp_path / "run")))
    assert main(["bench", "train", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nowhere" in err


def test_the_benchmark_configs_are_valid_and_point_at_the_shared_data():
    names = {p.stem for p in CONFIGS}
    assert {"em2d", "lgg2d", "brats2d", "la3d", "qubiq_softseg", "qubiq_hard"} <= names
    outputs = set()
    for path in CONFIGS:
        cfg = load_config(path)
        assert cfg.data.path.startswith("../shared/data/"), path.name
        assert cfg.training.max_minutes is not None and cfg.training.max_minutes <= 20
        assert "--set data.path=" in path.read_text()
        outputs.add(cfg.output.dir)
    assert len(outputs) == len(CONFIGS)  # no two benchmarks share a run folder
    em, brats = load_config(ROOT / "configs/em2d.yaml"), load_config(ROOT / "configs/brats2d.yaml")
    assert em.training.max_minutes == 15 and brats.data.classes == {"whole": [1, 2, 3, 4]}
    soft, hard = (load_config(ROOT / f"configs/qubiq_{k}.yaml") for k in ("softseg", "hard"))
    assert soft.data.soft_labels and soft.model.final_activation == "normrelu"
    assert soft.data.split == hard.data.split and soft.data.label == hard.data.label
