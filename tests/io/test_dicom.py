"""DICOM series and files: geometry round trips, pydicom's test files, series choice, errors."""

import os
import random
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import get_decoder
from pydicom.uid import JPEGLosslessSV1, generate_uid

from conftest import needs_shared, shared
from segloop.errors import (
    CorruptFileError,
    DatasetError,
    InvalidArgumentError,
    OutputExistsError,
    SegloopError,
    UnsupportedFormatError,
    WriteError,
)
from segloop.io import Image, check_same_grid, from_sitk, read_image, write_image
from segloop.io.dicom import list_dicom_series, read_dicom, write_dicom
from segloop.io.dicom_write import encode_pixels

CT = ("bids_ivadomed", "ct_scan", "sub-spleen2", "ct", "sub-spleen2_ct.nii.gz")


def _rotation(ax, ay, az):
    """Rotation matrix from angles (degrees) about x, y, z."""
    a, b, c = np.deg2rad([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _oblique(dtype=np.float32, shape=(7, 9, 11)):
    rng = np.random.default_rng(3)
    rot = _rotation(20, -35, 50)
    direction = rot[:, ::-1]  # array (z, y, x) <- world axes rotated: slice axis = row x col
    arr = rng.normal(100, 50, shape).astype(dtype)
    return Image(arr, spacing=(2.5, 0.7, 0.9), origin=(10.0, -20.0, 30.5), direction=direction)


def _shuffle_names(folder, seed=0):
    names = sorted(os.listdir(folder))
    shuffled = names[:]
    random.Random(seed).shuffle(shuffled)
    for name in names:
        os.rename(folder / name, folder / f"tmp-{name}")
    for name, new in zip(names, shuffled, strict=True):
        os.rename(folder / f"tmp-{name}", folder / new)
    return names, shuffled


def _corners(img):
    far = np.array(img.shape) - 1
    return img.index_to_world((0, 0, 0)), img.index_to_world(far)


# ------------------------------------------------------------------ round trips
@needs_shared(*CT)
def test_nifti_ct_to_dicom_series_and_back_keeps_voxels_and_geometry(tmp_path):
    nii = read_image(shared(*CT))
    assert nii.shape == (26, 166, 164)
    assert np.array_equal(np.rint(nii.array), nii.array)  # HU are integers: exact round trip
    write_dicom(nii, tmp_path / "ct", modality="CT", series_description="spleen CT")
    names, shuffled = _shuffle_names(tmp_path / "ct")
    assert names != shuffled and len(names) == 26 and names[0] == "IM0001.dcm"
    back = read_image(tmp_path / "ct")
    assert back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, nii.array)
    assert back.spacing == pytest.approx((5.0, 0.794922, 0.794922), abs=1e-6)
    assert back.orientation == "RAS"
    for got, want in zip(_corners(back), _corners(nii), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    meta = back.metadata
    assert (meta["format"], meta["modality"], meta["series_description"]) == (
        "dicom",
        "CT",
        "spleen CT",
    )
    # slice k comes from the file written k-th, whatever the names on disk now say
    uids = [pydicom.dcmread(tmp_path / "ct" / n, stop_before_pixels=True) for n in shuffled]
    by_instance = {int(ds.InstanceNumber): ds.SOPInstanceUID for ds in uids}
    assert meta["sop_instance_uids"] == [by_instance[k] for k in range(1, 27)]


def test_oblique_float_volume_round_trip_within_quantisation(tmp_path):
    img = _oblique()
    write_image(img, tmp_path / "obl", format="dicom", modality="MR")
    _shuffle_names(tmp_path / "obl", seed=1)
    back = read_dicom(tmp_path / "obl")
    slope = back.metadata["rescale_slope"]
    assert slope == pytest.approx((img.array.max() - img.array.min()) / 65535, rel=1e-6)
    assert back.array.dtype == np.float32
    assert np.abs(back.array - img.array).max() <= slope / 2 + 1e-4
    assert back.spacing == pytest.approx(img.spacing)
    np.testing.assert_allclose(back.direction, img.direction, atol=1e-9)
    for got, want in zip(_corners(back), _corners(img), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_simpleitk_reads_our_oblique_series_onto_the_same_grid(tmp_path):
    import SimpleITK as sitk

    img = _oblique(np.int16)
    write_dicom(img, tmp_path / "obl")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "obl")))
    other = from_sitk(reader.Execute())  # an independent reader of the same files
    np.testing.assert_array_equal(other.array, img.array)
    check_same_grid(other, img, atol=1e-6)


