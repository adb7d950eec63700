"""Layout detection and case building on every shared folder, plus synthetic replicas."""

import importlib.util
from collections import Counter

import numpy as np
import pytest
from PIL import Image as PILImage

from conftest import needs_shared, shared
from segloop.errors import InvalidArgumentError
from segloop.io import Image, read_image, write_image
from segloop.io.dataset import open_dataset
from segloop.io.layouts import LAYOUTS, detect_layouts, get_layout, layout_help

PAIR_SPECIALISATIONS = {"em_isbi2012", "nuclei_dsb2018_96", "polyps_kvasir"}

# folder -> (cases, subjects, cases with the main label, main label)
SHARED = {
    "acdc_h5": (40, 20, 40, "label"),
    "bids_ivadomed": (15, 6, 4, "seg-manual"),
    "brats2013": (4, 4, 4, "OTMultiClass"),
    "ct_slices_sammed2d": (5, 5, 4, "structures"),
    "cxr_lungs": (4, 4, 4, "mask"),
    "em_isbi2012": (20, 20, 20, "label"),
    "left_atrium_h5": (12, 12, 12, "label"),
    "lgg_flair": (116, 5, 116, "mask"),
    "nuclei_dsb2018": (39, 39, 39, "instances"),
    "nuclei_dsb2018_96": (670, 670, 670, "mask"),
    "polyps_kvasir": (5, 5, 5, "mask"),
    "qubiq_brain_growth_7raters": (39, 39, 39, "rater1"),
    "retina_drive_2raters": (20, 20, 20, "rater1"),
    "spinalcord_sct": (11, 1, 2, "seg-manual"),
    "totalseg_ct_silver": (2, 2, 2, "seg"),
}


def png(path, array, kind="label"):
    write_image(Image(np.asarray(array, np.uint8), kind=kind), path)


def nii(path, value=0, kind="image"):
    write_image(Image(np.full((2, 3, 4), value, np.uint8), kind=kind), path)


# ------------------------------------------------------------------------ shared folders
@pytest.mark.parametrize("folder", sorted(SHARED))
def test_each_shared_folder_is_detected_and_counted(folder):
    path = shared(folder)
    if not path.is_dir():
        pytest.skip(f"shared data not found: {path}")
    expected = "bids" if folder == "bids_ivadomed" else folder
    found = detect_layouts(path)
    specific = [name for name in found if name != "pairs"]
    assert specific == [expected]  # exactly one specific detector fires
    assert ("pairs" in found) == (expected in PAIR_SPECIALISATIONS)
    ds = open_dataset(path)
    cases, subjects, labelled, label = SHARED[folder]
    assert (ds.layout, len(ds), ds.label) == (expected, cases, label)
    assert len({c.subject for c in ds}) == subjects and len(ds.labelled()) == labelled
    assert ds.problems == []


def test_every_shared_layout_has_a_row():
    # "raters" (images/ + labels/<rater>/) has no shared folder: tests/io/test_raters.py
    assert set(LAYOUTS) == {"bids", "pairs", "raters"} | (set(SHARED) - {"bids_ivadomed"})


@needs_shared("acdc_h5")
def test_acdc_axes_zyx_no_spacing_multiclass():
    ds = open_dataset(shared("acdc_h5"))
    case = ds["patient001_frame01"]
    assert (case.subject, case.metadata) == (
        "patient001",
        {"frame": "01", "phase": "ED", "split": "test"},
    )
    image, label = case.read_image(), case.read_label()
    assert image.shape == label.shape == (10, 256, 216)
    assert image.metadata["spacing_known"] is False and label.label_values() == [0, 1, 2, 3]


@needs_shared("left_atrium_h5")
def test_left_atrium_axes_xyz_and_spacing():
    case = open_dataset(shared("left_atrium_h5"))["ULHWPWKKLTE921LQLH1P"]
    image, label = case.read_image(), case.read_label()
    assert image.shape == label.shape == (88, 140, 215)  # stored (215, 140, 88) as x, y, z
    assert image.spacing == label.spacing == (0.625, 0.625, 0.625)
    assert label.label_values() == [0, 1] and case.metadata["split"] == "test"


@needs_shared("brats2013")
def test_brats_multiclass_label_and_extra_modality():
    case = open_dataset(shared("brats2013"))["brats_2013_pat0003_1"]
    assert case.contrast == "flair" and list(case.extra_images) == ["t1c"]
    assert case.image.name.startswith("Flair")
    label = case.read_label()
    assert label.shape == (155, 240, 240) and label.label_values() == [0, 1, 2, 3, 4]


