"""DICOM Segmentation: the real SEG shipped with pydicom-data, and label round trips."""

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from conftest import needs_shared, shared
from segloop.errors import GeometryMismatchError, InvalidArgumentError, InvalidImageError
from segloop.io import Image, check_same_grid, read_image, same_grid, write_image
from segloop.io.dicom import read_dicom, write_dicom
from segloop.io.dicom_seg import read_dicom_seg, write_dicom_seg

CT = ("bids_ivadomed", "ct_scan", "sub-spleen2", "ct", "sub-spleen2_ct.nii.gz")
LABEL = ("bids_ivadomed", "ct_scan", "derivatives", "labels", "sub-spleen2", "ct",
         "sub-spleen2_ct_seg-manual.nii.gz")  # fmt: skip


def test_liver_seg_from_pydicom_data():
    path = get_testdata_file("liver.dcm")
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array  # (3, 512, 512) bits of the one segment
    z = [
        float(f.PlanePositionSequence[0].ImagePositionPatient[2])
        for f in ds.PerFrameFunctionalGroupsSequence
    ]
    assert z == [-128.69, -127.69, -126.69]
    liver = read_image(path)
    assert liver.kind == "label" and liver.shape == (3, 512, 512)
    assert liver.label_values() == [0, 1]
    assert int(frames.sum()) == 107098
    assert int(liver.array.sum()) == 107098
    np.testing.assert_array_equal(liver.array, frames)  # frames already ascend along the normal
    assert liver.spacing == pytest.approx((1.0, 0.810547, 0.810547))
    assert liver.origin == pytest.approx((-235.2, -226.8, -128.69))
    np.testing.assert_allclose(liver.direction, [[0, 0, 1], [0, 1, 0], [1, 0, 0]], atol=1e-12)
    assert liver.metadata["segments"] == {1: "Liver"}
    assert liver.metadata["referenced_series_uid"] == (
        ds.ReferencedSeriesSequence[0].SeriesInstanceUID
    )


@pytest.fixture(scope="module")
def spleen(tmp_path_factory):
    """The CT as a DICOM series, and the label drawn on it."""
    if not shared(*CT).exists():
        pytest.skip("shared data not found")
    folder = tmp_path_factory.mktemp("spleen")
    ct = read_image(shared(*CT))
    write_dicom(ct, folder / "ct", modality="CT")
    return folder / "ct", read_image(shared(*LABEL), kind="label")


@needs_shared(*LABEL)
def test_spleen_label_round_trip_through_seg(spleen, tmp_path):
    series, label = spleen
    assert label.label_values() == [0, 1] and int(label.array.sum()) == 96672
    write_dicom_seg(label, tmp_path / "seg.dcm", source=series, segment_names={1: "spleen"})
    back = read_dicom_seg(tmp_path / "seg.dcm")
    np.testing.assert_array_equal(back.array, label.array)
    check_same_grid(back, label)
    check_same_grid(back, read_dicom(series))
    assert back.metadata["segments"] == {1: "spleen"}
    ct_meta = read_dicom(series).metadata
    assert back.metadata["referenced_series_uid"] == ct_meta["series_uid"]
    assert back.metadata["frame_of_reference_uid"] == ct_meta["frame_of_reference_uid"]
    seg = pydicom.dcmread(tmp_path / "seg.dcm", stop_before_pixels=True)
    assert (seg.SegmentationType, int(seg.NumberOfFrames)) == ("BINARY", 26)  # empty kept


@needs_shared(*LABEL)
def test_write_image_with_reference_writes_a_seg_and_folder_read_picks_the_ct(spleen, tmp_path):
    series, label = spleen
    write_image(label, tmp_path / "spleen.dcm", reference=series)
    np.testing.assert_array_equal(read_image(tmp_path / "spleen.dcm").array, label.array)
    with pytest.raises(InvalidArgumentError, match="ending in .dcm"):
        write_dicom(label, tmp_path / "folder", reference=series)


@needs_shared(*LABEL)
def test_label_on_another_grid_is_refused(spleen, tmp_path):
    series, label = spleen
    cropped = Image(
        label.array[:, :-1],
        spacing=label.spacing,
        origin=label.origin,
        direction=label.direction,
        kind="label",
    )
    with pytest.raises(GeometryMismatchError, match=r"shape \(26, 165, 164\) vs \(26, 166"):
        write_dicom_seg(cropped, tmp_path / "x.dcm", source=series)
    shifted = label.with_array(label.array)
    shifted.origin = (label.origin[0] + 2.0, *label.origin[1:])
    shifted.metadata = {"path": "shifted.nii.gz"}
    with pytest.raises(GeometryMismatchError, match=rf"shifted\.nii\.gz and {series}.*origin"):
        write_dicom_seg(shifted, tmp_path / "x.dcm", source=series)
    assert not (tmp_path / "x.dcm").exists()