def test_left_handed_grid_comes_back_flipped_at_the_same_world_positions(tmp_path):
    img = _oblique(np.int16)
    img.direction[:, 0] *= -1  # slice axis = -(row x column): not how DICOM stacks
    write_dicom(img, tmp_path / "lh")
    back = read_dicom(tmp_path / "lh")
    np.testing.assert_array_equal(back.array, img.array[::-1])
    np.testing.assert_allclose(back.index_to_world((0, 0, 0)), img.index_to_world((6, 0, 0)))
    np.testing.assert_allclose(back.index_to_world((6, 8, 10)), img.index_to_world((0, 8, 10)))


def test_2d_image_to_one_file_and_volume_to_file_refused(tmp_path):
    img = Image(np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000, spacing=(0.5, 0.25))
    write_image(img, tmp_path / "one.dcm")
    back = read_image(tmp_path / "one.dcm")
    assert back.shape == (1, 3, 4) and back.spacing == (1.0, 0.5, 0.25)
    np.testing.assert_array_equal(back.array[0], img.array)
    with pytest.raises(UnsupportedFormatError, match="a volume of 7 slices"):
        write_image(_oblique(), tmp_path / "vol.dcm")
    assert sorted(os.listdir(tmp_path)) == ["one.dcm"]


def test_encode_pixels_integer_exact_and_wide_range():
    stored, slope, intercept = encode_pixels(np.array([-1024, 0, 3071]))
    assert (stored.dtype, slope, intercept) == (np.int16, 1.0, 0.0)
    stored, slope, intercept = encode_pixels(np.array([70000, 100000]))  # span < 65536: shifted
    assert (slope, intercept) == (1.0, 70000.0) and stored.tolist() == [0, 30000]


