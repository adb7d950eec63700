"""Training a cascade with one command, its cropped data, one checkpoint, segloop predict."""

import json

import numpy as np
import pytest
import yaml
from geometry_helpers import ORIGIN, SPACING

from segloop.cli.main import main
from segloop.errors import InvalidArgumentError
from segloop.io import Image, read_image, write_image
from segloop.learn.cascade import CascadePredictor
from segloop.learn.cascade_crop import region_box
from segloop.learn.cascade_data import cascade_box, locate_config, prepare_cascade_data
from segloop.learn.checkpoint import load_checkpoint
from segloop.learn.config import ConfigError, load_config
from segloop.learn.predict import load_model
from segloop.learn.train import train

DIRECTION = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def write_volumes(root, n=6, shape=(4, 40, 40)):
    """Anisotropic rotated NIfTI volumes: a bright disc on slices 1-2, somewhere; its label."""
    rng = np.random.default_rng(0)
    y, x = np.indices(shape[1:])
    for i in range(n):
        cy, cx = rng.integers(8, shape[1] - 8, size=2)
        disc = (y - cy) ** 2 + (x - cx) ** 2 <= 36
        label = np.zeros(shape, np.uint8)
        label[1:3][:, disc] = 1
        image = 0.2 + 0.6 * label + rng.normal(0, 0.05, shape)
        geometry = {"spacing": SPACING, "origin": ORIGIN, "direction": DIRECTION}
        write_image(Image(image.astype(np.float32), **geometry), root / "images" / f"v{i}.nii.gz")
        write_image(Image(label, kind="label", **geometry), root / "labels" / f"v{i}.nii.gz")
    return root