@needs_shared("lgg_flair")
def test_lgg_slices_subjects_and_thresholded_mask():
    ds = open_dataset(shared("lgg_flair"))
    assert Counter(c.subject for c in ds) == {
        "TCGA_FG_5964": 26,
        "TCGA_EZ_7264": 24,
        "TCGA_CS_4941": 23,
        "TCGA_DU_A5TU": 23,
        "TCGA_HT_7602": 20,
    }
    case = ds["TCGA_CS_4941_19960909_12"]
    assert (case.session, case.metadata["institution"], case.metadata["slice"]) == (
        "19960909",
        "CS",
        12,
    )
    assert case.metadata["Patient"] == "TCGA_CS_4941"  # the data.csv row
    image, mask = case.read_image(), case.read_label()
    assert image.shape == (256, 256) and image.n_channels == 3
    assert mask.label_values() == [0, 1] and int(mask.array.sum()) == 2646


@needs_shared("em_isbi2012")
def test_em_labels_become_binary():
    case = open_dataset(shared("em_isbi2012"))["7"]
    assert case.metadata == {"section": 7}
    assert case.read_label().label_values() == [0, 1]


@needs_shared("cxr_lungs")
def test_cxr_mask_beside_jpeg():
    case = open_dataset(shared("cxr_lungs"))["3"]
    assert case.image.name == "3.jpg" and case.labels["mask"].name == "3-mask.png"
    assert case.read_label().label_values() == [0, 1] and case.read_image().shape == (512, 512)


@needs_shared("ct_slices_sammed2d")
def test_ct_slices_structures_merge_components():
    ds = open_dataset(shared("ct_slices_sammed2d"))
    assert not ds["amos_0507_31"].labels
    case = ds["s0619_32"]
    assert sorted(case.labels) == [
        "colon",
        "femur_right",
        "gluteus_maximus_left",
        "gluteus_maximus_right",
        "hip_left",
        "hip_right",
        "structures",
    ]
    masks = shared("ct_slices_sammed2d", "data_demo", "masks")
    first = open_dataset(masks.parent)["s0619_32"]  # data_demo/ itself: same layout
    assert first.labels == case.labels
    hip = case.read_label("hip_left").array
    parts = [read_image(masks / f"s0619_32_hip_left_00{k}.png").array > 127 for k in (0, 1)]
    assert np.array_equal(hip, parts[0] | parts[1]) and int(hip.sum()) == 744  # both components
    classes = case.metadata["classes"]
    structures = case.read_label()
    assert structures.label_values() == [0] + sorted(
        classes[n] for n in case.labels if n != "structures"
    )
    assert np.array_equal(structures.array == classes["hip_left"], hip == 1)
    assert case.read_image().shape == (155, 225)  # gray saved as RGB -> one channel


@needs_shared("nuclei_dsb2018")
def test_nuclei_instances():
    ds = open_dataset(shared("nuclei_dsb2018"))
    assert sum(c.metadata["instances"] for c in ds) == 1238
    case = ds["06350c7cc618be442c15706db7a68e91f313758d224de4608f9b960106d4f9ca"]
    instances = case.read_label()
    n = len(list((case.image.parent.parent / "masks").glob("*.png")))
    assert instances.label_values() == list(range(n + 1))
    assert np.array_equal(case.read_label("nuclei").array, (instances.array > 0).astype(np.uint8))
    assert case.read_image().n_channels == 3  # alpha dropped


@needs_shared("nuclei_dsb2018_96")
def test_nuclei_96_masks_thresholded():
    case = open_dataset(shared("nuclei_dsb2018_96")).cases[0]
    assert case.read_label().label_values() == [0, 1] and case.read_image().shape == (96, 96)


@needs_shared("polyps_kvasir")
def test_kvasir_jpeg_masks():
    case = open_dataset(shared("polyps_kvasir"))["cju0qkwl35piu0993l0dewei2"]
    mask, image = case.read_label(), case.read_image()
    assert mask.shape == image.shape == (529, 622) and mask.label_values() == [0, 1]