def test_existing_folder_needs_overwrite_and_is_kept_as_version(tmp_path):
    img = _oblique(np.int16, shape=(2, 3, 4))
    write_dicom(img, tmp_path / "s")
    with pytest.raises(OutputExistsError):
        write_dicom(img, tmp_path / "s")
    write_dicom(img.with_array(img.array + 1), tmp_path / "s", overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["s", "s.~1~"]
    np.testing.assert_array_equal(read_dicom(tmp_path / "s").array, img.array + 1)
    np.testing.assert_array_equal(read_dicom(tmp_path / "s.~1~").array, img.array)


# ------------------------------------------------------------ pydicom's files
def test_ct_small_applies_rescale_to_hounsfield_units():
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    ct = read_dicom(path)
    assert ct.shape == (1, 128, 128)
    assert ct.spacing == pytest.approx((5.0, 0.661468, 0.661468))
    assert ct.origin == pytest.approx((-158.135803, -179.035797, -75.699997))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert float(ds.RescaleIntercept) == -1024.0
    np.testing.assert_array_equal(ct.array[0], hu)
    assert ct.metadata["sop_instance_uids"] == [ds.SOPInstanceUID]


def test_mr_small_keeps_raw_integers():
    path = get_testdata_file("MR_small.dcm")
    mr = read_dicom(path)
    assert mr.spacing == pytest.approx((0.8, 0.3125, 0.3125))
    np.testing.assert_array_equal(mr.array[0], pydicom.dcmread(path).pixel_array)
    assert mr.array.dtype == np.int16


@pytest.mark.parametrize(("name", "shape"), [
    ("SC_rgb.dcm", (1, 100, 100)),
    ("SC_rgb_rle_2frame.dcm", (2, 100, 100)),
    ("examples_rgb_color.dcm", (1, 240, 320)),
    ("SC_ybr_full_422_uncompressed.dcm", (1, 100, 100)),
])  # fmt: skip
def test_colour_files_become_rgb_channels(name, shape):
    img = read_dicom(get_testdata_file(name))
    assert img.channels and img.shape == shape and img.n_channels == 3
    assert img.metadata["photometric"] == "RGB"


def test_ybr_file_is_converted_to_the_same_colours_as_the_rgb_file():
    rgb = read_dicom(get_testdata_file("SC_rgb.dcm")).array.astype(int)
    ybr = read_dicom(get_testdata_file("SC_ybr_full_422_uncompressed.dcm")).array.astype(int)
    assert rgb[0, 5, 5].tolist() == [255, 0, 0]
    assert np.abs(ybr - rgb).max() <= 6


def test_enhanced_multiframe_ct_is_stacked_by_plane_position():
    path = get_testdata_file("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    z = [
        float(f.PlanePositionSequence[0].ImagePositionPatient[2])
        for f in ds.PerFrameFunctionalGroupsSequence
    ]
    assert z == [-159.0, -149.0]
    img = read_dicom(path)
    assert img.shape == (2, 512, 512) and img.spacing == pytest.approx((10.0, 0.388672, 0.388672))
    # row cosine (-1, 0, 0) x column cosine (0, 1, 0) = (0, 0, -1): the frame at -149 comes first
    np.testing.assert_allclose(img.direction[:, 0], [0, 0, -1])
    np.testing.assert_allclose(img.direction[:, 1], [0, 1, 0])  # column cosine: along rows
    np.testing.assert_allclose(img.direction[:, 2], [-1, 0, 0])  # row cosine: along columns
    assert img.origin == pytest.approx((99.5, -301.5, -149.0))
    np.testing.assert_array_equal(img.array[0], ds.pixel_array[1].astype(int) - 1024)
    np.testing.assert_array_equal(img.array[1], ds.pixel_array[0].astype(int) - 1024)


def test_rt_dose_grid_uses_frame_offsets_and_dose_scaling():
    path = get_testdata_file("rtdose.dcm")
    ds = pydicom.dcmread(path)
    dose = read_dicom(path)
    assert dose.shape == (15, 10, 10) and dose.spacing[0] == pytest.approx(5.0)
    np.testing.assert_allclose(dose.array, ds.pixel_array * 1e-6, rtol=1e-6)
    assert "geometry_note" not in dose.metadata


def test_truncated_pixel_data_is_a_corrupt_file():
    with pytest.raises(CorruptFileError, match=r"MR_truncated\.dcm: file is truncated"):
        read_dicom(get_testdata_file("MR_truncated.dcm"))


def test_truncated_header_is_a_corrupt_file(tmp_path):
    raw = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (tmp_path / "cut.dcm").write_bytes(raw[:5000])
    with pytest.raises(CorruptFileError, match=r"cut\.dcm: file is truncated"):
        read_image(tmp_path / "cut.dcm")
    (tmp_path / "cut.dcm").write_bytes(raw[:700])
    with pytest.raises(CorruptFileError, match="no image.*truncated"):
        read_dicom(tmp_path / "cut.dcm")


def test_non_image_dicom_is_unsupported():
    with pytest.raises(UnsupportedFormatError, match="RT Plan Storage"):
        read_dicom(get_testdata_file("rtplan.dcm"))


@pytest.mark.skipif(get_decoder(JPEGLosslessSV1).is_available, reason="a decoder is installed")
def test_missing_decoder_names_file_and_transfer_syntax(tmp_path):
    shutil.copy(get_testdata_file("SC_rgb_jpeg_gdcm.dcm"), tmp_path / "jpeg.dcm")
    with pytest.raises(UnsupportedFormatError, match=r"jpeg\.dcm: .*JPEG Lossless.*1\.2\.840"):
        read_dicom(tmp_path)


# -------------------------------------------------------------- several series
def _two_series(tmp_path):
    a = _oblique(np.int16, shape=(3, 4, 5))
    b = Image(np.full((2, 6, 6), 7, np.int16), spacing=(1.0, 2.0, 2.0))
    write_dicom(a, tmp_path / "a", modality="CT", series_description="first")
    write_dicom(b, tmp_path / "b", modality="MR", series_description="second")
    mixed = tmp_path / "mixed"
    shutil.copytree(tmp_path / "a", mixed / "sub")
    for f in os.listdir(tmp_path / "b"):
        shutil.copy(tmp_path / "b" / f, mixed / f"b-{f}")
    (mixed / "README").write_text("not DICOM")
    (mixed / "empty").write_bytes(b"")
    return a, b, mixed


def test_two_series_error_lists_both_and_series_selects(tmp_path):
    a, b, mixed = _two_series(tmp_path)
    infos = list_dicom_series(mixed)
    # same SeriesNumber: listed by the path of their first file (mixed/b-IM0001.dcm first)
    assert [(s.description, s.modality, s.n_slices, s.rows, s.columns) for s in infos] == [
        ("second", "MR", 2, 6, 6),
        ("first", "CT", 3, 4, 5),
    ]
    with pytest.raises(InvalidArgumentError) as err:
        read_dicom(mixed)
    msg = str(err.value)
    assert "series=" in msg and "3 slices of 4x5" in msg and "2 slices of 6x6" in msg
    assert "\n" not in msg and f"[0] {infos[0]}; [1] {infos[1]}" in msg and "--series" in msg
    assert infos[0].uid in msg and infos[1].uid in msg and "'second'" in msg
    for choice in (infos[0].uid, 0, "0", "second", "SECOND"):
        np.testing.assert_array_equal(read_image(mixed, series=choice).array, b.array)
    np.testing.assert_array_equal(read_dicom(mixed, series=1).array, a.array)
    with pytest.raises(InvalidArgumentError, match="matches no series"):
        read_dicom(mixed, series="third")
    with pytest.raises(InvalidArgumentError, match="out of range"):
        read_dicom(mixed, series=2)


def test_folder_without_dicom_is_unsupported(tmp_path):
    (tmp_path / "README").write_text("hello")
    with pytest.raises(UnsupportedFormatError, match="no DICOM image files"):
        read_dicom(tmp_path)


# --------------------------------------------------------------- broken stacks
@pytest.fixture
def series(tmp_path):
    write_dicom(
        Image(np.arange(6 * 4 * 3, dtype=np.int16).reshape(6, 4, 3), spacing=(2.0, 1.0, 1.0)),
        tmp_path / "s",
    )
    return tmp_path / "s"


def _edit(path, **changes):
    ds = pydicom.dcmread(path)
    for key, value in changes.items():
        setattr(ds, key, value)
    return ds


def test_missing_slice_is_reported(series):
    (series / "IM0004.dcm").unlink()
    with pytest.raises(
        DatasetError,
        match=r"1 slice\(s\) missing: a gap of 4\.000 mm between "
        r"IM0003\.dcm and IM0005\.dcm",
    ):
        read_dicom(series)


def test_duplicate_position_is_reported(series):
    uid = generate_uid()
    _edit(series / "IM0002.dcm", SOPInstanceUID=uid).save_as(series / "IM0002b.dcm")
    with pytest.raises(
        DatasetError,
        match=r"duplicate slice position.*IM0002\.dcm and "
        r"IM0002b\.dcm",
    ):
        read_dicom(series)


def test_irregular_spacing_is_reported(series):
    ds = _edit(series / "IM0003.dcm")
    ds.ImagePositionPatient = [0, 0, 5.0]  # 4.0 expected
    ds.save_as(series / "IM0003.dcm")
    with pytest.raises(DatasetError, match=r"s: slice spacing is not uniform"):
        read_dicom(series)


def test_single_file_of_a_series_is_one_slice(series):
    img = read_dicom(series / "IM0003.dcm")
    assert img.shape == (1, 4, 3) and img.origin == pytest.approx((0.0, 0.0, 4.0))
    np.testing.assert_array_equal(img.array[0], np.arange(24, 36).reshape(4, 3))
    with pytest.raises(InvalidArgumentError, match="single file"):
        read_dicom(series / "IM0003.dcm", series=0)


def test_series_info_prints_as_its_one_line_summary(tmp_path):
    _, _, mixed = _two_series(tmp_path)
    info = list_dicom_series(mixed)[1]
    assert str(info) == info.summary() == f"{info.uid}  'first'  CT  3 slices of 4x5"
    assert f"{info}" == info.summary()


def test_every_dicom_error_is_one_line(tmp_path):
    _, _, mixed = _two_series(tmp_path)
    raw = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (tmp_path / "cut.dcm").write_bytes(raw[:700])
    (tmp_path / "cut2.dcm").write_bytes(raw[:5000])
    attempts = [
        lambda: read_dicom(mixed),
        lambda: read_dicom(mixed, series="third"),
        lambda: read_dicom(mixed, series=5),
        lambda: read_dicom(mixed / "b-IM0001.dcm", series=0),
        lambda: read_dicom(tmp_path / "cut.dcm"),
        lambda: read_dicom(tmp_path / "cut2.dcm"),
        lambda: read_dicom(get_testdata_file("rtplan.dcm")),
        lambda: read_dicom(get_testdata_file("MR_truncated.dcm")),
        lambda: write_dicom(_oblique(), tmp_path / "vol.dcm"),
        lambda: write_dicom(_oblique(), tmp_path / "a"),
    ]
    for attempt in attempts:
        with pytest.raises(SegloopError) as err:
            attempt()
        assert "\n" not in str(err.value), str(err.value)


# ------------------------------------------------------ missing plane positions
def _drop_position(path):
    ds = pydicom.dcmread(path)
    del ds.ImagePositionPatient
    ds.save_as(path)


def test_some_planes_without_position_is_an_error_naming_them(series):
    for name in ("IM0002.dcm", "IM0005.dcm"):
        _drop_position(series / name)
    with pytest.raises(DatasetError) as err:
        read_dicom(series)
    msg = str(err.value)
    assert msg.startswith(f"{series}: 2 of 6 planes lack ImagePositionPatient/")
    assert "(IM0002.dcm, IM0005.dcm)" in msg and "\n" not in msg


def test_some_planes_without_orientation_is_an_error_too(series):
    ds = pydicom.dcmread(series / "IM0003.dcm")
    del ds.ImageOrientationPatient
    ds.save_as(series / "IM0003.dcm")
    with pytest.raises(DatasetError, match=r"1 of 6 planes lack .*\(IM0003\.dcm\)"):
        read_dicom(series)


def test_no_plane_with_a_position_falls_back_to_instance_number(series):
    names, shuffled = _shuffle_names(series, seed=4)
    assert names != shuffled
    for name in names:
        _drop_position(series / name)
    img = read_dicom(series)
    np.testing.assert_array_equal(img.array, np.arange(6 * 4 * 3).reshape(6, 4, 3))
    assert img.origin == (0.0, 0.0, 0.0) and img.spacing == (2.0, 1.0, 1.0)
    assert "ordered by InstanceNumber" in img.metadata["geometry_note"]


# ------------------------------------------------------------- writing outputs
@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def test_written_series_has_the_default_modes_of_the_umask(tmp_path, umask_027):
    write_dicom(_oblique(np.int16, shape=(3, 4, 5)), tmp_path / "s")
    assert (tmp_path / "s").stat().st_mode & 0o777 == 0o777 & ~umask_027
    files = sorted((tmp_path / "s").iterdir())
    assert len(files) == 3
    assert {f.stat().st_mode & 0o777 for f in files} == {0o666 & ~umask_027}


def test_unwritable_series_or_file_is_a_write_error(tmp_path):
    with pytest.raises(WriteError, match=r"^/proc/nope/out: cannot write: \w"):
        write_dicom(_oblique(np.int16, shape=(2, 3, 4)), "/proc/nope/out")
    img = Image(np.zeros((3, 4), np.uint16))
    with pytest.raises(WriteError, match=r"^/proc/nope/one\.dcm: cannot write: \w"):
        write_dicom(img, "/proc/nope/one.dcm")
    (tmp_path / "file").write_text("x")  # a file where a folder is needed
    with pytest.raises(WriteError, match=r"file/s: cannot write: \w"):
        write_dicom(_oblique(np.int16, shape=(2, 3, 4)), tmp_path / "file" / "s")
