"""BIDS discovery: file names, labels, sidecar inheritance, tables, nested datasets."""

import json
from collections import Counter

import numpy as np
import pytest

from conftest import needs_shared, shared
from segloop.errors import DatasetError, InvalidArgumentError
from segloop.io import Image, write_image
from segloop.io.bids import parse_bids_name, read_tsv
from segloop.io.dataset import open_dataset, split_cases


def nii(path, shape=(2, 3, 4), spacing=(1.0, 1.0, 1.0), value=0, kind="image"):
    array = np.full(shape, value, np.uint8 if kind == "label" else np.int16)
    write_image(Image(array, spacing=spacing, kind=kind), path)
    return path


def bids_root(tmp_path, participants="participant_id\tage\nsub-01\t31\n"):
    (tmp_path / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.8.0"}')
    if participants is not None:
        (tmp_path / "participants.tsv").write_text(participants)
    return tmp_path


# ------------------------------------------------------------------------------- file names
def test_parse_name_entities_suffix_label_extension():
    n = parse_bids_name("sub-rat3_ses-02_sample-data11_run-1_SEM_seg-axon-manual.png")
    assert n.entities == {"sub": "rat3", "ses": "02", "sample": "data11", "run": "1"}
    assert (n.suffix, n.label, n.extension) == ("SEM", "seg-axon-manual", ".png")
    assert parse_bids_name("sub-01_BF.ome.tif").extension == ".ome.tif"
    assert parse_bids_name("sub-01_T1w.nii.gz").key == (("sub", "01"), "T1w")


@pytest.mark.parametrize(
    "name, why",
    [
        ("T1w.nii.gz", "sub-"),
        ("sub-01_acq-a-b_T1w.nii.gz", "not a key-value"),
        ("sub-01_acq-x_acq-y_T1w.nii.gz", "twice"),
        ("sub-01.nii.gz", "no suffix"),
        ("sub-01_T1w__seg.nii.gz", "empty part"),
    ],
)
def test_parse_name_rejects_malformed(name, why):
    with pytest.raises(InvalidArgumentError, match=why):
        parse_bids_name(name)


# ------------------------------------------------------------------------------- the real set
@needs_shared("bids_ivadomed")
def test_ivadomed_subjects_contrasts_and_nested_datasets():
    ds = open_dataset(shared("bids_ivadomed"))
    assert ds.layout == "bids" and ds.label == "seg-manual"
    assert ds.parts == [".", "ct_scan", "microscopy_png"]
    assert {c.subject for c in ds} == {"unf01", "unf02", "unf03", "spleen2", "rat2", "rat3"}
    assert Counter(c.contrast for c in ds) == {"T1w": 3, "T2w": 3, "T2star": 3, "ct": 1, "SEM": 5}
    by_dataset = Counter(c.metadata["dataset"] for c in ds)
    assert by_dataset == {".": 9, "ct_scan": 1, "microscopy_png": 5}
    assert ds.problems == []


@needs_shared("bids_ivadomed")
def test_ivadomed_label_suffixes():
    ds = open_dataset(shared("bids_ivadomed"))
    assert {c.id for c in ds.labelled()} == {
        "sub-unf01_T1w",
        "sub-unf01_T2w",
        "sub-unf01_T2star",
        "sub-spleen2_ct",
    }
    assert {c.id for c in ds.labelled("labels-disc-manual")} == {
        "sub-unf01_T2w",
        "sub-unf02_T1w",
        "sub-unf02_T2w",
        "sub-unf03_T1w",
        "sub-unf03_T2w",
    }
    sem = [c for c in ds if c.contrast == "SEM"]
    assert all(set(c.labels) == {"seg-axon-manual", "seg-myelin-manual"} for c in sem)
    summary = ds.summary()
    assert summary["labels"]["seg-manual"] == {"labelled": 4, "unlabelled": 11}
    assert summary["labels"]["lesion-manual"] == {"labelled": 3, "unlabelled": 12}
    assert list(summary["labels"])[0] == "seg-manual"


@needs_shared("bids_ivadomed")
def test_ivadomed_metadata_tables_and_sidecars():
    ds = open_dataset(shared("bids_ivadomed"))
    unf01, unf02 = ds["sub-unf01_T2w"].metadata, ds["sub-unf02_T2w"].metadata
    assert unf01["participant_id"] == "sub-unf01" and unf01["institution_id"] == "unknown"
    assert {"sex", "age", "pathology", "date_of_scan"} <= set(unf01)
    assert unf01["AcquisitionTime"] == "12:39:2.805000"  # from sub-unf01_T2w.json
    assert unf02["AcquisitionTime"] == "13:19:4.995000"
    assert unf01["SliceThickness"] == 0.8 and unf01["ProtocolName"] == "T2w"
    assert ds["sub-spleen2_ct"].metadata["participant_id"] == "sub-spleen2"
    run2 = ds["sub-rat3_ses-02_sample-data11_run-2_SEM"]
    assert run2.session == "02" and run2.metadata["species"] == "rattus norvegicus"
    assert run2.metadata["test_samples"] == "test-data11"  # samples.tsv
    assert run2.metadata["test_sessions"] == "test-ses-02"  # sessions.tsv
    assert run2.metadata["test_scans"] == "test-run-2"  # scans.tsv
    assert run2.metadata["PixelSize"] == [0.1, 0.1]  # inherited sidecar_sample-data11_SEM.json
    assert ds["sub-rat3_ses-01_sample-data9_SEM"].metadata["acq_time"] == "2000-01-01T13:45:30"


@needs_shared("bids_ivadomed")
def test_ivadomed_reads_with_pixel_size_and_thresholded_sem_masks():
    ds = open_dataset(shared("bids_ivadomed"))
    data9 = ds["sub-rat3_ses-01_sample-data9_SEM"].read_image()
    assert data9.shape == (756, 764) and data9.spacing == (0.0002, 0.0001)  # [0.1, 0.2] um
    run1 = ds["sub-rat3_ses-02_sample-data11_run-1_SEM"]
    image, axon = run1.read_image(), run1.read_label("seg-axon-manual")
    assert image.spacing == axon.spacing == (0.0001, 0.0001)  # no sidecar of its own
    stray = ds["sub-rat3_ses-02_sample-data10_SEM"].read_label("seg-myelin-manual")
    assert stray.label_values() == [0, 1]  # {0, 218, 255} thresholded > 127
    seg = ds["sub-unf01_T2w"].read_label()
    assert seg.shape == (16, 141, 131) and seg.label_values() == [0, 1]


@needs_shared("bids_ivadomed")
def test_ivadomed_geometry_check_finds_the_lesion_labels_off_grid():
    ds = open_dataset(shared("bids_ivadomed"), check_geometry=True)
    assert len(ds.problems) == 3
    # the lesion labels' sform is slightly off the image's: which attribute is reported
    # first (spacing or orientation) depends on which transform the NIfTI reader uses
    assert all(
        "label 'lesion-manual' does not match the image grid: " in p
        and ("spacing" in p or "orientation" in p)
        for p in ds.problems
    )


# ------------------------------------------------------------------------------ synthetic trees
def test_label_without_image_and_unlabelled_image(tmp_path):
    root = bids_root(tmp_path)
    nii(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    nii(root / "sub-01" / "anat" / "sub-01_T2w.nii.gz")
    labels = root / "derivatives" / "labels" / "sub-01" / "anat"
    nii(labels / "sub-01_T1w_seg-manual.nii.gz", kind="label")
    nii(labels / "sub-01_FLAIR_seg-manual.nii.gz", kind="label")
    ds = open_dataset(root)
    assert [c.id for c in ds] == ["sub-01_T1w", "sub-01_T2w"]
    assert [c.has_label() for c in ds] == [True, False]
    assert ds.problems == [
        "derivatives/labels/sub-01/anat/sub-01_FLAIR_seg-manual.nii.gz: label without an image"
    ]


def test_duplicate_nii_and_nii_gz(tmp_path):
    root = bids_root(tmp_path)
    nii(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    nii(root / "sub-01" / "anat" / "sub-01_T1w.nii")
    ds = open_dataset(root)
    assert len(ds) == 1 and ds.cases[0].image.name == "sub-01_T1w.nii.gz"
    assert ds.cases[0].id == "sub-01_T1w"
    assert len(ds.problems) == 1 and ds.problems[0].startswith("duplicate images")
    assert ds.problems[0].endswith(
        "sub-01_T1w.nii.gz, sub-01/anat/sub-01_T1w.nii (using sub-01/anat/sub-01_T1w.nii.gz)"
    )


def test_sessions_and_labels_per_session(tmp_path):
    root = bids_root(tmp_path)
    for ses in ("01", "02"):
        nii(root / "sub-01" / f"ses-{ses}" / "anat" / f"sub-01_ses-{ses}_T1w.nii.gz")
    (root / "sub-01" / "sub-01_sessions.tsv").write_text("session_id\tscanner\nses-02\tB\n")
    lab = root / "derivatives" / "labels" / "sub-01" / "ses-02" / "anat"
    nii(lab / "sub-01_ses-02_T1w_seg-manual.nii.gz", kind="label")
    ds = open_dataset(root)
    assert [(c.id, c.session, c.has_label()) for c in ds] == [
        ("sub-01_ses-01_T1w", "01", False),
        ("sub-01_ses-02_T1w", "02", True),
    ]
    assert ds["sub-01_ses-02_T1w"].metadata["scanner"] == "B"
    assert "scanner" not in ds["sub-01_ses-01_T1w"].metadata
    assert ds.summary()["sessions"] == ["01", "02"]


def test_sidecar_inheritance(tmp_path):
    root = bids_root(tmp_path)
    (root / "T1w.json").write_text(json.dumps({"EchoTime": 1, "Manufacturer": "A", "TR": 2}))
    (root / "acq-fast_T1w.json").write_text(json.dumps({"Fast": True}))
    anat = root / "sub-01" / "ses-01" / "anat"
    nii(anat / "sub-01_ses-01_T1w.nii.gz")
    nii(anat / "sub-01_ses-01_acq-fast_T1w.nii.gz")
    (root / "sub-01" / "sub-01_T1w.json").write_text(json.dumps({"EchoTime": 3}))
    (anat / "sub-01_ses-01_T1w.json").write_text(json.dumps({"TR": 5}))
    ds = open_dataset(root)
    plain, fast = ds["sub-01_ses-01_T1w"].metadata, ds["sub-01_ses-01_acq-fast_T1w"].metadata
    assert (plain["EchoTime"], plain["Manufacturer"], plain["TR"]) == (3, "A", 5)
    assert "Fast" not in plain
    # the datatype-level sidecar has entities {sub, ses}: a subset of the acq-fast image's too
    assert (fast["EchoTime"], fast["TR"], fast["Fast"]) == (3, 5, True)
    assert fast["entities"] == {"ses": "01", "acq": "fast"}


def test_unreadable_sidecar_and_unlisted_subject_are_problems(tmp_path):
    root = bids_root(tmp_path)
    nii(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    nii(root / "sub-02" / "anat" / "sub-02_T1w.nii.gz")
    (root / "sub-02" / "anat" / "sub-02_T1w.json").write_text("{not json")
    (root / "sub-02" / "anat" / "sub-02_acq-a-b_T1w.nii.gz").write_bytes(b"x")
    ds = open_dataset(root)
    assert len(ds) == 2
    problems = "\n".join(ds.problems)
    assert "sub-02: not listed in participants.tsv" in problems
    assert "sub-02/anat/sub-02_T1w.json: unreadable sidecar JSON" in problems
    assert "sub-02_acq-a-b_T1w.nii.gz: unparsable BIDS name" in problems
    assert len(ds.problems) == 3


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "dataset_description.json: empty file (0 bytes)"),
        ("{oops", "dataset_description.json: not valid JSON (Expecting property name"),
        ('["Name"]', "dataset_description.json: not a JSON object (a list at the top level)"),
    ],
)
def test_invalid_dataset_description_is_a_problem(tmp_path, text, problem):
    root = bids_root(tmp_path)
    nii(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    nii(root / "ct" / "sub-02" / "anat" / "sub-02_T1w.nii.gz")
    (root / "dataset_description.json").write_text(text)
    (root / "ct" / "dataset_description.json").write_text(text)
    ds = open_dataset(root)
    assert len(ds) == 2 and len(ds.problems) == 2
    assert ds.problems[0].startswith(problem) and ds.problems[1].startswith(f"ct/{problem}")


def test_label_grid_mismatch_needs_check_geometry(tmp_path):
    root = bids_root(tmp_path)
    nii(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz", shape=(2, 3, 4))
    labels = root / "derivatives" / "labels" / "sub-01" / "anat"
    nii(labels / "sub-01_T1w_seg-manual.nii.gz", shape=(2, 3, 5), kind="label")
    assert open_dataset(root).problems == []
    ds = open_dataset(root, check_geometry=True)
    assert ds.problems == [
        "sub-01_T1w: label 'seg-manual' does not match the image grid: shape (2, 3, 4) vs (2, 3, 5)"
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("participant_id\tage\nsub-01\t31\nsub-02\n", "line 3 has 1 fields, the header has 2"),
        ("participant_id,age\nsub-01,31\n", "no participant_id column"),
        ("participant_id\nsub-01\nsub-01\n", "line 3 repeats 'sub-01'"),
        ("\n\n", "empty"),
    ],
)
def test_malformed_participants_tsv_is_an_error(tmp_path, text, message):
    root = bids_root(tmp_path, participants=text)
    nii(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    with pytest.raises(DatasetError, match=message) as info:
        open_dataset(root)
    assert info.value.path.endswith("participants.tsv")


def test_read_tsv_values_and_keys(tmp_path):
    p = tmp_path / "samples.tsv"
    p.write_text("sample_id\tparticipant_id\tweight\tcode\nsample-A\tsub-01\t2.5\t007\n")
    rows = read_tsv(p, key=("sample_id", "participant_id"))
    assert rows[("sample-A", "sub-01")]["weight"] == 2.5
    assert rows[("sample-A", "sub-01")]["code"] == "007"  # leading zeros kept


def test_empty_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(DatasetError, match="empty") as info:
        open_dataset(tmp_path)
    assert info.value.path == str(tmp_path)


def test_nested_dataset_keeps_subjects_apart(tmp_path):
    root = bids_root(tmp_path)
    nii(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    nested = root / "ct_part"
    (nested / "sub-01" / "ct").mkdir(parents=True)
    (nested / "dataset_description.json").write_text('{"Name": "ct"}')
    nii(nested / "sub-01" / "ct" / "sub-01_ct.nii.gz")
    nii(nested / "sub-01" / "anat" / "sub-01_T1w.nii.gz")  # same file name as in the root
    nii(
        nested / "derivatives" / "labels" / "sub-01" / "ct" / "sub-01_ct_seg-manual.nii.gz",
        kind="label",
    )
    ds = open_dataset(root)
    assert ds.parts == [".", "ct_part"]
    assert [c.id for c in ds] == ["sub-01_T1w", "ct_part/sub-01_T1w", "sub-01_ct"]
    assert [c.id for c in ds.labelled()] == ["sub-01_ct"]
    parts = split_cases(ds.cases, fractions={"a": 0.5, "b": 0.5})
    # subject 01 of the root and subject 01 of ct_part are two groups
    assert sorted(len(v) for v in parts.values()) == [1, 2]


def test_png_labels_in_bids_are_thresholded_and_multiclass_kept(tmp_path):
    root = bids_root(tmp_path, participants=None)
    micr = root / "sub-01" / "micr"
    micr.mkdir(parents=True)
    write_image(Image(np.zeros((2, 3), np.uint8)), micr / "sub-01_sample-A_SEM.png")
    (micr / "sub-01_sample-A_SEM.json").write_text(
        '{"PixelSize": [0.5, 0.25], "PixelSizeUnits": "um"}'
    )
    lab = root / "derivatives" / "labels" / "sub-01" / "micr"
    lab.mkdir(parents=True)
    mask = np.array([[0, 255, 130], [233, 0, 0]], np.uint8)
    write_image(Image(mask, kind="label"), lab / "sub-01_sample-A_SEM_seg-axon-manual.png")
    classes = np.array([[0, 1, 2], [3, 0, 0]], np.uint8)
    write_image(Image(classes, kind="label"), lab / "sub-01_sample-A_SEM_seg-manual.png")
    case = open_dataset(root)["sub-01_sample-A_SEM"]
    assert case.read_label("seg-axon-manual").array.tolist() == [[0, 1, 1], [1, 0, 0]]
    assert case.read_label().array.tolist() == classes.tolist()
    assert case.read_label().spacing == (0.00025, 0.0005)  # the image's pixel size