@needs_shared("qubiq_brain_growth_7raters")
def test_qubiq_seven_raters_and_soft_alpha():
    ds = open_dataset(shared("qubiq_brain_growth_7raters"))
    case = ds["case01"]
    assert sorted(case.labels) == ["alpha"] + [f"rater{r}" for r in range(1, 8)]
    raters = [case.read_label(f"rater{r}").array for r in range(1, 8)]
    assert all(r.shape == (128, 128) and set(np.unique(r)) <= {0, 1} for r in raters)
    assert len({r.tobytes() for r in raters}) > 1  # independent raters differ
    alpha = case.read_label("alpha")
    assert alpha.kind == "soft" and 0.0 <= alpha.array.min() and alpha.array.max() <= 1.0
    assert case.read_image().shape == (128, 128)
    assert open_dataset(shared("qubiq_brain_growth_7raters"), label_suffix="rater7").label == (
        "rater7"
    )


@needs_shared("retina_drive_2raters")
def test_drive_two_raters_and_fov():
    case = open_dataset(shared("retina_drive_2raters"))["01_test"]
    assert set(case.labels) == {"rater1", "rater2", "fov"} and case.metadata["split"] == "test"
    r1, r2 = case.read_label("rater1"), case.read_label("rater2")
    assert r1.label_values() == r2.label_values() == [0, 1]  # 0/255 and palette 0/1
    assert (int(r1.array.sum()), int(r2.array.sum())) == (29440, 28848)


@needs_shared("retina_drive_2raters")
@pytest.mark.skipif(
    importlib.util.find_spec("imagecodecs") is None,
    reason="DRIVE images are LZW TIFF: tifffile needs imagecodecs",
)
def test_drive_image_reads():
    case = open_dataset(shared("retina_drive_2raters"))["01_test"]
    assert case.read_image().shape == (584, 565)


# Every NIfTI file of shared/data/spinalcord_sct and why it is what it is (values checked
# with nibabel; see PROVENANCE.md and the READMEs of t2/ and mt/):
SCT_CASES = {
    # dmri/: the 4D diffusion series (40x42x5x7, int16) and its mean (float64): images, no label
    "dmri": [],
    "dmri_dwi_mean": [],
    # mt/: MT-off / MT-on images (int16) and a dummy T1w (= mt0 / 1.5, float64)
    "mt0": ["seg"],  # mt0_seg: cord 0/1 (uint8)
    "mt1": [
        "gmseg",  # soft grey matter map, float32 in [0, 1.059]: kind soft, clipped
        "gmseg_goldstandard",  # float32 {0, 1}: mt1_gmseg_manual thresholded at 0.5 and
        # binarised (mt/README.md), a binary grey-matter label
        "seg",  # cord 0/1 (uint8)
        "wmseg",  # soft white matter map, float32 in [0, 1.108]: kind soft, clipped
    ],
    "mt_t1w": [],  # dummy T1w image, no label
    # t1/: T1w (int16) with the manual cord segmentation 0/1
    "t1w": ["seg-manual"],
    # t2/: the T2 image (int16, 60x55x52) and every file on its grid
    "t2": [
        "centerline-manual",  # 0/1 (uint8; the .csv beside is not an image)
        "centerline-optic",  # 0/1, automatic
        "labeled_center_manual",  # point labels of vertebral levels {3, 4, 5}
        "labels",  # labels.nii.gz: int16 point labels {3, 5} on the t2 grid, used by
        # sct_register_to_template -l (t2/README.md): a label of t2, not a problem
        "seg-deepseg_rootlets",  # automatic rootlets, levels 3-6
        "seg-deepseg_rootlets-manual",  # manual rootlets, levels 5-7
        "seg-deepseg_rootlets-manual_midpoints",  # one point per rootlet level
        "seg-deepseg_sc-2d",  # automatic cord 0/1
        "seg-deepseg_sc-3d",  # automatic cord 0/1
        "seg-manual",  # manual cord 0/1: the main label
        "seg-manual_labeled",  # cord by vertebral level, float64 {0, 2..5}
    ],
    "t2_contrast_1_mean_ref": [],  # float64 intensities up to 3.3e4: an image
    "t2_fake_lesion": ["lesion_seg", "sc_seg"],  # 99x99x29 image, synthetic lesion 0/1 + cord
    # t2s/: T2* (float32, 49x54x9) and its uncropped original (uint8, 320x320x11)
    "t2s": [
        "MNI-Poly-AMU_level_crop",  # float64 {0, 2..6} on the t2s grid: vertebral levels of
        # the MNI-Poly-AMU template cropped to t2s, a label (not an image case)
        "centerline-optic",  # 0/1
        "gmseg_manual",  # grey matter 0/1 (int16)
        "seg",  # cord 0/1 (uint8)
        "seg-deepseg",  # automatic cord 0/1 (int64)
    ],
    "t2s_uncropped": ["gmseg_manual"],  # grey matter 0/1 on the uncropped grid
}


