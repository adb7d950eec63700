import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import needs_shared, shared
from segloop.data import disk
from segloop.errors import InvalidArgumentError
from segloop.io import open_dataset
from segloop.metrics import dice
from segloop.tools import get_tool
from segloop.tools.interpolate import drawn_slices, interpolate_slices, signed_distance

EVERY = 5


def every_fifth(label: np.ndarray):
    """The drawn volume (every 5th slice of ``label``) and the mask of slices not given."""
    given = np.zeros_like(label)
    given[::EVERY] = label[::EVERY]
    unseen = np.ones(label.shape[0], bool)
    unseen[::EVERY] = False
    return given, unseen


def test_signed_distance_is_negative_inside_and_spacing_aware():
    m = np.zeros((5, 5), bool)
    m[1:4, 1:4] = True
    d = signed_distance(m, (2.0, 1.0))
    assert d[2, 2] == -2.0 and d[2, 0] == 1.0 and d[0, 2] == 2.0


def test_between_two_identical_disks_every_slice_is_the_disk():
    d = disk((32, 32), (15.5, 14.0), 9.0)
    vol = np.zeros((7, 32, 32), np.uint8)
    vol[0] = vol[6] = d
    out = interpolate_slices(vol)
    assert all(np.array_equal(out[k], d) for k in range(7))


def test_between_a_disk_and_a_shifted_disk_the_middle_is_halfway():
    vol = np.zeros((5, 40, 60), np.uint8)
    vol[0] = disk((40, 60), (20, 20), 8.0)
    vol[4] = disk((40, 60), (20, 32), 8.0)
    out = interpolate_slices(vol)
    centres = [ndi.center_of_mass(out[k])[1] for k in range(5)]
    assert centres[2] == pytest.approx(26, abs=0.1) and centres == sorted(centres)
    assert centres[1] + centres[3] == pytest.approx(52, abs=0.1)  # symmetric about halfway
    # halfway, the mean of two cone-shaped distance maps is zero on the ellipse with foci
    # at the two centres and major semi-axis 8: |p - c1| + |p - c2| <= 16
    y, x = np.ogrid[:40, :60]
    ellipse = np.hypot(y - 20, x - 20) + np.hypot(y - 20, x - 32) <= 16
    assert dice(out[2], ellipse) > 0.95
    assert out[2].sum() < vol[0].sum()


def test_one_blob_splitting_into_two():
    vol = np.zeros((9, 30, 50), np.uint8)
    vol[0][(disk((30, 50), (15, 25), 11.0))] = 1
    vol[8][disk((30, 50), (15, 12), 7.0) | disk((30, 50), (15, 38), 7.0)] = 1
    out = interpolate_slices(vol)
    counts = [ndi.label(out[k])[1] for k in range(9)]
    assert counts[0] == counts[1] == 1 and counts[7] == counts[8] == 2
    assert counts == sorted(counts)  # once split, it stays split
    assert all(out[k].any() for k in range(9))


def test_several_labels_each_interpolated_and_competing_fairly():
    vol = np.zeros((5, 20, 40), np.uint16)
    vol[0][disk((20, 40), (10, 10), 6.0)] = 1
    vol[4][disk((20, 40), (10, 12), 6.0)] = 1
    vol[0][disk((20, 40), (10, 30), 6.0)] = 300
    vol[4][disk((20, 40), (10, 24), 6.0)] = 300  # grows into the space between them
    out = interpolate_slices(vol)
    assert out.dtype == np.uint16 and set(np.unique(out)) == {0, 1, 300}
    for k in range(5):
        assert ndi.label(out[k] == 1)[1] == 1 and ndi.label(out[k] == 300)[1] == 1
    assert ndi.center_of_mass(out[2] == 1)[1] == pytest.approx(11, abs=0.5)
    assert ndi.center_of_mass(out[2] == 300)[1] == pytest.approx(27, abs=0.5)


def test_a_label_missing_from_the_next_drawn_slice_ends_halfway():
    vol = np.zeros((9, 21, 21), np.uint8)
    vol[0][disk((21, 21), (10, 10), 6.0)] = 1
    vol[8, 0, 0] = 2  # slice 8 is drawn, label 1 is absent there
    out = interpolate_slices(vol)
    areas = [(out[k] == 1).sum() for k in range(9)]
    assert areas[0] > areas[2] > areas[3] > 0 and areas[5:] == [0, 0, 0, 0]
    # label 2, absent from slice 0, starts halfway the same way
    assert out[1:8, 0, 0].tolist() == [0, 0, 0, 2, 2, 2, 2]


