import edt
import numpy as np
import pytest

from conftest import needs_shared, shared
from segloop.data import disk, phantom_2d, phantom_3d
from segloop.errors import InvalidArgumentError
from segloop.io import open_dataset
from segloop.metrics import dice
from segloop.tools import get_tool
from segloop.tools.regiongrow import intensity_range, region_grow

BRATS = ("brats2013", "brats_2013_pat0003_1")


def step_image():
    img = np.zeros((6, 8))
    img[:, 4:] = 10.0  # a sharp edge between columns 3 and 4
    img[:, :4] += np.arange(4) * 0.5  # a gentle ramp on the dark side
    return img


def test_growing_stops_at_an_edge_and_covers_the_ramp():
    out = region_grow(step_image(), [3, 0], tolerance=2.0)
    expected = np.zeros((6, 8), bool)
    expected[:, :4] = True
    assert np.array_equal(out, expected)


def test_tolerance_is_measured_from_the_seed_values():
    img = step_image()
    # seeds at 0 and 0.5: range [-0.5, 1.0] keeps columns 0..2 (values 0, 0.5, 1.0)
    out = region_grow(img, [[0, 0], [5, 1]], tolerance=0.5)
    assert np.array_equal(np.unique(np.nonzero(out)[1]), [0, 1, 2])
    assert intensity_range(img[..., None], np.array([[0, 0], [5, 1]]), tolerance=0.5,
                           relative=False) == (pytest.approx([-0.5]), pytest.approx([1.0]))


def test_connectivity_decides_whether_a_diagonal_joins():
    img = np.zeros((3, 3))
    img[0, 0] = img[1, 1] = img[2, 2] = 1.0
    assert region_grow(img, [0, 0], tolerance=0.1).sum() == 1
    assert region_grow(img, [0, 0], tolerance=0.1, connectivity=2).sum() == 3


def test_max_radius_is_a_physical_disk_around_the_seed():
    img = np.zeros((21, 21))
    out = region_grow(img, [10, 10], tolerance=0, max_radius_mm=4.0, spacing=(2.0, 1.0))
    assert np.array_equal(out, disk((21, 21), (10, 10), 4.0, spacing=(2.0, 1.0)))


def test_many_seeds_with_a_radius_use_the_distance_transform():
    img = np.zeros((30, 30))
    seeds = [[15, x] for x in range(5, 25)]
    out = region_grow(img, seeds, tolerance=0, max_radius_mm=3.0)
    marks = np.ones((30, 30), bool)
    marks[15, 5:25] = False
    assert np.array_equal(out, edt.edt(marks) <= 3.0)


def test_mask_limits_the_region():
    img = np.zeros((5, 5))
    mask = np.zeros((5, 5), bool)
    mask[:, :2] = True
    assert np.array_equal(region_grow(img, [2, 0], tolerance=1, mask=mask), mask)


def test_relative_tolerance_grows_a_noisy_phantom_blob():
    ph = phantom_2d((128, 128), seed=1, n_blobs=1, weak_edges=False, thin_structures=False,
                    noise=0.03, bias=0.0)
    seed = np.unravel_index(np.argmax(edt.edt(ph.label == 1)), ph.label.shape)
    out = region_grow(ph.image, seed, relative=True, tolerance=4.0)
    assert dice(out, ph.label == 1) > 0.95


def test_default_tolerance_is_relative_and_growing_works_in_3d():
    ph = phantom_3d((32, 48, 48), seed=0, n_blobs=1, weak_edges=False, thin_structures=False,
                    noise=0.01, bias=0.0)
    seed = np.unravel_index(np.argmax(edt.edt(ph.label == 1)), ph.label.shape)
    assert np.array_equal(region_grow(ph.image, seed),
                          region_grow(ph.image, seed, tolerance=2.5, relative=True))
    # the blob's blurred rim (partial volume) needs a wide range around the flat core
    out = region_grow(ph.image, seed, tolerance=10, relative=True, spacing=(1.0, 1.0, 1.0))
    assert dice(out, ph.label == 1) > 0.95


