"""The Case/Dataset model, how case files are read, and train/val/test splits."""

import random
from pathlib import Path

import numpy as np
import pytest

from segloop.errors import DatasetError, FileMissingError, InvalidArgumentError
from segloop.io import Image, write_image
from segloop.io.dataset import Case, open_dataset, split_cases, split_sizes
from segloop.io.dataset_sources import read_npz_member, read_source


def png(path, array, kind="label"):
    write_image(Image(np.asarray(array, np.uint8), kind=kind), path)
    return path


def cases_for(subjects, per_subject=1, **metadata_of):
    out = []
    for s in subjects:
        for k in range(per_subject):
            meta = {key: f(s) for key, f in metadata_of.items()}
            out.append(Case(f"{s}_{k}", s, Path(f"{s}_{k}.png"), metadata=meta))
    return out


# ---------------------------------------------------------------------------------- Case
def test_case_reads_labels_by_name_and_complains_about_missing(tmp_path):
    png(tmp_path / "img.png", [[5, 6]], kind="image")
    png(tmp_path / "a.png", [[0, 255]])
    png(tmp_path / "b.png", [[2, 0]])
    case = Case(
        "c",
        "s",
        tmp_path / "img.png",
        labels={"a": tmp_path / "a.png", "b": tmp_path / "b.png"},
        label="a",
        label_options={"a": {"threshold": "auto"}},
    )
    assert case.read_label().array.tolist() == [[0, 1]]
    assert case.read_label("b").array.tolist() == [[2, 0]]
    assert case.read_image().metadata["case"] == "c"
    assert case.has_label() and not case.has_label("zz")
    with pytest.raises(DatasetError, match="has no label 'zz'"):
        case.read_label("zz")
    with pytest.raises(DatasetError, match="has no image 't1c'"):
        case.read_image("t1c")
    assert hash(case) == hash("c") and case.to_dict()["labels"]["b"].endswith("b.png")


def test_threshold_of_colour_and_float_masks(tmp_path):
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (200, 140, 130)  # mean 156.7 > 127
    rgb[0, 1] = (200, 90, 60)  # mean 116.7
    write_image(Image(rgb, channels=True), tmp_path / "m.png")
    assert read_source(tmp_path / "m.png", {"threshold": 127}).array.tolist() == [[1, 0], [0, 0]]
    write_image(Image(np.array([[0.0, 0.99999997]])), tmp_path / "f.nii.gz")
    out = read_source(tmp_path / "f.nii.gz", {"threshold": 0.5}, kind="label")
    assert out.kind == "label" and out.array.tolist() == [[0, 1]]


def test_parts_make_instance_maps_and_unions(tmp_path):
    a = png(tmp_path / "a.png", [[255, 255, 0], [0, 0, 0]])
    b = png(tmp_path / "b.png", [[0, 1, 1], [0, 0, 0]])  # a 0/1 mask, overlapping a
    inst = read_source(tmp_path, {"parts": ((a, 1), (b, 2))}, kind="label")
    assert inst.array.tolist() == [[1, 2, 2], [0, 0, 0]]
    assert inst.metadata["overlap_pixels"] == 1 and inst.metadata["parts"] == 2
    union = read_source(tmp_path, {"parts": ((a, 1), (b, 1))}, kind="label")
    assert union.array.tolist() == [[1, 1, 1], [0, 0, 0]]


def test_rgb_gray_and_inherited_pixel_size(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 3] = 255
    write_image(Image(rgba, channels=True), tmp_path / "x.png")
    assert read_source(tmp_path / "x.png", {"rgb": True}).n_channels == 3
    gray = np.repeat(np.arange(6, dtype=np.uint8).reshape(2, 3, 1), 3, axis=2)
    write_image(Image(gray, channels=True), tmp_path / "g.png")
    out = read_source(tmp_path / "g.png", {"gray": True, "pixel_size_xyz": (0.5, 0.25)})
    assert not out.channels and out.array.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert out.spacing == (0.25, 0.5) and out.metadata["spacing_source"] == "inherited sidecar"


def test_npz_members(tmp_path):
    masks = np.zeros((2, 3, 4, 4), np.uint8)
    masks[1, 2, 0, 0] = 1
    np.savez_compressed(tmp_path / "r.npz", masks=masks, alpha=np.full((2, 4, 4), 255, np.uint8))
    lab = read_npz_member(tmp_path / "r.npz", "masks", (1, 2), kind="label")
    assert lab.array[0, 0] == 1 and lab.array.sum() == 1 and lab.metadata["index"] == [1, 2]
    lab.array[0, 0] = 0  # a copy: the cached archive is not changed
    assert read_npz_member(tmp_path / "r.npz", "masks", (1, 2)).array[0, 0] == 1
    soft = read_source(tmp_path / "r.npz", {"npz": ("alpha", 0), "kind": "soft", "scale": 1 / 255})
    assert soft.kind == "soft" and float(soft.array.max()) == pytest.approx(1.0)
    with pytest.raises(Exception, match="no array 'image'"):
        read_npz_member(tmp_path / "r.npz", "image", (0,))
    with pytest.raises(Exception, match="out of range"):
        read_npz_member(tmp_path / "r.npz", "masks", (5, 0))


