"""Round trips through every writable format, and the real files in ../shared/data."""

import json

import numpy as np
import pytest

from conftest import needs_shared, shared
from segloop.errors import OutputExistsError, UnsupportedFormatError
from segloop.io import Image, check_same_grid, read_image, read_labelled, write_image
from segloop.io.image import default_direction


def _oblique_volume(kind="image"):
    rng = np.random.default_rng(0)
    theta = np.deg2rad(15)
    rot = np.array([[np.cos(theta), 0, np.sin(theta)], [0, 1, 0],
                    [-np.sin(theta), 0, np.cos(theta)]])
    if kind == "label":
        arr = rng.integers(0, 4, size=(4, 5, 6)).astype(np.uint8)
    else:
        arr = rng.normal(size=(4, 5, 6)).astype(np.float32)
    return Image(arr, spacing=(3.0, 0.8, 0.6), origin=(-10.5, 20.25, 7.0),
                 direction=rot @ default_direction(3), kind=kind)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha", ".mhd", ".mgz"])
@pytest.mark.parametrize("kind", ["image", "label"])
def test_volume_round_trip_keeps_geometry(tmp_path, suffix, kind):
    img = _oblique_volume(kind)
    path = tmp_path / f"vol{suffix}"
    write_image(img, path)
    back = read_image(path, kind=kind)
    np.testing.assert_array_equal(back.array, img.array)
    assert back.spacing == pytest.approx(img.spacing, abs=1e-5)
    np.testing.assert_allclose(back.origin, img.origin, atol=1e-4)
    np.testing.assert_allclose(back.direction, img.direction, atol=1e-5)
    check_same_grid(back, img)
    if kind == "label":
        assert np.issubdtype(back.array.dtype, np.integer)


def test_mhd_writes_header_and_data_side_by_side(tmp_path):
    write_image(_oblique_volume(), tmp_path / "v.mhd")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == "v.mhd" and names[1].startswith("v.") and len(names) == 2
    assert "ElementDataFile = v." in (tmp_path / "v.mhd").read_text()


def test_hdf5_round_trip_and_axes(tmp_path):
    img = _oblique_volume("label")
    img = Image(img.array, spacing=img.spacing, kind="label")  # HDF5 keeps spacing only
    write_image(img, tmp_path / "v.h5")
    back = read_image(tmp_path / "v.h5")
    assert back.kind == "label" and back.spacing == img.spacing
    np.testing.assert_array_equal(back.array, img.array)
    import h5py

    with h5py.File(tmp_path / "xyz.h5", "w") as f:
        f["image"] = np.transpose(img.array, (2, 1, 0)).astype(np.float32)
    xyz = read_image(tmp_path / "xyz.h5", axes="xyz", spacing=(0.625,) * 3)
    np.testing.assert_array_equal(xyz.array, img.array)
    assert xyz.spacing == (0.625, 0.625, 0.625)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_round_trip_gray_8_and_16_bit(tmp_path, dtype):
    arr = (np.arange(60).reshape(6, 10) * (1000 if dtype == np.uint16 else 4)).astype(dtype)
    write_image(Image(arr, kind="label"), tmp_path / "m.png")
    back = read_image(tmp_path / "m.png", kind="label")
    np.testing.assert_array_equal(back.array, arr)
    assert back.metadata["bits"] == np.dtype(dtype).itemsize * 8


def test_png_spacing_travels_in_a_bids_sidecar(tmp_path):
    img = Image(np.zeros((4, 6), np.uint8), spacing=(0.0002, 0.0001))  # 0.2 um x 0.1 um
    write_image(img, tmp_path / "sub-01_sample-a_SEM.png")
    sidecar = json.loads((tmp_path / "sub-01_sample-a_SEM.json").read_text())
    assert sidecar == {"PixelSize": [0.1, 0.2], "PixelSizeUnits": "um"}  # [x, y]
    back = read_image(tmp_path / "sub-01_sample-a_SEM.png")
    assert back.spacing == pytest.approx((0.0002, 0.0001))
    assert back.metadata["spacing_known"] is True