def test_any_axis_gives_the_transposed_result():
    rng = np.random.default_rng(0)
    vol = np.zeros((11, 24, 20), np.uint8)
    for k in (0, 5, 10):
        vol[k] = ndi.gaussian_filter(rng.random((24, 20)), 2) > 0.5
    out0 = interpolate_slices(vol, axis=0, spacing=(3.0, 1.0, 0.5))
    for axis, order in ((1, (1, 0, 2)), (2, (1, 2, 0))):
        moved = np.transpose(vol, order)
        sp = tuple(np.array([3.0, 1.0, 0.5])[list(order)])
        out = interpolate_slices(moved, axis=axis, spacing=sp)
        assert np.array_equal(np.transpose(out, np.argsort(order)), out0)


def test_no_extrapolation_and_given_slices_stay_as_drawn():
    vol = np.zeros((10, 12, 12), np.uint8)
    vol[3, 2:6, 2:6] = 1
    vol[6, 3:9, 3:9] = 1
    out = interpolate_slices(vol)
    assert out[:3].sum() == 0 and out[7:].sum() == 0
    assert np.array_equal(out[[3, 6]], vol[[3, 6]])
    assert drawn_slices(vol).tolist() == [3, 6]


def test_explicit_slices_replace_the_slices_between():
    vol = np.zeros((7, 8, 8), np.uint8)
    vol[0, 2:6, 2:6] = 1
    vol[3, 0, 0] = 1  # not given: replaced by the interpolation
    out = interpolate_slices(vol, slices=[0, 6])
    assert out[3, 0, 0] == 0 and out[6].sum() == 0 and out[1].sum() > 0


def test_spec_takes_axis_names():
    vol = np.zeros((5, 6, 7), np.uint8)
    vol[:, 1:4, 0] = 1
    vol[:, 2:5, 6] = 1
    out = get_tool("interpolate").apply(None, vol, spacing=None, axis="x")
    assert np.array_equal(out, interpolate_slices(vol, axis=2))
    assert out[:, :, 3].sum() > 0


@pytest.mark.parametrize(("dataset", "case_index"), [
    ("brats2013", 0), ("brats2013", 2), ("left_atrium_h5", 0), ("left_atrium_h5", 5)])
def test_real_labels_with_every_fifth_slice_reach_dice_090(dataset, case_index):
    if not shared(dataset).exists():
        pytest.skip(f"shared data not found: {shared(dataset)}")
    case = open_dataset(shared(dataset)).cases[case_index]
    label = case.read_label()
    truth = (label.array > 0).astype(np.uint8)  # BRATS: the whole tumour
    given, unseen = every_fifth(truth)
    out = interpolate_slices(given, spacing=label.spacing)
    score = dice(out[unseen], truth[unseen])
    assert score >= 0.9, score


@needs_shared("brats2013")
def test_brats_subregions_interpolate_as_several_labels():
    label = open_dataset(shared("brats2013")).cases[1].read_label().array
    given, unseen = every_fifth(label)
    out = interpolate_slices(given)
    assert set(np.unique(out)) == set(np.unique(label))
    assert dice(out[unseen] > 0, label[unseen] > 0) > 0.9


@pytest.mark.parametrize(("label", "kwargs", "message"), [
    (np.zeros((4, 4), np.uint8), {}, r"3D array, got shape \(4, 4\)"),
    (np.zeros((4, 4, 4), np.uint8), {}, r"at least 2 slices across axis 0, got slices \[\]"),
    (np.zeros((4, 4, 4), np.uint8), {"axis": 3}, "axis must be 0, 1 or 2 on a volume, got axis=3"),
    (np.zeros((4, 4, 4), np.uint8), {"slices": [0, 4]}, "slices must be distinct slice indices"),
    (np.zeros((4, 4, 4), np.uint8), {"slices": [1, 1]}, "slices must be distinct"),
    (np.zeros((4, 4, 4), np.uint8), {"slices": [0.5, 2]}, "slices must be distinct"),
    (np.zeros((4, 4, 4), np.uint8), {"slices": [0, 2], "spacing": (1, 1)}, "spacing must be 3"),
    (np.full((4, 4, 4), -1), {}, "negative"),
])
def test_bad_arguments_are_named(label, kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        interpolate_slices(label, **kwargs)


def test_spec_refuses_bad_axis_and_missing_label():
    spec = get_tool("interpolate")
    with pytest.raises(InvalidArgumentError, match="axis must be 0, 1, 2 or z, y, x"):
        spec.apply(None, np.zeros((3, 3, 3), np.uint8), spacing=None, axis="w")
    with pytest.raises(InvalidArgumentError, match="edits a label map"):
        spec.apply(np.zeros((3, 3, 3)), None, spacing=None)


def test_spec_accepts_and_ignores_a_colour_axis():
    vol = np.zeros((5, 6, 7), np.uint8)
    vol[0, 1:4, 1:4] = vol[4, 2:5, 2:5] = 1
    rgb = np.zeros((*vol.shape, 3), np.uint8)
    out = get_tool("interpolate").apply(rgb, vol, spacing=None, channel_axis=-1)
    assert np.array_equal(out, interpolate_slices(vol))
