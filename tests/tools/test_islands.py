import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import needs_shared, shared
from segloop.errors import InvalidArgumentError
from segloop.io import open_dataset
from segloop.metrics import dice
from segloop.tools import get_tool
from segloop.tools.islands import fill_holes, keep_at_point, keep_largest, remove_small

LA = "left_atrium_h5"

# three islands of label 1 (sizes 4, 2, 1 voxels) and two of label 2 (sizes 3, 1)
ISLANDS = np.array([
    [1, 1, 0, 0, 2, 0, 1],
    [1, 1, 0, 0, 2, 0, 0],
    [0, 0, 0, 0, 2, 0, 0],
    [0, 1, 1, 0, 0, 0, 2],
], np.uint8)


def test_keep_largest_keeps_the_largest_island_of_each_label():
    expected = ISLANDS.copy()
    expected[0, 6] = expected[3, 1] = expected[3, 2] = expected[3, 6] = 0
    assert np.array_equal(keep_largest(ISLANDS), expected)


def test_keep_largest_of_one_label_leaves_the_others():
    out = keep_largest(ISLANDS, value=2)
    assert out[3, 6] == 0 and out[0, 6] == 1 and (out == 1).sum() == 7


def test_corner_connectivity_joins_diagonal_islands():
    lab = np.eye(4, dtype=np.uint8)
    lab[0, 3] = 1
    assert keep_largest(lab).sum() == 1
    assert keep_largest(lab, connectivity=2).sum() == 4


def test_remove_small_by_voxels_and_by_volume():
    out = remove_small(ISLANDS, min_voxels=2)
    assert (out == 1).sum() == 6 and (out == 2).sum() == 3
    # voxels of 2 mm x 1 mm: 2 mm² each; keep components of at least 4 mm² (2 voxels)
    assert np.array_equal(remove_small(ISLANDS, min_mm3=4.0, spacing=(2.0, 1.0)), out)
    assert np.array_equal(remove_small(ISLANDS, min_voxels=1), ISLANDS)


def test_keep_at_point_keeps_the_island_under_it_only():
    out = keep_at_point(ISLANDS, [3, 2])
    assert (out == 1).sum() == 2 and out[3, 1] == 1 and np.array_equal(out == 2, ISLANDS == 2)


def test_fill_holes_in_2d_fills_only_background():
    ring = np.zeros((7, 7), np.uint8)
    ring[1:6, 1:6] = 1
    ring[2:5, 2:5] = 0
    ring[3, 3] = 2  # another label inside the hole stays
    out = fill_holes(ring)
    assert (out == 1).sum() == 25 - 1 and out[3, 3] == 2
    opened = ring.copy()
    opened[1, 3] = 0  # a gap to the outside: no longer a hole
    assert np.array_equal(fill_holes(opened), opened)
    # a diagonal gap does not open the hole for face-connected background
    diag = ring.copy()
    diag[1, 1] = 0
    assert (fill_holes(diag) == 1).sum() == 23


def test_fill_holes_in_3d_versus_slice_by_slice():
    tube = np.zeros((5, 7, 7), np.uint8)
    tube[:, 1:6, 1:6] = 1
    tube[:, 3, 3] = 0  # a channel open at both ends: no 3D hole, a hole in every axial slice
    assert np.array_equal(fill_holes(tube), tube)
    assert fill_holes(tube, axis=0)[:, 3, 3].tolist() == [1] * 5
    assert np.array_equal(fill_holes(tube, axis=1), tube)  # not enclosed in coronal slices
    cavity = tube.copy()
    cavity[1:4, 2:5, 2:5] = 0
    cavity[1:4, 3, 3] = 0
    cavity[[0, 4], 1:6, 1:6] = 1  # closed ends: an enclosed cavity
    assert fill_holes(cavity).sum() == 5 * 25


def test_holes_at_the_image_border_are_open():
    lab = np.zeros((4, 5), np.uint8)
    lab[:, 1] = lab[:, 3] = 1
    lab[0, 2] = lab[3, 2] = 1  # closes column 2 from rows 1-2 inside, touching no border
    assert fill_holes(lab)[1:3, 2].tolist() == [1, 1]
    assert fill_holes(lab)[:, 0].sum() == 0