@needs_shared("spinalcord_sct")
def test_spinalcord_contrast_folders():
    ds = open_dataset(shared("spinalcord_sct"))
    assert {c.id: sorted(c.labels) for c in ds} == SCT_CASES
    assert {c.id for c in ds.labelled()} == {"t1w", "t2"} and ds.problems == []
    assert ds["t2s"].contrast == "t2s" and ds["mt_t1w"].contrast == "mt"
    case = ds["t2"]
    assert case.read_label().shape == case.read_image().shape == (52, 55, 60)
    points = case.read_label("labels")
    assert points.kind == "label" and points.label_values() == [0, 3, 5]
    levels = ds["t2s"].read_label("MNI-Poly-AMU_level_crop")
    assert levels.label_values() == [0, 2, 3, 4, 5, 6] and levels.shape == (9, 54, 49)
    mt1 = ds["mt1"]
    for name, over in (("gmseg", 12), ("wmseg", 131)):
        soft = mt1.read_label(name)
        assert soft.kind == "soft" and soft.array.dtype == np.float32
        assert soft.array.min() == 0.0 and soft.array.max() == 1.0
        assert soft.metadata["clipped_voxels"] == over  # values above 1 in the file
    gold = mt1.read_label("gmseg_goldstandard")
    assert gold.kind == "label" and gold.label_values() == [0, 1]


@needs_shared("spinalcord_sct")
def test_spinalcord_check_reports_no_problem():
    ds = open_dataset(shared("spinalcord_sct"), check_geometry=True)
    assert ds.problems == []


def test_spinalcord_replica_loose_labels_and_soft_maps(tmp_path):
    for folder, stem in [
        ("t2", "t2"),
        ("t2", "t2_seg-manual"),
        ("t2", "labels"),
        ("t2", "t2_fake_lesion"),
        ("t2s", "t2s"),
        ("t2s", "MNI-Poly-AMU_level_crop"),
        ("dmri", "dwi_mean"),
        ("dmri", "sc_levels"),  # no dmri/dmri image: stays a problem
    ]:
        nii(tmp_path / folder / f"{stem}.nii.gz")
    soft = np.linspace(0, 1.1, 24, dtype=np.float32).reshape(2, 3, 4)
    write_image(Image(soft), tmp_path / "mt" / "mt1.nii.gz")
    write_image(Image(soft), tmp_path / "mt" / "mt1_gmseg.nii.gz")
    ds = open_dataset(tmp_path)
    assert ds.layout == "spinalcord_sct"
    assert {c.id: sorted(c.labels) for c in ds} == {
        "dmri_dwi_mean": [],
        "mt1": ["gmseg"],
        "t2": ["labels", "seg-manual"],
        "t2_fake_lesion": [],
        "t2s": ["MNI-Poly-AMU_level_crop"],
    }
    assert ds.problems == ["dmri/sc_levels.nii.gz: label-like file without a matching image"]
    gm = ds["mt1"].read_label("gmseg")
    assert gm.kind == "soft" and float(gm.array.max()) == 1.0
    np.testing.assert_allclose(gm.array, np.clip(soft, 0, 1))
    assert gm.metadata["clipped_voxels"] == int((soft > 1).sum()) > 0


@needs_shared("totalseg_ct_silver")
def test_totalseg_silver_multiclass():
    ds = open_dataset(shared("totalseg_ct_silver"))
    ct = ds["example_ct_sm"]
    assert sorted(ct.labels) == ["roi_subset", "seg"] and ct.metadata["silver"] is True
    assert ct.metadata["classes"]["1"] == "spleen" and ds["example_mr_sm"].contrast == "mr"
    seg = ct.read_label()
    assert seg.spacing == (3.0, 3.0, 3.0) and len(seg.label_values()) == 42
    assert ct.read_label("roi_subset").label_values() == [0, 5]


