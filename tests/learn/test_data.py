"""Reading, splitting and preparing volumes (segloop.learn.data)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_shared, shared
from segloop.data import phantom_2d, phantom_3d
from segloop.errors import DatasetError, GeometryMismatchError, InvalidArgumentError, SegloopError
from segloop.io import Case, Image, open_dataset, write_image
from segloop.learn.config import load_config
from segloop.learn.data import case_files, prepare_data, read_volume, select_cases
from segloop.learn.preprocess import preprocess_image, preprocess_settings, restore_geometry

pytest.importorskip("torch")


def _cfg(path=".", **data):
    return load_config({"data": {"path": str(path), **data}})


def _phantom_folder(root: Path, n: int = 6, subjects: int | None = None) -> Path:
    """``images/`` + ``labels/`` NIfTI pairs of 2D phantoms (label values 1..4)."""
    for i in range(n):
        ph = phantom_2d((48, 40), seed=i, n_blobs=3)
        name = f"s{i // 2 if subjects else i}_c{i}.nii.gz"
        write_image(Image(ph.image), root / "images" / name)
        write_image(Image(ph.label, kind="label"), root / "labels" / name)
    return root


def _case(tmp_path: Path, image: Image, label: Image | None = None, **kw) -> Case:
    img = tmp_path / "img.nii.gz"
    write_image(image, img)
    labels = {}
    if label is not None:
        write_image(label, tmp_path / "lab.nii.gz")
        labels = {"seg": tmp_path / "lab.nii.gz"}
    return Case("c1", "s1", img, labels=labels, label="seg" if labels else None, **kw)


# ----------------------------------------------------------------------------- class mapping
def test_classes_map_label_values_in_dict_order(tmp_path):
    lab = np.array([[0, 1, 2, 3], [4, 4, 1, 0]] * 2, np.uint8)
    case = _case(tmp_path, Image(np.ones((4, 4), np.float32)), Image(lab, kind="label"))
    vol = read_volume(case, _cfg(classes={"a": [2, 4], "b": [1], "c": [3]}).data)
    assert vol.label.dtype == np.uint8
    assert vol.label.tolist() == [[0, 2, 1, 3], [1, 1, 2, 0]] * 2
    assert vol.image.shape == (1, 4, 4) and vol.image.dtype == np.float32


def test_label_values_outside_the_classes_are_an_error_naming_case_and_values(tmp_path):
    lab = np.array([[0, 1], [5, 7]], np.uint8)
    case = _case(tmp_path, Image(np.ones((2, 2), np.float32)), Image(lab, kind="label"))
    with pytest.raises(DatasetError, match=r"case c1: labels with classes not in the config: "
                                           r"values \[5, 7\]"):
        read_volume(case, _cfg().data)


def test_label_on_another_grid_is_refused(tmp_path):
    case = _case(tmp_path, Image(np.ones((4, 4), np.float32)),
                 Image(np.zeros((4, 5), np.uint8), kind="label"))
    with pytest.raises(GeometryMismatchError):
        read_volume(case, _cfg().data)


# ----------------------------------------------------------------------------- channels
def test_colour_image_becomes_channels_first_and_channels_select(tmp_path):
    rgb = np.zeros((6, 5, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, np.arange(5) * 20, 200
    write_image(Image(rgb, channels=True), tmp_path / "a.png")
    case = Case("a", "a", tmp_path / "a.png")
    vol = read_volume(case, _cfg(normalize="none").data)
    assert vol.image.shape == (3, 6, 5) and vol.label is None
    assert vol.image[1, 0].tolist() == [0, 20, 40, 60, 80]
    one = read_volume(case, _cfg(normalize="none", channels=[1]).data)
    assert one.image.shape == (1, 6, 5)
    np.testing.assert_array_equal(one.image[0], vol.image[1])
    with pytest.raises(InvalidArgumentError, match=r"a.png: data.channels: \[3\] out of range "
                                                   r"for 3 channel\(s\)"):
        read_volume(case, _cfg(channels=[3]).data)


def test_contrasts_stack_main_and_extra_images_and_missing_is_named(tmp_path):
    flair, t1c = np.full((3, 4, 5), 2.0, np.float32), np.full((3, 4, 5), 7.0, np.float32)
    write_image(Image(flair), tmp_path / "flair.nii.gz")
    write_image(Image(t1c), tmp_path / "t1c.nii.gz")
    case = Case("p1", "p1", tmp_path / "flair.nii.gz", contrast="FLAIR",
                extra_images={"t1c": tmp_path / "t1c.nii.gz"})
    vol = read_volume(case, _cfg(dims=3, normalize="none", contrasts=["t1c", "flair"]).data)
    assert vol.image.shape == (2, 3, 4, 5)
    assert vol.image[0].max() == 7.0 and vol.image[1].max() == 2.0
    with pytest.raises(DatasetError, match="case p1 has no t2 image"):
        read_volume(case, _cfg(contrasts=["flair", "t2"]).data)
    other = Case("p2", "p2", tmp_path / "flair.nii.gz", contrast="T1w")
    assert select_cases([case, other], _cfg(contrasts=["flair"]).data) == []  # no label
    assert case_files(case, _cfg(contrasts=["t1c", "flair"]).data) == [
        tmp_path / "t1c.nii.gz", tmp_path / "flair.nii.gz"]


def test_a_2d_image_for_a_3d_model_is_an_error_naming_the_file(tmp_path):
    case = _case(tmp_path, Image(np.ones((8, 8), np.float32)))
    with pytest.raises(InvalidArgumentError, match=r"img.nii.gz: a 2D image cannot feed a 3D "
                                                   r"model \(data.dims: 3\)"):
        read_volume(case, _cfg(dims=3).data)


# ----------------------------------------------------------------------------- geometry
def _anisotropic(tmp_path: Path):
    ph = phantom_3d((20, 60, 120), seed=3, spacing=(3.0, 1.0, 0.5), n_blobs=2)
    c, s = np.cos(0.3), np.sin(0.3)
    direction = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    geo = {"spacing": (3.0, 1.0, 0.5), "origin": (10.0, -4.0, 7.5), "direction": direction}
    image = Image(ph.image, **geo)
    label = Image(ph.label, kind="label", **geo)
    return _case(tmp_path, image, label), ph, geo


def test_resampling_then_restoring_gives_back_labels_and_image(tmp_path):
    case, ph, geo = _anisotropic(tmp_path)
    cfg = _cfg(dims=3, spacing=[1.0, 0.5, 0.5], classes={"a": [1, 2, 3]}).data
    vol = read_volume(case, cfg)
    assert vol.spacing == (1.0, 0.5, 0.5)
    assert vol.image.shape == (1, 60, 120, 120) and vol.label.shape == (60, 120, 120)
    back = restore_geometry(vol.label, vol.info, 0)
    np.testing.assert_array_equal(back, ph.label > 0)
    # the image: linear up-sampling by 3 along z keeps the old voxel centres exactly
    image, info = preprocess_image(case.read_image(), _cfg(dims=3, spacing=[1.0, 1.0, 0.5]).data)
    assert image.shape == (1, 60, 60, 120)
    direct, _ = preprocess_image(case.read_image(), _cfg(dims=3).data)
    np.testing.assert_allclose(restore_geometry(image, info, 1), direct, atol=1e-4)
    np.testing.assert_allclose(info["origin"], geo["origin"])
    np.testing.assert_allclose(info["direction"], geo["direction"])


def test_crop_foreground_round_trip_fills_outside(tmp_path):
    x = np.zeros((30, 20), np.float32)
    x[5:12, 4:15] = 1.0 + np.arange(11)
    lab = np.zeros((30, 20), np.uint8)
    lab[6:10, 5:9] = 1
    case = _case(tmp_path, Image(x), Image(lab, kind="label"))
    vol = read_volume(case, _cfg(crop_foreground=True).data)
    assert vol.image.shape == (1, 7, 11) and vol.info["crop"] == [[5, 12], [4, 15]]
    np.testing.assert_array_equal(restore_geometry(vol.label, vol.info, 0), lab)
    probs = restore_geometry(np.full((2, 7, 11), 0.5, np.float32), vol.info, 1, fill=[1.0, 0.0])
    assert probs.shape == (2, 30, 20) and probs[0, 0, 0] == 1.0 and probs[1, 0, 0] == 0.0
    assert probs[0, 6, 6] == 0.5
    with pytest.raises(InvalidArgumentError, match="order=0"):
        restore_geometry(np.zeros((7, 11), np.float32), vol.info, 0)


def test_2d_model_on_volumes_resamples_in_plane_only(tmp_path):
    case, _, _ = _anisotropic(tmp_path)
    vol = read_volume(case, _cfg(spacing=[1.0, 1.0], classes={"a": [1, 2, 3]}).data)
    assert vol.slice_axis == 0 and vol.spacing == (3.0, 1.0, 1.0)
    assert vol.image.shape == (1, 20, 60, 60)
    cor = read_volume(case, _cfg(spacing=[1.0, 1.0], slice_axis="coronal",
                                 classes={"a": [1, 2, 3]}).data)
    assert cor.slice_axis == 1 and cor.spacing == (1.0, 1.0, 1.0)


# ----------------------------------------------------------------------------- soft labels
def test_soft_label_is_the_mean_of_the_raters(tmp_path):
    rng = np.random.default_rng(2)
    img = tmp_path / "im.nii.gz"
    write_image(Image(rng.random((10, 12)).astype(np.float32)), img)
    raters = [rng.integers(0, 2, (10, 12)).astype(np.uint8) for _ in range(3)]
    labels = {}
    for i, r in enumerate(raters):
        labels[f"r{i}"] = tmp_path / f"r{i}.nii.gz"
        write_image(Image(r, kind="label"), labels[f"r{i}"])
    case = Case("c", "c", img, labels=labels, label="r0")
    vol = read_volume(case, _cfg(soft_labels=True, label=["r0", "r1", "r2"]).data)
    assert vol.label.dtype == np.float32 and vol.label.shape == (1, 10, 12)
    np.testing.assert_allclose(vol.label[0], np.mean(raters, axis=0), atol=1e-7)
    two = load_config({"data": {"path": "x", "soft_labels": True, "label": ["r0", "r1"],
                                "classes": {"a": [1], "b": [2]}},
                       "model": {"final_activation": "sigmoid"}}).data
    assert read_volume(case, two).label.shape == (2, 10, 12)
    assert preprocess_settings(two)["label"] == ["r0", "r1"]
    with pytest.raises(InvalidArgumentError, match="data.label: a list of labels needs "
                                                   "data.soft_labels"):
        read_volume(case, _cfg(label=["r0", "r1"]).data)


@needs_shared("qubiq_brain_growth_7raters")
def test_qubiq_soft_label_equals_numpy_mean_of_7_raters(tmp_path):
    ds = open_dataset(shared("qubiq_brain_growth_7raters"))
    case = ds.cases[5]
    names = [f"rater{i}" for i in range(1, 8)]
    cfg = load_config({"data": {"path": str(ds.root), "soft_labels": True, "label": names},
                       "model": {"final_activation": "sigmoid"}}).data
    vol = read_volume(case, cfg)
    expected = np.mean([case.read_label(n).array > 0 for n in names], axis=0)
    np.testing.assert_allclose(vol.label[0], expected, atol=1e-6)
    assert 0 < np.count_nonzero((vol.label > 0) & (vol.label < 1))


# ----------------------------------------------------------------------------- preparing
def test_prepare_data_on_a_phantom_folder(tmp_path):
    root = _phantom_folder(tmp_path / "ds", n=8, subjects=4)
    cfg = load_config({"data": {"path": str(root), "classes": {"blob": [1, 2, 3],
                                                                "thin": [4]},
                                "split": {"by": "case", "test": 2, "val": 1}, "limit": 7},
                       "output": {"dir": str(tmp_path / "run")}})
    logs = []
    data = prepare_data(cfg, log=logs.append)
    assert (len(data.train), len(data.val), len(data.test)) == (4, 1, 2)
    assert data.in_channels == 1 and data.preprocess["in_channels"] == 1
    assert data.preprocess["classes"] == {"blob": [1, 2, 3], "thin": [4]}
    vol = data.train[0]
    assert vol.image.shape == (1, 48, 40) and set(np.unique(vol.label)) <= {0, 1, 2}
    ids = [v.id for part in (data.train, data.val, data.test) for v in part]
    assert sorted(ids) == [f"s{i // 2}_c{i}" for i in range(7)]  # limit: the first 7 by id
    assert "cache 0 hits, 7 read" in logs[0]


def _no_labels_error(tmp_path, **data) -> str:
    cfg = load_config({"data": data, "output": {"dir": str(tmp_path / "run")}})
    with pytest.raises(SegloopError) as err:
        prepare_data(cfg, log=lambda m: None)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_a_dataset_without_labels_says_which_is_missing_in_config_terms(tmp_path):
    root = _phantom_folder(tmp_path / "ds", n=2)
    assert _no_labels_error(tmp_path, path=str(root), label="mask") == (
        f"{root}: no labels found to train on: no case has a 'mask' label (data.label picks "
        "one of: label)")
    assert _no_labels_error(tmp_path, path=str(root), contrasts=["flair"]) == (
        f"{root}: no labels found to train on: no labelled case has the contrasts flair "
        "(data.contrasts; present: none)")
    shutil.rmtree(root / "labels")  # images only: no layout fits without data.layout
    message = _no_labels_error(tmp_path, path=str(root))
    assert message.startswith(f"{root}: no known dataset layout fits this folder (known: ")
    assert message.endswith("name one with data.layout; a labels/ folder beside images/?)")
    assert "--format" not in message
    assert _no_labels_error(tmp_path, path=str(root), layout="pairs") == (
        f"{root}: no labels found to train on: 2 cases (pairs layout), none with a label file")
    assert _no_labels_error(tmp_path, path=str(root), layout="pair").startswith(
        "data.layout: unknown layout 'pair'; known: ")


@needs_shared("lgg_flair")
def test_lgg_flair_channel_and_patient_split(tmp_path):
    cfg = load_config({"data": {"path": str(shared("lgg_flair")), "channels": [1],
                                "normalize": "none", "limit": 60,
                                "split": {"test": 1, "val": 1}},
                       "output": {"dir": str(tmp_path)}})
    data = prepare_data(cfg, log=lambda m: None)
    case = open_dataset(shared("lgg_flair")).cases[0]
    vol = next(v for v in data.train + data.val + data.test if v.id == case.id)
    np.testing.assert_array_equal(vol.image[0], case.read_image().array[..., 1])
    groups = [{v.group for v in part} for part in (data.train, data.val, data.test)]
    assert len(groups[2]) == 1 and not groups[0] & groups[2] and not groups[1] & groups[2]


@needs_shared("brats2013")
def test_brats_two_contrasts_and_whole_tumour(tmp_path):
    case = open_dataset(shared("brats2013")).cases[0]
    cfg = _cfg(contrasts=["flair", "t1c"], classes={"tumour": [1, 2, 3, 4]}).data
    vol = read_volume(case, cfg)
    assert vol.image.shape == (2, 155, 240, 240) and vol.slice_axis == 0
    truth = case.read_label().array
    assert int(vol.label.sum()) == int(np.count_nonzero(truth)) > 0