# ------------------------------------------------------------------------------- Dataset
def test_open_dataset_summary_and_errors(tmp_path):
    for i in range(4):
        png(tmp_path / "images" / f"c{i}.png", [[i, 0]], kind="image")
    for i in range(3):
        png(tmp_path / "labels" / f"c{i}.png", [[0, 255]])
    png(tmp_path / "labels" / "orphan.png", [[0, 255]])
    ds = open_dataset(tmp_path)
    s = ds.summary()
    assert (s["layout"], s["cases"], s["label"]) == ("pairs", 4, "label")
    assert s["labels"] == {"label": {"labelled": 3, "unlabelled": 1}}
    assert (s["labelled"], s["unlabelled"]) == (3, 1)
    assert s["problems"] == ["labels/orphan.png: label without an image (no images/orphan.*)"]
    assert ds["c2"].read_label().label_values() == [0, 1] and ds[0].id == "c0"
    with pytest.raises(KeyError):
        ds["nope"]
    missing = open_dataset(tmp_path, label_suffix="seg").problems[-1]
    assert missing == "no case has a 'seg' label (labels found: label)"


def test_empty_files_are_problems_found_without_reading(tmp_path):
    # nuclei_dsb2018 layout: one mask file per nucleus, read as parts of one label
    case = tmp_path / "abc"
    png(case / "images" / "abc.png", [[1, 2]], kind="image")
    png(case / "masks" / "m1.png", [[0, 255]])
    (case / "masks" / "m2.png").write_bytes(b"")
    # brats2013 layout: an extra modality of 0 bytes
    brats = tmp_path / "brats"
    write_image(Image(np.zeros((2, 2, 2), np.int16)), brats / "p1" / "Flair.nii.gz")
    write_image(
        Image(np.zeros((2, 2, 2), np.uint8), kind="label"), brats / "p1" / "OTMultiClass.nii.gz"
    )
    (brats / "p1" / "T1c.nii.gz").write_bytes(b"")
    assert open_dataset(tmp_path, format="nuclei_dsb2018").problems == [
        "abc/masks/m2.png: empty label file (0 bytes) of case abc"
    ]
    assert open_dataset(brats).problems == ["p1/T1c.nii.gz: empty image file (0 bytes) of case p1"]


def test_open_dataset_argument_errors(tmp_path):
    with pytest.raises(FileMissingError):
        open_dataset(tmp_path / "absent")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        open_dataset(tmp_path / "f.txt")
    with pytest.raises(DatasetError, match=r"no known dataset layout .*bids, brats2013"):
        open_dataset(tmp_path)
    with pytest.raises(InvalidArgumentError, match="unknown dataset format 'nifti'; known: bids"):
        open_dataset(tmp_path, format="nifti")
    with pytest.raises(DatasetError, match="the bids layout finds no image"):
        open_dataset(tmp_path, format="bids")


# -------------------------------------------------------------------------------- splitting
def test_split_sizes_rounding():
    assert split_sizes(10, [0.6, 0.2, 0.2]) == [6, 2, 2]
    assert split_sizes(7, [0.6, 0.2, 0.2]) == [4, 2, 1]  # remainders 0.2, 0.4, 0.4: val first
    assert split_sizes(4, [0.6, 0.2, 0.2]) == [2, 1, 1]
    assert split_sizes(3, [0.8, 0.1, 0.1]) == [1, 1, 1]  # no split left empty
    assert split_sizes(2, [0.6, 0.2, 0.2]) == [1, 1, 0]  # not enough groups
    assert split_sizes(5, [1.0, 0.0]) == [5, 0]  # a zero fraction stays empty


def test_split_by_subject_is_grouped_sized_and_deterministic():
    cases = cases_for([f"s{i:02d}" for i in range(10)], per_subject=3)
    parts = split_cases(cases, seed=3)
    assert [len(v) for v in parts.values()] == [18, 6, 6]
    subjects = [{c.subject for c in v} for v in parts.values()]
    assert sum(map(len, subjects)) == len(set.union(*subjects)) == 10  # no subject in two
    ids = [c.id for v in parts.values() for c in v]
    assert sorted(ids) == sorted(c.id for c in cases)  # each case exactly once
    shuffled = cases[:]
    random.Random(1).shuffle(shuffled)
    assert split_cases(shuffled, seed=3) == parts  # file-system order does not matter
    others = [split_cases(cases, seed=s)["test"] for s in range(6)]
    assert any(o != others[0] for o in others[1:])
    assert parts["train"] == sorted(parts["train"], key=lambda c: c.id)


def test_split_by_metadata_column():
    centres = {"s0": "A", "s1": "A", "s2": "B", "s3": "C", "s4": "D", "s5": "D"}
    cases = cases_for(list(centres), per_subject=2, centre=centres.get)
    parts = split_cases(cases, by="centre", fractions={"train": 0.5, "test": 0.5}, seed=0)
    got = [{c.metadata["centre"] for c in v} for v in parts.values()]
    assert [len(g) for g in got] == [2, 2] and not got[0] & got[1]
    by_id = split_cases(cases, by="id", fractions=(0.5, 0.5))
    assert [len(v) for v in by_id.values()] == [6, 6]


def test_split_errors():
    cases = cases_for(["a", "b", "c"], centre={"a": "X", "b": None, "c": "Y"}.get)
    with pytest.raises(InvalidArgumentError, match=r"cannot split by 'centre': 1 case\(s\).*b_0"):
        split_cases(cases, by="centre")
    with pytest.raises(InvalidArgumentError, match="no 'site' value: a_0, b_0, c_0"):
        split_cases(cases, by="site")
    with pytest.raises(InvalidArgumentError, match="add up to 1"):
        split_cases(cases, fractions=(0.5, 0.2, 0.2))
    with pytest.raises(InvalidArgumentError, match="2 .* or 3"):
        split_cases(cases, fractions=(0.25,) * 4)
    with pytest.raises(InvalidArgumentError, match=">= 0"):
        split_cases(cases, fractions={"a": 1.5, "b": -0.5})
