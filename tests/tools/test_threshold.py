import numpy as np
import pytest
from skimage.filters import threshold_li, threshold_multiotsu, threshold_otsu, threshold_triangle

from conftest import needs_shared, shared
from segloop.data import phantom_2d, phantom_3d
from segloop.errors import InvalidArgumentError
from segloop.io import open_dataset
from segloop.metrics import dice
from segloop.tools import get_tool
from segloop.tools.threshold import suggest_thresholds, threshold

BRATS = ("brats2013", "brats_2013_pat0003_1")


def test_threshold_keeps_both_bounds_and_open_sides():
    img = np.arange(12.0).reshape(3, 4)
    assert np.array_equal(np.flatnonzero(threshold(img, low=3, high=7)), [3, 4, 5, 6, 7])
    assert np.array_equal(np.flatnonzero(threshold(img, low=10)), [10, 11])
    assert np.array_equal(np.flatnonzero(threshold(img, high=1.5)), [0, 1])
    assert np.array_equal(np.flatnonzero(threshold(img, low=5, high=5)), [5])


def test_threshold_stays_inside_the_mask():
    img = np.arange(12.0).reshape(3, 4)
    mask = np.zeros((3, 4), bool)
    mask[2] = True
    assert np.array_equal(np.flatnonzero(threshold(img, low=3, mask=mask)), [8, 9, 10, 11])


def test_otsu_and_multiotsu_equal_scikit_image_on_the_same_histogram():
    img = phantom_2d((96, 96), seed=4).image
    s = suggest_thresholds(img)
    assert s["otsu"] == pytest.approx(threshold_otsu(img), abs=1e-6)
    assert (s["multiotsu_low"], s["multiotsu_high"]) == pytest.approx(
        tuple(threshold_multiotsu(img)), abs=1e-6)
    assert (s["min"], s["max"]) == (float(img.min()), float(img.max()))


def test_li_and_triangle_agree_with_scikit_image_within_a_bin():
    for seed in range(3):
        img = phantom_3d((24, 40, 40), seed=seed).image
        s = suggest_thresholds(img)
        width = (img.max() - img.min()) / 256
        assert abs(s["li"] - threshold_li(img)) <= 1.5 * width
        assert abs(s["triangle"] - threshold_triangle(img)) <= 1.5 * width


def test_suggestions_use_only_the_masked_voxels():
    img = phantom_2d((80, 80), seed=2).image
    mask = np.zeros(img.shape, bool)
    mask[10:60, 5:70] = True
    assert suggest_thresholds(img, mask=mask)["otsu"] == pytest.approx(
        threshold_otsu(img[mask]), abs=1e-6)


def test_otsu_separates_a_phantom_bright_blob():
    ph = phantom_2d((128, 128), seed=0, n_blobs=1, thin_structures=False, weak_edges=False,
                    bias=0.0)
    sel = threshold(ph.image, low=suggest_thresholds(ph.image)["otsu"])
    assert dice(sel, ph.label == 1) > 0.97


def test_spec_writes_value_with_an_automatic_level_and_keeps_the_label():
    img = np.array([[0.0, 0.0, 1.0, 1.0]])
    label = np.array([[5, 0, 0, 0]], np.uint8)
    out = get_tool("threshold").apply(img, label, spacing=(1.0, 1.0), low="otsu", value=2)
    assert out.tolist() == [[5, 0, 2, 2]]
    out = get_tool("threshold").apply(img, None, spacing=(1.0, 1.0))
    assert out.tolist() == [[0, 0, 1, 1]] and out.dtype == np.uint8


