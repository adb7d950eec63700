"""Cascade crop geometry on anisotropic rotated volumes: mm margins, clamping, crop, paste."""

import numpy as np
import pytest
from geometry_helpers import ORIGIN, SPACING, rotation

from segloop.errors import InvalidArgumentError
from segloop.io import Image, resample
from segloop.learn.cascade_crop import (
    crop_image,
    expand_box,
    paste_array,
    paste_image,
    per_axis,
    region_box,
)


def volume(shape=(6, 40, 50)):
    rng = np.random.default_rng(0)
    return Image(rng.random(shape, dtype=np.float32), spacing=SPACING, origin=ORIGIN,
                 direction=rotation(30))


def test_margin_in_mm_gives_voxels_per_axis():
    box = [[2, 4], [10, 20], [15, 25]]
    # 4 mm: 1 slice of 4 mm, 5 pixels of 0.8 mm; 3 mm: ceil(0.75) = 1 and ceil(3.75) = 4
    assert expand_box(box, shape=(6, 40, 50), spacing=SPACING, margin_mm=4.0) == [
        [1, 5], [5, 25], [10, 30]]
    assert expand_box(box, shape=(6, 40, 50), spacing=SPACING, margin_mm=3.0) == [
        [1, 5], [6, 24], [11, 29]]
    # per axis: no margin along z, 1.6 mm (2 pixels) in-plane, 8 mm (10 pixels) along x
    assert expand_box(box, shape=(6, 40, 50), spacing=SPACING, margin_mm=[0, 1.6, 8]) == [
        [2, 4], [8, 22], [5, 35]]


def test_two_in_plane_margins_keep_the_slice_axis_whole():
    box = [[2, 4], [10, 20], [15, 25]]
    out = expand_box(box, shape=(6, 40, 50), spacing=SPACING, margin_mm=[1.6, 0.8], keep_axis=0)
    assert out == [[0, 6], [8, 22], [14, 26]]
    assert per_axis([1, 2], 3, keep_axis=2) == [1.0, 2.0, None]
    with pytest.raises(InvalidArgumentError, match="cascade.margin_mm: 2 values do not fit a 3D"):
        expand_box(box, shape=(6, 40, 50), spacing=SPACING, margin_mm=[1.6, 0.8])
    with pytest.raises(InvalidArgumentError, match="cascade.min_size_mm: 4 values"):
        expand_box(box, shape=(6, 40, 50), spacing=SPACING, min_size_mm=[1, 2, 3, 4])


def test_boxes_are_clamped_at_the_borders():
    # a region touching the first slice and the last column: the margin stops at the image
    out = expand_box([[0, 2], [30, 40], [45, 50]], shape=(6, 40, 50), spacing=SPACING,
                     margin_mm=8.0)
    assert out == [[0, 4], [20, 40], [35, 50]]
    # a box reaching outside on both sides is clamped to the whole axis
    assert expand_box([[-3, 9], [5, 6], [5, 6]], shape=(6, 40, 50),
                      spacing=SPACING) == [[0, 6], [5, 6], [5, 6]]


def test_a_box_outside_the_image_is_an_error_naming_it():
    with pytest.raises(InvalidArgumentError) as err:
        expand_box([[7, 9], [0, 5], [0, 5]], shape=(6, 40, 50), spacing=SPACING,
                   margin_mm=0.8, where="scan.nii.gz")
    assert str(err.value) == ("scan.nii.gz: crop box [[7, 9], [0, 5], [0, 5]] lies outside "
                              "the image of shape (6, 40, 50)")
    # ...unless its margin reaches into the image: then the overlap is kept
    assert expand_box([[7, 9], [0, 5], [0, 5]], shape=(6, 40, 50), spacing=SPACING,
                      margin_mm=8.0)[0] == [5, 6]
    with pytest.raises(InvalidArgumentError, match="outside"):
        expand_box([[0, 5], [-9, -1]], shape=(10, 10), spacing=(1.0, 1.0))