def test_colour_image_uses_every_channel():
    rgb = np.zeros((6, 6, 3))
    rgb[:, :3] = (1.0, 0.0, 0.0)  # red left half
    rgb[:, 3:] = (1.0, 0.0, 1.0)  # magenta right half: same red channel
    out = region_grow(rgb, [2, 0], tolerance=0.2, channel_axis=-1)
    assert np.array_equal(np.unique(np.nonzero(out)[1]), [0, 1, 2])


def test_spec_paints_value_into_the_label():
    img = step_image()
    label = np.zeros((6, 8), np.uint8)
    label[0, 7] = 3
    out = get_tool("regiongrow").apply(img, label, spacing=(1.0, 1.0), seeds=[[3, 0]],
                                       tolerance=2.0, value=2)
    assert (out == 2).sum() == 24 and out[0, 7] == 3


@needs_shared(*BRATS)
def test_region_growing_on_flair_finds_the_whole_tumour():
    case = next(c for c in open_dataset(shared("brats2013")).cases if c.id == BRATS[1])
    flair, truth = case.read_image().array, case.read_label().array > 0
    seed = np.unravel_index(np.argmax(edt.edt(truth)), truth.shape)
    out = region_grow(flair, seed, tolerance=1.5, spacing=(1.0, 1.0, 1.0))
    score = dice(out, truth)
    assert score >= 0.9, score


@pytest.mark.parametrize(("seeds", "kwargs", "message"), [
    ([[9, 0]], {}, r"seeds has a point \[9.0, 0.0\] outside the image"),
    ([], {}, "seeds must be one or more points"),
    ([[1, 1, 1]], {}, "seeds must be one or more points of 2"),
    ([[1, 1]], {"tolerance": -1}, "tolerance must be a number"),
    ([[1, 1]], {"connectivity": 3}, "connectivity must be an integer in 1..2"),
    ([[1, 1]], {"max_radius_mm": 0}, "max_radius_mm must be a number"),
    ([[1, 1]], {"spacing": (1.0,)}, "spacing must be 2 positive numbers"),
    ([[1, 1]], {"mask": np.eye(6, 8, k=2, dtype=bool)}, r"seeds has a point \[1.0, 1.0\] "
                                                          "outside mask"),
    ([[1, 1]], {"channel_axis": 5}, "channel_axis=5 is not an axis"),
])
def test_bad_arguments_are_named(seeds, kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        region_grow(step_image(), seeds, **kwargs)


def test_bad_images_are_refused():
    with pytest.raises(InvalidArgumentError, match="NaN/Inf"):
        region_grow(np.full((3, 3), np.nan), [1, 1], tolerance=1)
    with pytest.raises(InvalidArgumentError, match="2D or 3D"):
        region_grow(np.zeros(5), [1], tolerance=1)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"relative": "no"}, "relative must be true or false, got relative='no'"),
    ({"relative": 1}, "relative must be true or false, got relative=1"),
    ({"tolerance": None, "relative": "yes"}, "relative must be true or false"),
    ({"connectivity": True}, "connectivity must be an integer in 1..2, got connectivity=True"),
    ({"channel_axis": True}, "channel_axis=True is not an axis"),
])
def test_truthy_non_bools_and_bool_integers_are_refused(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        region_grow(step_image(), [1, 1], **{"tolerance": 1.0, **kwargs})


@pytest.mark.parametrize("seeds", [[["1", "1"]], [[True, False]], [[None, 1]]])
def test_seeds_must_be_numbers(seeds):
    with pytest.raises(InvalidArgumentError, match="seeds must be one or more points"):
        region_grow(step_image(), seeds, tolerance=1.0)


def test_a_radius_beyond_the_image_is_the_unlimited_region():
    img = step_image()
    whole = region_grow(img, [3, 0], tolerance=2.0)
    for radius in (1e9, 1e300):
        assert np.array_equal(region_grow(img, [3, 0], tolerance=2.0, max_radius_mm=radius), whole)