@needs_shared(*BRATS)
def test_multiotsu_high_level_of_flair_finds_the_tumour_in_the_brain():
    case = next(c for c in open_dataset(shared("brats2013")).cases if c.id == BRATS[1])
    flair, label = case.read_image().array, case.read_label().array
    brain = flair != flair[0, 0, 0]  # z-scored inside the brain, constant outside
    z = int(np.argmax((label > 0).sum(axis=(1, 2))))
    s = suggest_thresholds(flair[z], mask=brain[z])
    sel = threshold(flair[z], low=s["multiotsu_high"], mask=brain[z])
    score = dice(sel, label[z] > 0)
    assert score > 0.6, score


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "needs low, high or both"),
    ({"low": 5, "high": 1}, "low must not exceed high"),
    ({"low": float("nan")}, "low must be a finite number"),
    ({"low": "otsu"}, "low must be a finite number"),
    ({"low": 0, "mask": np.ones((2, 2), bool)}, "mask has shape"),
    ({"low": 0, "mask": np.zeros((3, 4), bool)}, "mask is empty"),
])
def test_bad_threshold_arguments_are_named(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        threshold(np.zeros((3, 4)), **kwargs)


def test_bad_images_are_refused():
    with pytest.raises(InvalidArgumentError, match="NaN/Inf"):
        threshold(np.array([[0.0, np.nan]]), low=0)
    with pytest.raises(InvalidArgumentError, match="2D or 3D"):
        suggest_thresholds(np.zeros((2, 2, 2, 2)))
    with pytest.raises(InvalidArgumentError, match="one intensity"):
        suggest_thresholds(np.ones((4, 4)))
    with pytest.raises(InvalidArgumentError, match="nbins"):
        suggest_thresholds(np.arange(16.0).reshape(4, 4), nbins=2)
    with pytest.raises(InvalidArgumentError, match="low='mean' is neither"):
        get_tool("threshold").apply(np.arange(4.0).reshape(2, 2), None, spacing=None, low="mean")


def test_colour_image_is_thresholded_on_the_mean_of_its_channels():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 10, 3)).astype(np.uint8)
    grey = rgb.astype(np.float64).mean(axis=-1)
    assert np.array_equal(threshold(rgb, low=120, channel_axis=-1), grey >= 120)
    chw = np.moveaxis(rgb, -1, 0)  # channels first
    assert np.array_equal(threshold(chw, low=120, high=200, channel_axis=0),
                          (grey >= 120) & (grey <= 200))
    assert suggest_thresholds(rgb, channel_axis=-1)["otsu"] == pytest.approx(
        suggest_thresholds(grey)["otsu"], abs=1e-4)
    out = get_tool("threshold").apply(rgb, None, spacing=(1.0, 1.0), channel_axis=-1)
    assert out.shape == (12, 10)
    assert np.array_equal(out > 0, grey >= suggest_thresholds(grey)["otsu"])


@needs_shared("polyps_kvasir", "images")
def test_a_real_colour_photo_is_thresholded_through_the_spec():
    from segloop.io import read_image

    image = read_image(shared("polyps_kvasir", "images", "cju0qkwl35piu0993l0dewei2.jpg"),
                       kind="image")
    assert image.channels and image.array.shape[-1] == 3
    out = get_tool("threshold").apply(image.array, None, spacing=image.spacing, channel_axis=-1)
    grey = image.array.astype(np.float64).mean(axis=-1)
    assert out.shape == image.array.shape[:2]
    assert np.array_equal(out > 0, grey >= suggest_thresholds(grey)["otsu"])
    assert 0.05 < (out > 0).mean() < 0.95


def test_bounds_that_select_nothing_are_refused_with_the_image_range():
    img = np.arange(12.0).reshape(3, 4)
    with pytest.raises(InvalidArgumentError,
                       match=r"low=1000.0, high=None select no voxel: the image's intensities "
                             r"lie in \[0, 11\]"):
        threshold(img, low=1000)
    with pytest.raises(InvalidArgumentError, match=r"low=4.2, high=4.8 select no voxel"):
        threshold(img, low=4.2, high=4.8)
    mask = np.zeros((3, 4), bool)
    mask[0] = True
    with pytest.raises(InvalidArgumentError, match=r"inside mask the image's intensities lie in "
                                                   r"\[0, 3\]"):
        threshold(img, low=5, mask=mask)
    with pytest.raises(InvalidArgumentError, match="select no voxel"):
        get_tool("threshold").apply(img, None, spacing=None, low=1000)


@pytest.mark.parametrize("channel_axis", [True, 3, "last"])
def test_bad_channel_axis_is_named(channel_axis):
    with pytest.raises(InvalidArgumentError, match=f"channel_axis={channel_axis!r} is not an axis"):
        threshold(np.zeros((4, 4, 3)), low=0, channel_axis=channel_axis)