# ------------------------------------------------------------------------ synthetic replicas
def test_pairs_same_stem_other_extension_masks_folder_and_problems(tmp_path):
    (tmp_path / "images").mkdir()
    PILImage.fromarray(np.array([[1, 2]], np.uint8)).save(tmp_path / "images" / "1.jpg")
    for name in ("2.png", "3.png"):
        png(tmp_path / "images" / name, [[1, 2]], kind="image")
    png(tmp_path / "images" / "3.tif", [[1, 2]], kind="image")
    png(tmp_path / "masks" / "1.png", [[0, 255]])
    png(tmp_path / "masks" / "2.png", [[0, 3]])
    png(tmp_path / "masks" / "9.png", [[0, 3]])
    ds = open_dataset(tmp_path)
    assert (ds.layout, ds.label, [c.id for c in ds]) == ("pairs", "mask", ["1", "2", "3"])
    assert ds["1"].read_label().array.tolist() == [[0, 1]]
    assert ds["2"].read_label().array.tolist() == [[0, 3]]  # multi-class kept
    assert ds["3"].image.name == "3.png"
    assert ds.problems == [
        "duplicate files for '3': images/3.png, images/3.tif (using images/3.png)",
        "masks/9.png: mask without an image (no images/9.*)",
    ]


def test_pairs_in_subfolders(tmp_path):
    nii(tmp_path / "images" / "siteA" / "p1.nii.gz")
    nii(tmp_path / "labels" / "siteA" / "p1.nii.gz", kind="label", value=2)
    ds = open_dataset(tmp_path, format="pairs")
    assert [c.id for c in ds] == ["siteA/p1"] and ds.cases[0].read_label().label_values() == [2]


def test_brats_like_folder_with_split_folders(tmp_path):
    for split, case in (("train", "p1"), ("train", "p2"), ("test", "p3")):
        folder = tmp_path / split / case
        nii(folder / "Flair_x.nii.gz")
        nii(folder / "T2_x.nii.gz")
        nii(folder / "OTMultiClass.nii.gz", kind="label", value=4)
    ds = open_dataset(tmp_path)
    assert ds.layout == "brats2013" and [c.id for c in ds] == ["p3", "p1", "p2"]
    assert ds["p1"].metadata["split"] == "train" and list(ds["p1"].extra_images) == ["t2"]


def test_folder_of_several_datasets_is_not_one_of_them(tmp_path):
    nii(tmp_path / "brats" / "p1" / "OTMultiClass.nii.gz", kind="label")
    nii(tmp_path / "brats" / "p1" / "Flair.nii.gz")
    (tmp_path / "other" / "x").mkdir(parents=True)
    assert detect_layouts(tmp_path) == []
    assert detect_layouts(tmp_path / "brats") == ["brats2013"]


def test_lgg_and_acdc_replicas(tmp_path):
    lgg = tmp_path / "lgg" / "TCGA_AB_0001_20000101"
    png(lgg / "TCGA_AB_0001_20000101_1.tif", [[1, 2]], kind="image")
    png(lgg / "TCGA_AB_0001_20000101_1_mask.tif", [[0, 1]])  # 0/1: kept by "auto"
    png(lgg / "TCGA_AB_0001_20000101_2_mask.tif", [[0, 255]])
    ds = open_dataset(tmp_path / "lgg")
    assert (ds.layout, ds.cases[0].subject, ds.cases[0].metadata["institution"]) == (
        "lgg_flair",
        "TCGA_AB_0001",
        "AB",
    )
    assert ds.cases[0].read_label().array.tolist() == [[0, 1]]
    assert ds.problems == [
        "TCGA_AB_0001_20000101/TCGA_AB_0001_20000101_2_mask.tif: mask without an image"
    ]
    import h5py

    data = tmp_path / "acdc" / "data"
    data.mkdir(parents=True)
    with h5py.File(data / "patient101_frame03.h5", "w") as f:
        f["image"] = np.zeros((2, 3, 4), np.float32)
        f["label"] = np.ones((2, 3, 4), np.uint8)
    ds = open_dataset(tmp_path / "acdc")
    assert ds.layout == "acdc_h5" and ds.cases[0].metadata == {"frame": "03"}
    assert ds.cases[0].read_label().shape == (2, 3, 4)


def test_registry_helpers():
    assert get_layout("bids").name == "bids" and "polyps_kvasir" in layout_help()
    with pytest.raises(InvalidArgumentError, match="unknown dataset format"):
        get_layout("kvasir")
