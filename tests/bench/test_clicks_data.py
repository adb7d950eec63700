from collections import Counter

import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import needs_shared, shared
from segloop.bench.clicks_data import ROI_MIN, check_dims, click_cases, spread
from segloop.errors import DatasetError, InvalidArgumentError
from segloop.io import Image, write_image


def _one_object(case):
    assert case.truth.dtype == bool and case.image.dtype == np.float32
    assert case.image.shape[:case.ndim] == case.truth.shape
    assert ndi.label(case.truth)[1] == 1


@pytest.mark.parametrize(("name", "objects", "skipped"), [
    ("ct_slices_sammed2d", 28, {"no mask": 1, "object below 100 px": 4}),
    ("cxr_lungs", 8, {"object below 1000 px": 1}),
    ("lgg_flair", 36, {"empty mask": 78, "tumour below 300 px on the slice": 2}),
    ("em_isbi2012", 1420, {"object below 200 px": 335, "object touches the image border": 595}),
    ("spinalcord_sct", 55, {"no mask": 2,
                            "not the T2 volume (spinalcord_sct: cord on T2 axial slices)": 8}),
])
def test_objects_of_the_real_folders(name, objects, skipped):
    if not shared(name).exists():
        pytest.skip(f"shared data not found: {shared(name)}")
    data = click_cases(shared(name), limit=4)
    assert data.layout == name and data.dataset == name
    assert data.found == {2: objects} and data.skipped == skipped
    assert len(data.cases) == 4
    for case in data.cases:
        _one_object(case)
        assert case.ndim == 2 and not case.colour
    # the selection is spread over the sorted list and repeats exactly
    again = click_cases(shared(name), limit=4)
    assert [c.key for c in again.cases] == [c.key for c in data.cases]


@needs_shared("cxr_lungs")
def test_each_lung_is_one_object():
    data = click_cases(shared("cxr_lungs"))
    per_image = Counter(c.case_id for c in data.cases)
    assert per_image == {"1": 2, "2": 2, "3": 2, "4": 2}
    left, right = data.cases[:2]
    assert not (left.truth & right.truth).any()
    assert left.image is right.image  # one image array shared by the objects of a case


@needs_shared("polyps_kvasir")
def test_colour_is_kept_with_its_flag():
    data = click_cases(shared("polyps_kvasir"), limit=2)
    assert data.found == {2: 6}
    for case in data.cases:
        _one_object(case)
        assert case.colour and case.image.shape == (*case.truth.shape, 3)


@needs_shared("left_atrium_h5")
def test_volumes_give_the_largest_slice_and_the_3d_object():
    data = click_cases(shared("left_atrium_h5"), dims=(2, 3), limit=1)
    assert data.found == {2: 12, 3: 12}
    flat, vol = sorted(data.cases, key=lambda c: c.ndim)
    assert (flat.ndim, vol.ndim) == (2, 3)
    assert flat.spacing == (0.625, 0.625) and vol.spacing == (0.625, 0.625, 0.625)
    _one_object(flat)
    _one_object(vol)
    # the 2D object is the atrium on its largest axial slice; the volume is cropped around it
    z = int(flat.object_id.removeprefix("atrium-slice"))
    assert flat.truth.sum() == vol.truth.sum(axis=(1, 2)).max()
    assert all(n >= 2 * ROI_MIN for n in vol.truth.shape)
    assert 0 <= z < 88


def test_skips_are_counted_and_a_folder_without_masks_is_an_error(tmp_path):
    img = Image(np.arange(400, dtype=np.uint8).reshape(20, 20))
    lab = np.zeros((20, 20), np.uint8)
    lab[2:12, 2:12] = 1
    for name, label in (("a", lab), ("b", np.zeros_like(lab)), ("c", lab[:10])):
        write_image(img, tmp_path / "images" / f"{name}.png")
        write_image(Image(label, kind="label"), tmp_path / "labels" / f"{name}.png")
    data = click_cases(tmp_path)
    assert [(c.case_id, c.object_id, int(c.truth.sum())) for c in data.cases] == [
        ("a", "label", 100)]
    assert data.skipped == {"empty mask": 1, "mask shape differs from the image": 1}

    bare = tmp_path / "bare"
    write_image(img, bare / "images" / "a.png")
    write_image(img, bare / "other" / "a.png")
    with pytest.raises((DatasetError, InvalidArgumentError), match="bare"):
        click_cases(bare)


def test_spread_and_bad_options():
    assert spread(10, 3) == [1, 5, 8]
    assert spread(3, 3) == [0, 1, 2] and spread(3, None) == [0, 1, 2]
    assert check_dims([3, 2, 2]) == (2, 3)
    for dims in ([], [4], ["x"], [True]):
        with pytest.raises(InvalidArgumentError, match="dims"):
            check_dims(dims)
    with pytest.raises(InvalidArgumentError, match="limit"):
        click_cases(".", limit=0)