@pytest.mark.parametrize("channels", [3, 4])
def test_tiff_rgb_and_rgba_and_stack(tmp_path, channels):
    rgb = np.random.default_rng(1).integers(0, 255, (5, 7, channels)).astype(np.uint8)
    write_image(Image(rgb, channels=True), tmp_path / "c.tif")
    back = read_image(tmp_path / "c.tif")
    assert back.channels and back.n_channels == channels
    np.testing.assert_array_equal(back.array, rgb)
    stack = np.random.default_rng(2).normal(size=(3, 5, 7)).astype(np.float32)
    write_image(Image(stack), tmp_path / "s.tiff")
    vol = read_image(tmp_path / "s.tiff")
    assert vol.shape == (3, 5, 7)
    np.testing.assert_array_equal(vol.array, stack)


def test_rgb_png_read_with_channels(tmp_path):
    from PIL import Image as PILImage

    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.channels and img.n_channels == 4 and img.array[0, 0, 0] == 200


def test_overwrite_refused_then_versioned(tmp_path):
    path = tmp_path / "x.nii.gz"
    write_image(Image(np.zeros((2, 2, 2), np.uint8), kind="label"), path)
    with pytest.raises(OutputExistsError, match="x.nii.gz: exists"):
        write_image(Image(np.ones((2, 2, 2), np.uint8), kind="label"), path)
    write_image(Image(np.ones((2, 2, 2), np.uint8), kind="label"), path, overwrite=True)
    assert read_image(path, kind="label").array.sum() == 8
    assert read_image(tmp_path / "x.nii.gz.~1~", format="nifti", kind="label").array.sum() == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_writers_refuse_what_the_format_cannot_hold(tmp_path):
    with pytest.raises(UnsupportedFormatError, match="PNG holds 8/16-bit integers"):
        write_image(Image(np.zeros((2, 2), np.float32)), tmp_path / "f.png")
    with pytest.raises(UnsupportedFormatError, match="PNG holds 2D images"):
        write_image(Image(np.zeros((2, 2, 2), np.uint8)), tmp_path / "v.png")
    with pytest.raises(UnsupportedFormatError, match="cannot write jpeg"):
        write_image(Image(np.zeros((2, 2), np.uint8)), tmp_path / "v.jpg")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- real data
@needs_shared("spinalcord_sct")
@pytest.mark.parametrize(
    ("rel", "shape", "spacing", "orientation", "values"),
    [
        ("t2/t2.nii.gz", (52, 55, 60), (1.0, 1.0, 1.0), "PSR", None),
        ("t2/t2_seg-manual.nii.gz", (52, 55, 60), (1.0, 1.0, 1.0), "PSR", [0, 1]),
        ("t1/t1w_seg-manual.nii.gz", (77, 76, 42), (1.0, 1.0, 1.0), "RAS", [0, 1]),
        ("t2s/t2s.nii.gz", (9, 54, 49), (7.5, 0.5, 0.5), "LAS", None),
        ("t2s/t2s_gmseg_manual.nii.gz", (9, 54, 49), (7.5, 0.5, 0.5), "LAS", [0, 1]),
    ],
)
def test_spinal_cord_files(rel, shape, spacing, orientation, values):
    img = read_image(shared("spinalcord_sct", rel), kind="label" if values else "image")
    assert img.shape == shape
    assert img.spacing == pytest.approx(spacing, abs=1e-4)
    assert img.orientation == orientation
    if values:
        assert img.label_values() == values


@needs_shared("spinalcord_sct")
def test_spinal_cord_dmri_is_4d_with_channels():
    img = read_image(shared("spinalcord_sct", "dmri", "dmri.nii.gz"))
    assert img.channels and img.shape == (5, 42, 40)
    bvals = shared("spinalcord_sct", "dmri", "bvals.txt").read_text().split()
    assert img.n_channels == len(bvals)


@needs_shared("spinalcord_sct")
def test_spinal_cord_round_trip_every_format_keeps_world_geometry(tmp_path):
    src = read_image(shared("spinalcord_sct", "t2", "t2_seg-manual.nii.gz"), kind="label")
    for suffix in (".nii.gz", ".nrrd", ".mha"):
        write_image(src, tmp_path / f"seg{suffix}")
        back = read_image(tmp_path / f"seg{suffix}", kind="label")
        np.testing.assert_array_equal(back.array, src.array)
        corner = np.asarray(src.shape) - 1
        np.testing.assert_allclose(back.index_to_world(corner), src.index_to_world(corner),
                                   atol=1e-3)