def test_min_size_grows_about_the_centre_and_shifts_inward():
    shape = (6, 40, 50)
    # 16 mm = 20 pixels about the centre of [18, 22); 8 mm = 2 slices (an odd extra voxel
    # goes to the high side)
    assert expand_box([[3, 4], [18, 22], [20, 30]], shape=shape, spacing=SPACING,
                      min_size_mm=[8, 16, 0]) == [[3, 5], [10, 30], [20, 30]]
    # at the border the box shifts inward and keeps its size
    assert expand_box([[0, 1], [0, 4], [48, 50]], shape=shape, spacing=SPACING,
                      min_size_mm=16) == [[0, 4], [0, 20], [30, 50]]
    # an image smaller than the minimum: the whole axis
    assert expand_box([[0, 1], [0, 4], [48, 50]], shape=shape, spacing=SPACING,
                      min_size_mm=100)[0] == [0, 6]


def test_crop_keeps_world_coordinates_and_paste_is_exact():
    image = volume()
    box = [[1, 5], [7, 31], [12, 40]]
    crop = crop_image(image, box)
    assert crop.shape == (4, 24, 28) and crop.spacing == SPACING
    np.testing.assert_array_equal(crop.direction, image.direction)
    np.testing.assert_array_equal(crop.array, image.array[1:5, 7:31, 12:40])
    for idx in ([0, 0, 0], [3, 23, 27], [2, 5.5, 11]):  # the same voxel, the same world point
        np.testing.assert_allclose(crop.index_to_world(idx),
                                   image.index_to_world(np.add(idx, [1, 7, 12])), atol=1e-9)
    label = Image((image.array > 0.7).astype(np.uint8), kind="label", spacing=SPACING,
                  origin=ORIGIN, direction=image.direction)
    back = paste_image(crop_image(label, box), box, label)
    inside = np.zeros(label.shape, bool)
    inside[1:5, 7:31, 12:40] = True
    np.testing.assert_array_equal(back.array, np.where(inside, label.array, 0))
    assert back.kind == "label" and back.shape == label.shape
    assert back.spacing == label.spacing and back.origin == label.origin
    np.testing.assert_array_equal(back.direction, label.direction)
    # SimpleITK agrees: resampling the crop onto the full grid puts it back in place
    placed = resample(crop_image(label, box), reference=label)
    np.testing.assert_array_equal(placed.array, back.array)


def test_region_box_and_crop_to_paste_round_trip():
    image = volume()
    mask = np.zeros(image.shape, bool)
    mask[2:4, 15:19, 20:33] = True
    region = region_box(mask)
    assert region == [[2, 4], [15, 19], [20, 33]]
    box = expand_box(region, shape=image.shape, spacing=SPACING, margin_mm=4.0)
    crop = crop_image(image.with_array(mask.astype(np.uint8), kind="label"), box)
    assert crop.metadata["crop"] == box
    np.testing.assert_array_equal(paste_image(crop, box, image).array, mask)
    assert region_box(np.zeros((3, 3))) is None


def test_paste_soft_outputs_with_background_one_outside():
    probs = np.zeros((2, 3, 3), np.float32)  # (y, x, K=3), channels last
    probs[..., 1] = 1.0
    full = paste_array(probs, [[1, 3], [2, 5]], (4, 6), fill=[1.0, 0.0, 0.0], channel_axis=-1)
    assert full.shape == (4, 6, 3)
    np.testing.assert_array_equal(full.sum(-1), np.ones((4, 6)))
    np.testing.assert_array_equal(full[..., 1], np.pad(np.ones((2, 3)), [[1, 1], [2, 1]]))
    first = paste_array(np.moveaxis(probs, -1, 0), [[1, 3], [2, 5]], (4, 6),
                        fill=[1.0, 0.0, 0.0], channel_axis=0)
    np.testing.assert_array_equal(np.moveaxis(first, 0, -1), full)
    soft = Image(probs, kind="soft", channels=True)
    pasted = paste_image(soft, [[1, 3], [2, 5]], Image(np.zeros((4, 6))), fill=[1, 0, 0])
    assert pasted.channels and pasted.shape == (4, 6)
    np.testing.assert_array_equal(pasted.array, full)
    with pytest.raises(InvalidArgumentError, match="does not fit the box"):
        paste_array(np.ones((2, 2)), [[0, 2], [0, 3]], (4, 4))