def cascade_raw(data, out, **cascade):
    return {"data": {"path": str(data), "split": {"test": 2, "val": 1}},
            "model": {"channels": [4, 8], "num_res_units": 0, "dropout": 0.0},
            "augmentation": {"enabled": False},
            "training": {"epochs": 1, "iterations_per_epoch": 2, "batch_size": 2, "threads": 1},
            "output": {"dir": str(out), "tensorboard": False},
            "cascade": {"locate": {"data": {"spacing": [1.6, 1.6]}}, "margin_mm": [4.0, 4.0],
                        **cascade}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cascade")
    data = write_volumes(root / "data")
    cfg = load_config(cascade_raw(data, root / "run"))
    lines = []
    result = train(cfg, log=lines.append)
    return root, cfg, result, lines


def test_one_command_trains_both_stages_and_scores_whole_images(trained):
    root, cfg, result, lines = trained
    run = root / "run"
    assert any(line.startswith("locate: training stage 1 into") for line in lines)
    assert (run / "locate" / "best.pt").is_file() and (run / "locate" / "metrics.json").is_file()
    assert result["grid"] == "native" and result["test_cases"] == 2
    assert result["cascade"]["trained"] and result["cascade"]["path"] == str(
        run / "locate" / "best.pt")
    for case in result["per_case"]:  # scored on the whole native grid
        assert case["grid"] == "native" and 0.0 <= case["dice"] <= 1.0
        assert case["box"] is None or case["box"][0] == [0, 4]  # 2D model: every slice kept
    assert json.loads((run / "metrics.json").read_text())["cascade"]["trained"]
    ck = load_checkpoint(run / "best.pt")
    stage1 = load_checkpoint(run / "locate" / "best.pt")
    assert sorted(ck["cascade_locate"]) == ["best", "config", "elapsed", "epoch", "in_channels",
                                            "model", "preprocess"]
    assert ck["cascade_locate"]["config"]["data"]["spacing"] == [1.6, 1.6]
    for name, tensor in stage1["model"].items():
        assert (ck["cascade_locate"]["model"][name] == tensor).all()


def test_the_checkpoint_predicts_on_the_input_grid(trained):
    root = trained[0]
    model = load_model(root / "run" / "best.pt")
    assert isinstance(model, CascadePredictor)
    image = read_image(root / "data" / "images" / "v0.nii.gz")
    result = model.predict(image, soft=True)
    for out in (result.label, result.probabilities):
        assert out.shape == image.shape == (4, 40, 40)
        assert out.spacing == image.spacing
        np.testing.assert_allclose(out.origin, ORIGIN, atol=1e-6)
        np.testing.assert_allclose(out.direction, DIRECTION, atol=1e-6)
    np.testing.assert_allclose(result.probabilities.array.sum(-1), 1.0, atol=1e-5)


def test_segloop_predict_runs_both_stages(trained, capsys):
    root = trained[0]
    assert main(["predict", "--model", str(root / "run" / "best.pt"), "--input",
                 str(root / "data" / "images" / "v1.nii.gz"), "--output",
                 str(root / "pred")]) == 0
    out = read_image(root / "pred" / "v1_seg.nii.gz", kind="label")
    source = read_image(root / "data" / "images" / "v1.nii.gz")
    assert out.shape == source.shape and out.spacing == source.spacing
    np.testing.assert_allclose(out.origin, source.origin, atol=1e-5)
    expected = load_model(root / "run" / "best.pt").predict(source).label.array
    np.testing.assert_array_equal(out.array, expected)


def test_a_second_run_reuses_stage_one_and_the_regions(trained):
    root, cfg, _, _ = trained
    stamp = (root / "run" / "locate" / "best.pt").stat().st_mtime_ns
    lines = []
    train(cfg, log=lines.append)
    assert any(line.startswith("locate: reusing") for line in lines)
    assert any("regions 6 cached, 0 computed" in line for line in lines)
    assert (root / "run" / "locate" / "best.pt").stat().st_mtime_ns == stamp


def test_a_new_stage_one_restarts_stage_two(trained, tmp_path):
    root = trained[0]
    raw = cascade_raw(root / "data", tmp_path / "run", crop_from="label")
    train(load_config(raw), log=lambda line: None)
    raw["cascade"]["locate"]["training"] = {"seed": 1}  # another stage-1 config: trained again
    lines = []
    train(load_config(raw), log=lines.append)
    assert any(line.startswith("locate: training stage 1") for line in lines)
    assert any("holds another stage 1: stage 2 starts afresh" in line for line in lines)
    assert not any(line.startswith("resuming from") for line in lines)
    ck, stage1 = (load_checkpoint(tmp_path / "run" / f) for f in ("best.pt", "locate/best.pt"))
    assert stage1["config"].training.seed == 1
    for name, tensor in stage1["model"].items():
        assert (ck["cascade_locate"]["model"][name] == tensor).all()


def test_label_crops_and_a_checkpoint_as_stage_one(trained):
    root = trained[0]
    raw = cascade_raw(root / "data", root / "from_label", crop_from="label",
                      locate=str(root / "run" / "locate" / "best.pt"), min_size_mm=[0, 16.0])
    cfg = load_config(raw)
    assert locate_config(cfg) is None  # a checkpoint: nothing to train
    prepared = prepare_cascade_data(cfg, log=lambda line: None)
    volumes = prepared.data.train + prepared.data.val + prepared.data.test
    assert len(volumes) == 6 and [c.id for c in prepared.test_cases] == [
        v.id for v in prepared.data.test]
    for vol in volumes:
        label = read_image(root / "data" / "labels" / f"{vol.id}.nii.gz", kind="label")
        box = cascade_box(region_box(label.array), shape=label.shape, spacing=SPACING, cfg=cfg)
        assert box[0] == [0, 4] and box[1][1] - box[1][0] >= 20  # 16 mm at least in-plane
        assert prepared.boxes[vol.id] == box == vol.info["cascade_box"]
        np.testing.assert_array_equal(vol.label, label.array[tuple(slice(a, b) for a, b in box)])
        origin = np.asarray(ORIGIN) + DIRECTION @ (np.array([b[0] for b in box]) * SPACING)
        np.testing.assert_allclose(vol.info["origin"], origin, atol=1e-5)


def test_bad_cascade_configs_are_named(trained, tmp_path):
    root = trained[0]
    cfg = load_config(cascade_raw(root / "data", tmp_path / "r"))
    with pytest.raises(InvalidArgumentError, match="reads its own cropped cases"):
        train(cfg, data=object())
    bad = cascade_raw(root / "data", tmp_path / "r")
    bad["cascade"]["locate"] = {"data": {"spacnig": [2, 2]}}
    with pytest.raises(ConfigError, match=r"cascade.locate: data.spacnig: unknown key"):
        locate_config(load_config(bad))
    nested = tmp_path / "nested.yaml"
    nested.write_text(yaml.safe_dump(cascade_raw(root / "data", tmp_path / "n")))
    bad["cascade"]["locate"] = str(nested)
    with pytest.raises(ConfigError, match="the locating config is a cascade itself"):
        locate_config(load_config(bad))
    bad["cascade"]["locate"] = {"data": {"classes": {"disc": [1]}}}
    bad["cascade"]["classes"] = ["heart"]
    with pytest.raises(InvalidArgumentError, match="'heart' is not a class of the locating"):
        train(load_config(bad), log=lambda line: None)
    assert not (tmp_path / "r" / "locate").exists()  # refused before any training