@needs_shared("bids_ivadomed")
def test_bids_ct_and_its_label_overlay():
    ct, seg = read_labelled(
        shared("bids_ivadomed", "ct_scan", "sub-spleen2", "ct", "sub-spleen2_ct.nii.gz"),
        shared("bids_ivadomed", "ct_scan", "derivatives", "labels", "sub-spleen2", "ct",
               "sub-spleen2_ct_seg-manual.nii.gz"))
    assert ct.shape == (26, 166, 164)
    assert ct.spacing == pytest.approx((5.0, 0.794922, 0.794922), abs=1e-5)
    assert (float(ct.array.min()), float(ct.array.max())) == (-1019.0, 949.0)
    assert seg.label_values() == [0, 1] and seg.array.dtype == np.uint8


@needs_shared("bids_ivadomed")
def test_bids_microscopy_png_with_sidecar_pixel_size():
    path = shared("bids_ivadomed", "microscopy_png", "sub-rat2", "micr",
                  "sub-rat2_sample-data5_SEM.png")
    img = read_image(path)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["PixelSizeUnits"] == "mm"
    pixel = sidecar["PixelSize"]
    assert img.shape == (725, 725) and img.array.dtype == np.uint8
    assert img.spacing == pytest.approx((pixel[1], pixel[0]))
    mask = read_image(shared("bids_ivadomed", "microscopy_png", "derivatives", "labels",
                             "sub-rat2", "micr", "sub-rat2_sample-data5_SEM_seg-axon-manual.png"),
                      kind="label")
    assert mask.label_values() == [0, 130, 233, 255]  # the stray values the README warns of


@needs_shared("brats2013")
def test_brats_volume_and_multiclass_label():
    case = shared("brats2013", "brats_2013_pat0003_1")
    flair, seg = read_labelled(case / "Flair_subtrMeanDivStd.nii.gz", case / "OTMultiClass.nii.gz")
    assert flair.shape == (155, 240, 240) and flair.spacing == (1.0, 1.0, 1.0)
    assert set(seg.label_values()) <= {0, 1, 2, 3, 4} and len(seg.label_values()) >= 3
    assert seg.array.dtype == np.uint8


@needs_shared("lgg_flair")
def test_lgg_rgb_tiff_and_mask():
    folder = shared("lgg_flair", "TCGA_FG_5964_20010511")
    img = read_image(folder / "TCGA_FG_5964_20010511_10.tif")
    assert img.channels and img.n_channels == 3 and img.shape == (256, 256)
    mask = read_image(folder / "TCGA_FG_5964_20010511_10_mask.tif", kind="label")
    assert mask.shape == (256, 256) and set(mask.label_values()) <= {0, 255}


@needs_shared("acdc_h5")
def test_acdc_hdf5_image_and_label():
    path = shared("acdc_h5", "patient052_frame02.h5")
    img = read_image(path)
    lab = read_image(path, kind="label")
    check_same_grid(img, lab)
    assert img.shape == (8, 256, 216) and lab.label_values() == [0, 1, 2, 3]
    assert 0.0 <= float(img.array.min()) and float(img.array.max()) <= 1.0


# ------------------------------------------------- fixes from the review of the foundation
def test_label_written_by_segloop_reads_back_as_label(tmp_path):
    write_image(Image(np.array([[[0, 2], [5, 0]]], np.uint8), kind="label"), tmp_path / "l.nii")
    back = read_image(tmp_path / "l.nii")
    assert back.kind == "label" and back.label_values() == [0, 2, 5]
    assert read_image(tmp_path / "l.nii", kind="image").kind == "image"  # explicit wins


