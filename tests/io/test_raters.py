"""Raters of a case: BIDS rater folders and entities, the plain raters layout, real sets."""

from pathlib import Path

import numpy as np
import pytest

from conftest import needs_shared, shared
from segloop.errors import DatasetError, GeometryMismatchError
from segloop.io import Case, Image, rater_kinds, write_image
from segloop.io.bids import parse_bids_name
from segloop.io.dataset import open_dataset
from segloop.io.layouts import detect_layouts


def nii(path, value=0, shape=(2, 3, 4), kind="label"):
    dtype = np.uint8 if kind == "label" else np.int16
    write_image(Image(np.full(shape, value, dtype), kind=kind), path)


def png(path, array, kind="label"):
    write_image(Image(np.asarray(array, np.uint8), kind=kind), path)


def bids(tmp_path):
    (tmp_path / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.8.0"}')
    for sub, contrast in (("01", "T2w"), ("01", "T1w"), ("02", "T2w")):
        nii(tmp_path / f"sub-{sub}" / "anat" / f"sub-{sub}_{contrast}.nii.gz", kind="image")
    return tmp_path


def anat(root, folder, sub, name):
    return root / "derivatives" / folder / f"sub-{sub}" / "anat" / name


# ------------------------------------------------------------------------------------- BIDS
def test_parse_bids_name_keeps_the_rater_where_it_stands():
    # before the suffix it is an entity (so the raw key would not match the image) ...
    before = parse_bids_name("sub-01_rater-alice_T2w_seg-manual.nii.gz")
    assert before.entities == {"sub": "01", "rater": "alice"} and before.label == "seg-manual"
    # ... after it, part of the label: both are split off by the BIDS layout
    after = parse_bids_name("sub-01_T2w_rater-alice_seg-manual.nii.gz")
    assert after.entities == {"sub": "01"} and after.label == "rater-alice_seg-manual"


def test_bids_rater_folders_and_entities_every_position(tmp_path):
    root = bids(tmp_path)
    nii(anat(root, "labels", "01", "sub-01_T2w_seg-manual.nii.gz"), 1)  # no rater: plain
    nii(anat(root, "labels-alice", "01", "sub-01_T2w_seg-manual.nii.gz"), 2)
    nii(anat(root, "labels", "01", "sub-01_T2w_rater-bob_seg-manual.nii.gz"), 3)
    nii(anat(root, "labels", "01", "sub-01_rater-carol_T2w_seg-manual.nii.gz"), 4)
    nii(anat(root, "labels-dave", "01", "sub-01_T2w_seg-manual_rater-dave.nii.gz"), 5)
    nii(anat(root, "labels-alice", "01", "sub-01_T2w_lesion-manual.nii.gz"), 6)
    nii(anat(root, "labels-alice", "02", "sub-02_T2w_seg-manual.nii.gz"), 7)
    ds = open_dataset(root)
    assert (ds.layout, ds.label, ds.problems) == ("bids", "seg-manual", [])
    case = ds["sub-01_T2w"]
    assert sorted(case.labels) == [
        "lesion-manual_rater-alice",
        "seg-manual",
        "seg-manual_rater-alice",
        "seg-manual_rater-bob",
        "seg-manual_rater-carol",
        "seg-manual_rater-dave",
    ]
    assert case.raters == {
        "lesion-manual": {"alice": "lesion-manual_rater-alice"},
        "seg-manual": {r: f"seg-manual_rater-{r}" for r in ("alice", "bob", "carol", "dave")},
    }
    assert case.read_label().array.max() == 1  # the plain label stays the main label
    # two kinds: the default is the kind of the main label
    assert list(case.rater_labels()) == ["alice", "bob", "carol", "dave"]
    assert case.rater_labels("lesion-manual") == {"alice": "lesion-manual_rater-alice"}
    read = case.read_raters()
    assert {r: int(im.array.max()) for r, im in read.items()} == {
        "alice": 2,
        "bob": 3,
        "carol": 4,
        "dave": 5,
    }
    assert read["bob"].metadata["rater"] == "bob"
    assert read["bob"].metadata["rater_kind"] == "seg-manual"
    assert read["bob"].metadata["case"] == "sub-01_T2w"
    # different rater counts per image; an image without raters
    assert ds["sub-02_T2w"].raters == {"seg-manual": {"alice": "seg-manual_rater-alice"}}
    assert ds["sub-02_T2w"].label == "seg-manual" and not ds["sub-02_T2w"].has_label()
    assert ds["sub-01_T1w"].raters == {} and ds["sub-01_T1w"].read_raters() == {}
    assert rater_kinds(ds) == {
        "lesion-manual": ["alice"],
        "seg-manual": ["alice", "bob", "carol", "dave"],
    }
    assert case.to_dict()["raters"] == case.raters


def test_bids_rater_problems_duplicates_contradictions_orphans(tmp_path):
    root = bids(tmp_path)
    a = anat(root, "labels-alice", "01", "sub-01_T2w_seg-manual.nii.gz")
    b = anat(root, "labels", "01", "sub-01_T2w_rater-alice_seg-manual.nii.gz")
    nii(a, 2)
    nii(b, 3)
    nii(anat(root, "labels-alice", "01", "sub-01_T2w_rater-bob_seg-manual.nii.gz"))
    nii(anat(root, "labels", "01", "sub-01_rater-x_T2w_rater-y_seg-manual.nii.gz"))
    nii(anat(root, "labels", "01", "sub-01_T2w_rater-eve.nii.gz"))
    nii(anat(root, "labels-eve", "09", "sub-09_T2w_seg-manual.nii.gz"))
    (root / "derivatives" / "labels-not_ok").mkdir()
    ds = open_dataset(root)
    d = "derivatives"
    assert ds.problems == [
        f"{d}/labels-not_ok: not read: a rater id is letters and digits only",
        f"{d}/labels/sub-01/anat/sub-01_T2w_rater-eve.nii.gz: label without a label suffix "
        "(expected <image name>_<label>, e.g. _seg-manual)",
        f"{d}/labels/sub-01/anat/sub-01_rater-x_T2w_rater-y_seg-manual.nii.gz: not read: "
        "the rater is given 2 times (x, y)",
        f"{d}/labels-alice/sub-01/anat/sub-01_T2w_rater-bob_seg-manual.nii.gz: not read: "
        "its rater-bob entity contradicts its folder labels-alice",
        "duplicate labels for the same entities: "
        f"{d}/labels/sub-01/anat/sub-01_T2w_rater-alice_seg-manual.nii.gz, "
        f"{d}/labels-alice/sub-01/anat/sub-01_T2w_seg-manual.nii.gz "
        f"(using {d}/labels/sub-01/anat/sub-01_T2w_rater-alice_seg-manual.nii.gz)",
        f"{d}/labels-eve/sub-09/anat/sub-09_T2w_seg-manual.nii.gz: label without an image",
    ]
    case = ds["sub-01_T2w"]
    assert case.raters == {"seg-manual": {"alice": "seg-manual_rater-alice"}}
    assert case.labels == {"seg-manual_rater-alice": b}


def test_bids_png_rater_labels_are_thresholded(tmp_path):
    (tmp_path / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.8.0"}')
    png(tmp_path / "sub-r1" / "micr" / "sub-r1_SEM.png", [[10, 20, 30]], kind="image")
    labels = tmp_path / "derivatives" / "labels-ann" / "sub-r1" / "micr"
    png(labels / "sub-r1_SEM_seg-axon-manual.png", [[0, 255, 255]])
    png(labels / "sub-r1_SEM_rater-ann_seg-myelin-manual.png", [[255, 0, 0]])
    case = open_dataset(tmp_path).cases[0]
    assert case.raters == {
        "seg-axon-manual": {"ann": "seg-axon-manual_rater-ann"},
        "seg-myelin-manual": {"ann": "seg-myelin-manual_rater-ann"},
    }
    with pytest.raises(DatasetError, match="several kinds .seg-axon-manual, seg-myelin-manual"):
        case.rater_labels()
    axon = case.read_raters("seg-axon-manual")["ann"]
    assert axon.array.tolist() == [[0, 1, 1]]


# ------------------------------------------------------------------------------ plain folders
def test_plain_raters_layout(tmp_path):
    for name in ("a", "b", "c", "d"):
        png(tmp_path / "images" / f"{name}.png", [[1, 2, 3]], kind="image")
    png(tmp_path / "labels" / "r2" / "a.png", [[0, 255, 255]])
    png(tmp_path / "labels" / "r2" / "c.png", [[0, 0, 255]])
    png(tmp_path / "labels" / "r2" / "z.png", [[0, 0, 255]])  # no image z
    png(tmp_path / "labels" / "r1" / "a.png", [[255, 255, 0]])
    png(tmp_path / "labels" / "r1" / "b.png", [[0, 3, 3]])  # multi-class kept
    assert detect_layouts(tmp_path) == ["raters"]
    ds = open_dataset(tmp_path)
    assert (ds.layout, ds.label, [c.id for c in ds]) == ("raters", "r1", ["a", "b", "c", "d"])
    assert ds.problems == ["labels/r2/z.png: label of rater r2 without an image (no images/z.*)"]
    assert {c.id: c.raters for c in ds} == {
        "a": {"manual": {"r1": "r1", "r2": "r2"}},
        "b": {"manual": {"r1": "r1"}},
        "c": {"manual": {"r2": "r2"}},
        "d": {},
    }
    assert [c.id for c in ds.labelled()] == ["a", "b"]  # main label: the first rater
    read = ds["a"].read_raters()
    assert {r: im.array.tolist() for r, im in read.items()} == {
        "r1": [[1, 1, 0]],
        "r2": [[0, 1, 1]],
    }
    assert ds["b"].read_raters("manual")["r1"].array.tolist() == [[0, 3, 3]]
    assert rater_kinds(ds) == {"manual": ["r1", "r2"]}


def test_plain_raters_nested_images_and_loose_label_files(tmp_path):
    png(tmp_path / "images" / "site" / "a.png", [[1, 2]], kind="image")
    png(tmp_path / "labels" / "ann" / "site" / "a.png", [[0, 1]])
    png(tmp_path / "labels" / "loose.png", [[0, 1]])
    assert detect_layouts(tmp_path) == []  # nested images and a loose label: not detected
    ds = open_dataset(tmp_path, format="raters")
    assert [c.id for c in ds] == ["site/a"] and ds["site/a"].rater_labels() == {"ann": "ann"}
    assert ds.problems == [
        "labels/loose.png: label outside a rater folder (expected labels/<rater>/<name>)"
    ]


def test_pairs_folders_are_not_rater_folders(tmp_path):
    png(tmp_path / "images" / "a.png", [[1, 2]], kind="image")
    png(tmp_path / "labels" / "a.png", [[0, 1]])
    png(tmp_path / "labels" / "extra" / "a.png", [[0, 1]])
    assert detect_layouts(tmp_path) == ["pairs"]
    case = open_dataset(tmp_path).cases[0]
    assert case.raters == {} and case.rater_labels() == {}


# --------------------------------------------------------------------------------- real sets
@needs_shared("qubiq_brain_growth_7raters")
def test_qubiq_39_cases_of_7_raters():
    ds = open_dataset(shared("qubiq_brain_growth_7raters"))
    names = [f"rater{r}" for r in range(1, 8)]
    assert len(ds) == 39 and rater_kinds(ds) == {"manual": names}
    assert all(c.raters == {"manual": {n: n for n in names}} for c in ds)  # alpha is not one
    archive = np.load(ds.cases[0].image)
    masks = archive["masks"]
    assert masks.shape[:2] == (39, 7)
    for i in (0, 38):
        read = ds.cases[i].read_raters()
        assert list(read) == names
        for r, name in enumerate(names):
            assert read[name].shape == (128, 128)
            np.testing.assert_array_equal(read[name].array, masks[i, r])


@needs_shared("retina_drive_2raters")
def test_drive_20_cases_of_2_raters():
    ds = open_dataset(shared("retina_drive_2raters"))
    assert len(ds) == 20 and rater_kinds(ds) == {"manual": ["rater1", "rater2"]}
    assert all(c.rater_labels() == {"rater1": "rater1", "rater2": "rater2"} for c in ds)
    read = ds["01_test"].read_raters()
    assert {r: im.shape for r, im in read.items()} == {"rater1": (584, 565), "rater2": (584, 565)}
    assert (int(read["rater1"].array.sum()), int(read["rater2"].array.sum())) == (29440, 28848)


# ------------------------------------------------------------------------------------ errors
def two_raters(tmp_path, shape2=(2, 3)):
    png(tmp_path / "a.png", np.ones((2, 3)))
    png(tmp_path / "b.png", np.ones(shape2))
    return Case(
        "c7",
        "s",
        tmp_path / "img.png",
        labels={"a": tmp_path / "a.png", "b": tmp_path / "b.png", "x": tmp_path / "a.png"},
        label="x",
        raters={"manual": {"bob": "b", "al": "a"}, "auto": {"net": "x"}},
    )


def test_kind_errors_name_the_case_and_kinds(tmp_path):
    case = two_raters(tmp_path)
    assert case.rater_labels("manual") == {"al": "a", "bob": "b"}  # sorted by rater id
    assert case.rater_labels() == {"net": "x"}  # the main label x is a rater of "auto"
    with pytest.raises(DatasetError, match=r"case c7 has no raters of kind 'seg' \(kinds: auto, "):
        case.rater_labels("seg")
    with pytest.raises(DatasetError, match="case c7 has raters of several kinds"):
        Case("c7", "s", Path("i.png"), raters=case.raters).read_raters()


def test_raters_on_different_grids_are_an_error(tmp_path):
    case = two_raters(tmp_path, shape2=(3, 3))
    with pytest.raises(GeometryMismatchError, match=r"case c7: .* rater 'bob' \(b\) .* 'al'"):
        case.read_raters("manual")
    assert list(two_raters(tmp_path / "ok").read_raters("manual")) == ["al", "bob"]


def test_a_rater_label_missing_from_labels_is_an_error():
    case = Case("c8", "s", Path("i.png"), raters={"manual": {"r1": "r1"}})
    with pytest.raises(DatasetError, match="case c8 has no label 'r1'"):
        case.read_raters()