def _small_series(tmp_path):
    theta = np.deg2rad(25)
    rot = np.array(
        [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]
    )
    img = Image(
        np.zeros((4, 6, 5), np.int16),
        spacing=(3.0, 0.8, 0.6),
        origin=(5, -7, 11),
        direction=rot[:, ::-1],
    )
    write_dicom(img, tmp_path / "src", modality="MR")
    return img, tmp_path / "src"


def test_non_contiguous_values_and_oblique_grid_survive(tmp_path):
    img, src = _small_series(tmp_path)
    arr = np.zeros(img.shape, np.uint8)
    arr[1, 2:4, 1:3] = 2
    arr[2, :, 4] = 5
    label = img.with_array(arr, kind="label")
    write_dicom_seg(label, tmp_path / "s.dcm", source=src, segment_names={5: "five"})
    back = read_dicom_seg(tmp_path / "s.dcm")
    np.testing.assert_array_equal(back.array, arr)
    assert same_grid(back, img) == (True, "")
    assert back.metadata["segments"] == {2: "Label 2", 5: "five"}
    seg = pydicom.dcmread(tmp_path / "s.dcm", stop_before_pixels=True)
    assert [int(s.SegmentNumber) for s in seg.SegmentSequence] == [1, 2]


def test_seg_in_a_folder_beside_its_series(tmp_path):
    img, src = _small_series(tmp_path)
    arr = np.zeros(img.shape, np.uint8)
    arr[0, 0, 0] = 1
    write_dicom_seg(img.with_array(arr, kind="label"), src / "seg.dcm", source=src)
    assert read_dicom(src).kind == "image"  # the image series is the default
    uid = pydicom.dcmread(src / "seg.dcm", stop_before_pixels=True).SeriesInstanceUID
    lab = read_dicom(src, series=uid)
    assert lab.kind == "label" and int(lab.array.sum()) == 1 and lab.array[0, 0, 0] == 1


def test_overlapping_segments_error_or_highest(tmp_path):
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    img, src = _small_series(tmp_path)
    stacked = np.zeros((*img.shape, 2), np.uint8)
    stacked[1, 1:4, 1:4, 0] = 1
    stacked[1, 2:5, 2:5, 1] = 1  # overlaps segment 1 on a 2x2 square
    sources = [pydicom.dcmread(src / f"IM000{k}.dcm") for k in range(1, 5)]
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=f"s{n}",
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for n in (1, 2)
    ]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=stacked,
        segmentation_type="BINARY",
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=1,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="0",
        omit_empty_frames=False,
    )
    seg.save_as(tmp_path / "overlap.dcm")
    with pytest.raises(InvalidImageError, match="overlap.dcm: segments overlap"):
        read_dicom_seg(tmp_path / "overlap.dcm")
    lab = read_dicom_seg(tmp_path / "overlap.dcm", overlap="highest")
    assert lab.array[1, 2, 2] == 2 and lab.array[1, 1, 1] == 1 and lab.array[1, 4, 4] == 2
    assert int((lab.array > 0).sum()) == 9 + 9 - 4


def test_empty_label_is_refused(tmp_path):
    img, src = _small_series(tmp_path)
    with pytest.raises(InvalidImageError, match="empty"):
        write_dicom_seg(
            img.with_array(np.zeros(img.shape, np.uint8), kind="label"),
            tmp_path / "e.dcm",
            source=src,
        )


def test_seg_on_an_enhanced_multiframe_source(tmp_path):
    source = get_testdata_file("eCT_Supplemental.dcm")  # frames stored at z = -159, -149
    img = read_dicom(source)
    arr = np.zeros(img.shape, np.uint8)
    arr[0, 10:20, 10:30] = 1  # slice 0 is the frame at -149 (file frame 2)
    arr[1, 100:110, 5:8] = 2
    write_dicom_seg(img.with_array(arr, kind="label"), tmp_path / "s.dcm", source=source)
    back = read_dicom_seg(tmp_path / "s.dcm")
    np.testing.assert_array_equal(back.array, arr)
    check_same_grid(back, img)
    seg = pydicom.dcmread(tmp_path / "s.dcm", stop_before_pixels=True)
    refs = {
        float(f.PlanePositionSequence[0].ImagePositionPatient[2]): int(
            f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber
        )
        for f in seg.PerFrameFunctionalGroupsSequence
    }
    assert refs == {-159.0: 1, -149.0: 2}