def test_spec_dispatches_each_operation():
    spec = get_tool("islands")
    kw = {"spacing": (1.0, 1.0)}
    assert np.array_equal(spec.apply(None, ISLANDS, operation="keep_largest", **kw),
                          keep_largest(ISLANDS))
    assert np.array_equal(spec.apply(None, ISLANDS, operation="remove_small", min_voxels=2, **kw),
                          remove_small(ISLANDS, min_voxels=2))
    assert np.array_equal(spec.apply(None, ISLANDS, operation="keep_at_point", point=[0, 0], **kw),
                          keep_at_point(ISLANDS, [0, 0]))
    assert np.array_equal(spec.apply(None, ISLANDS, operation="fill_holes", **kw), ISLANDS)
    with pytest.raises(InvalidArgumentError, match="operation must be one of keep_largest"):
        spec.apply(None, ISLANDS, operation="largest", **kw)
    with pytest.raises(InvalidArgumentError, match="needs point"):
        spec.apply(None, ISLANDS, operation="keep_at_point", **kw)
    with pytest.raises(InvalidArgumentError, match="edits a label map"):
        spec.apply(np.zeros((4, 7)), None, operation="fill_holes", **kw)


@needs_shared(LA)
def test_cleaning_a_speckled_real_label_restores_it():
    case = open_dataset(shared(LA)).cases[0]
    truth = case.read_label().array.astype(np.uint8)
    rng = np.random.default_rng(0)
    noisy = truth ^ (rng.random(truth.shape) < 0.003)  # specks outside, pinholes inside
    spacing = case.read_label().spacing
    cleaned = fill_holes(remove_small(noisy, min_mm3=1.0, spacing=spacing))
    assert dice(noisy, truth) < 0.99
    score = dice(cleaned, truth)
    assert score > 0.999, score
    assert ndi.label(keep_largest(noisy))[1] == 1


@pytest.mark.parametrize(("call", "message"), [
    (lambda: remove_small(ISLANDS), "give exactly one of min_voxels and min_mm3"),
    (lambda: remove_small(ISLANDS, min_voxels=2, min_mm3=2), "give exactly one"),
    (lambda: remove_small(ISLANDS, min_voxels=-2), "min_voxels must be a number"),
    (lambda: remove_small(ISLANDS, min_mm3=2, spacing=(1.0,)), "spacing must be 2"),
    (lambda: keep_largest(ISLANDS, connectivity=3), "connectivity must be an integer in 1..2"),
    (lambda: keep_largest(ISLANDS, value=0), "value must be a positive integer"),
    (lambda: keep_at_point(ISLANDS, [2, 2]), r"point=\[2, 2\] lies on background"),
    (lambda: keep_at_point(ISLANDS, [9, 2]), "outside the image"),
    (lambda: fill_holes(ISLANDS, axis=0), "axis=0 goes with a 3D array, got a 2D one"),
    (lambda: fill_holes(np.zeros((2, 2, 2)) - 1), "label must not hold negative values"),
    (lambda: keep_largest(np.zeros((2, 2, 2, 2), np.uint8)), "2D or 3D"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(InvalidArgumentError, match=message):
        call()


@pytest.mark.parametrize("call", [
    lambda: keep_largest("abc"),
    lambda: remove_small("abc", min_voxels=2),
    lambda: keep_at_point("abc", [0, 0]),
    lambda: fill_holes("abc"),
])
def test_a_bad_label_map_is_named_as_the_label(call):
    with pytest.raises(InvalidArgumentError, match="label must be an integer label map"):
        call()


def test_spec_accepts_and_ignores_a_colour_axis():
    spec = get_tool("islands")
    rgb = np.zeros((*ISLANDS.shape, 3), np.uint8)
    assert np.array_equal(spec.apply(rgb, ISLANDS, spacing=(1.0, 1.0), operation="keep_largest",
                                     channel_axis=-1), keep_largest(ISLANDS))