def test_outputs_follow_the_umask(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        write_image(Image(np.zeros((2, 2, 2), np.float32)), tmp_path / "a.nii.gz")
        write_image(Image(np.zeros((2, 2, 2), np.float32)), tmp_path / "b.mhd")
    finally:
        os.umask(mask)
    for p in tmp_path.iterdir():
        assert p.stat().st_mode & 0o777 == 0o644, p


def test_png_sidecar_is_merged_and_the_old_one_kept(tmp_path):
    (tmp_path / "sub-1_SEM.json").write_text(json.dumps(
        {"PixelSize": [0.5, 0.5], "PixelSizeUnits": "um", "BodyPart": "CSPINE"}))
    img = Image(np.zeros((4, 6), np.uint8), spacing=(0.001, 0.002))  # 1 um x 2 um
    write_image(img, tmp_path / "sub-1_SEM.png")
    merged = json.loads((tmp_path / "sub-1_SEM.json").read_text())
    assert merged == {"PixelSize": [2.0, 1.0], "PixelSizeUnits": "um", "BodyPart": "CSPINE"}
    kept = json.loads((tmp_path / "sub-1_SEM.json.~1~").read_text())
    assert kept["PixelSize"] == [0.5, 0.5]


def test_hdf5_keeps_origin_and_direction(tmp_path):
    img = _oblique_volume()
    write_image(img, tmp_path / "v.h5")
    back = read_image(tmp_path / "v.h5")
    check_same_grid(back, img)
    np.testing.assert_array_equal(back.array, img.array)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_raster_formats_refuse_to_drop_a_placement_silently(tmp_path, suffix):
    placed = Image(np.zeros((4, 6), np.uint8), origin=(10.0, -5.0))
    with pytest.raises(UnsupportedFormatError, match="keeps no origin or orientation"):
        write_image(placed, tmp_path / f"p{suffix}")
    write_image(placed, tmp_path / f"p{suffix}", drop_geometry=True)
    assert read_image(tmp_path / f"p{suffix}").origin == (0.0, 0.0)


def test_write_errors_name_the_users_path(tmp_path):
    with pytest.raises(UnsupportedFormatError) as info:
        write_image(Image(np.zeros((2, 2), np.float32)), tmp_path / "f.png")
    assert info.value.path == str(tmp_path / "f.png")


def test_large_int64_label_values_survive(tmp_path):
    lab = Image(np.array([[[0, 2**33 + 5]]], np.int64), kind="label")
    write_image(lab, tmp_path / "big.nii.gz")
    assert read_image(tmp_path / "big.nii.gz").label_values() == [0, 2**33 + 5]


def test_sform_and_qform_disagreeing_follow_itk(tmp_path):
    import nibabel as nib
    import SimpleITK as sitk

    nii = nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), np.eye(4))
    nii.set_qform(np.diag([1.0, 1.0, 1.0, 1.0]) + np.eye(4, k=3) * 0, code=1)
    q = np.eye(4)
    q[:3, 3] = (5.0, 0.0, 0.0)
    s = np.eye(4)
    s[:3, 3] = (-10.0, -20.0, 30.0)
    nii.set_qform(q, code=1)
    nii.set_sform(s, code=2)
    nib.save(nii, str(tmp_path / "sq.nii"))
    img = read_image(tmp_path / "sq.nii")
    itk = sitk.ReadImage(str(tmp_path / "sq.nii"))
    np.testing.assert_allclose(img.index_to_world((3, 4, 2)),
                               itk.TransformIndexToPhysicalPoint((2, 4, 3)), atol=1e-6)
    assert "qform and sform disagree" in img.metadata["geometry_note"]


@needs_shared("left_atrium_h5")
def test_left_atrium_hdf5_through_the_cli(tmp_path, capsys):
    from segloop.cli.main import main

    src = next(shared("left_atrium_h5").glob("*/mri_norm2.h5"))
    assert main(["convert", str(src), str(tmp_path / "la.nii.gz"), "--axes", "xyz",
                 "--input-spacing", "0.625", "0.625", "0.625"]) == 0
    import h5py

    with h5py.File(src) as f:
        stored = f["image"][()]
    out = read_image(tmp_path / "la.nii.gz")
    assert out.shape == stored.shape[::-1] and out.spacing == (0.625, 0.625, 0.625)
    np.testing.assert_allclose(out.array, np.transpose(stored, (2, 1, 0)), rtol=1e-6)
