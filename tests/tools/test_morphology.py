import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import needs_shared, shared
from segloop.errors import InvalidArgumentError
from segloop.io import open_dataset
from segloop.metrics import dice
from segloop.tools import get_tool
from segloop.tools.morphology import closing, gaussian, grow, median, opening, shrink
from segloop.tools.smooth import OPERATIONS, smooth

SPACING = (2.0, 0.8, 1.1)


def blob(shape=(8, 14, 12), seed=0):
    rng = np.random.default_rng(seed)
    mask = ndi.gaussian_filter(rng.random(shape), 1.5) > 0.5
    mask[0, 0, 0] = True  # one voxel on the border corner
    return mask


def distances(a: np.ndarray, b: np.ndarray, spacing) -> np.ndarray:
    """Brute force: for every voxel of the grid, the distance to the nearest voxel of ``b``."""
    grid = np.argwhere(np.ones(a.shape, bool)) * spacing
    pts = np.argwhere(b) * spacing
    d = np.sqrt(((grid[:, None, :] - pts[None, :, :]) ** 2).sum(-1)).min(axis=1)
    return d.reshape(a.shape)


def test_grow_by_2_mm_is_the_exact_euclidean_dilation():
    mask = blob()
    expected = distances(mask, mask, np.array(SPACING)) <= 2.0
    out = grow(mask.astype(np.uint8), distance_mm=2.0, spacing=SPACING)
    assert np.array_equal(out > 0, expected)
    assert expected.sum() > mask.sum()


def test_shrink_by_2_mm_is_the_exact_euclidean_erosion_inside_the_image():
    mask = blob(seed=1)
    expected = mask & (distances(mask, ~mask, np.array(SPACING)) > 2.0)
    out = shrink(mask.astype(np.uint8), distance_mm=2.0, spacing=SPACING)
    assert np.array_equal(out > 0, expected)


def test_opening_and_closing_compose_grow_and_shrink():
    mask = blob(seed=2).astype(np.uint8)
    kw = {"spacing": SPACING}
    assert np.array_equal(closing(mask, radius_mm=1.5, **kw),
                          shrink(grow(mask, distance_mm=1.5, **kw), distance_mm=1.5, **kw))
    assert np.array_equal(opening(mask, radius_mm=1.5, **kw),
                          grow(shrink(mask, distance_mm=1.5, **kw), distance_mm=1.5, **kw) & mask)


def test_closing_bridges_a_gap_narrower_than_the_ball():
    lab = np.zeros((9, 15), np.uint8)
    lab[2:7, 2:7] = lab[2:7, 8:13] = 1  # two squares one pixel apart
    assert closing(lab, radius_mm=1.0)[4, 7] == 1
    assert opening(closing(lab, radius_mm=1.0), radius_mm=0.5)[4, 7] == 1


def test_median_equals_scipy_median_filter_away_from_the_border():
    mask = blob(seed=3)
    out = median(mask.astype(np.uint8), radius_mm=1.0, spacing=(1.0, 0.5, 1.0))
    expected = ndi.median_filter(mask.astype(np.uint8), size=(3, 5, 3))
    inner = (slice(1, -1), slice(2, -2), slice(1, -1))
    assert np.array_equal(out[inner], expected[inner])


def test_gaussian_smoothing_thresholds_the_blurred_mask():
    mask = blob(seed=4)
    out = gaussian(mask.astype(np.uint8), sigma_mm=1.0, spacing=SPACING)
    blurred = ndi.gaussian_filter(mask.astype(np.float32), 1 / np.array(SPACING), mode="nearest",
                                  truncate=3.0)
    assert np.array_equal(out > 0, blurred > 0.5)


def test_two_labels_grow_into_the_background_and_the_nearer_wins():
    lab = np.zeros((1, 11), np.uint8)
    lab[0, 2], lab[0, 7] = 1, 2
    out = grow(lab, distance_mm=3.0)
    assert out.tolist() == [[1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]]
    assert grow(lab, distance_mm=3.0, value=1).tolist() == [[1, 1, 1, 1, 1, 1, 0, 2, 0, 0, 0]]


def test_shrink_erodes_from_another_label_but_not_from_the_border():
    lab = np.array([[1, 1, 1, 2, 2, 2, 0]], np.uint8)
    assert shrink(lab, distance_mm=1.0).tolist() == [[1, 1, 0, 0, 2, 0, 0]]


def test_smooth_names_every_operation():
    lab = blob(seed=5).astype(np.uint8)
    for op, (fn, keyword) in OPERATIONS.items():
        assert np.array_equal(smooth(lab, operation=op, size_mm=1.0, spacing=SPACING),
                              fn(lab, spacing=SPACING, **{keyword: 1.0})), op
    spec = get_tool("smooth")
    assert np.array_equal(spec.apply(None, lab, spacing=SPACING, operation="grow", size_mm=1.0),
                          grow(lab, distance_mm=1.0, spacing=SPACING))
    with pytest.raises(InvalidArgumentError, match="edits a label map"):
        spec.apply(np.zeros((3, 3)), None, spacing=None, operation="grow", size_mm=1.0)


@needs_shared("left_atrium_h5")
def test_margins_and_smoothing_on_a_real_left_atrium():
    case = open_dataset(shared("left_atrium_h5")).cases[1]
    label = case.read_label()
    lab, sp = label.array.astype(np.uint8), label.spacing
    grown = grow(lab, distance_mm=2.0, spacing=sp)
    assert np.array_equal(shrink(grown, distance_mm=2.0, spacing=sp),
                          closing(lab, radius_mm=2.0, spacing=sp))
    # a 2 mm margin adds a shell of about surface area x 2 mm
    area = (lab.astype(bool) ^ ndi.binary_erosion(lab.astype(bool))).sum() * np.prod(sp) / sp[0]
    added = ((grown > 0).sum() - lab.sum()) * np.prod(sp)
    assert 1.5 * area < added < 2.8 * area
    for op in ("median", "open", "close", "gaussian"):
        score = dice(smooth(lab, operation=op, size_mm=1.0, spacing=sp), lab)
        assert score > 0.97, (op, score)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: smooth(np.ones((3, 3)), operation="blur", size_mm=1), "operation must be one of"),
    (lambda: smooth(np.ones((3, 3)), operation="grow", size_mm=-1), "size_mm must be a number"),
    (lambda: grow(np.ones((3, 3)), distance_mm=1, spacing=(1.0, 0.0)), "spacing must be 2"),
    (lambda: median(np.ones((3, 3)), radius_mm=np.nan), "radius_mm must be a number"),
    (lambda: gaussian(np.ones((3, 3)), sigma_mm="1"), "sigma_mm must be a number"),
    (lambda: shrink(np.ones(3), distance_mm=1), "2D or 3D"),
    (lambda: closing(np.full((3, 3), 1.5), radius_mm=1), "whole numbers"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(InvalidArgumentError, match=message):
        call()


def square(shape=(64, 64)):
    lab = np.zeros(shape, np.uint8)
    lab[20:40, 20:40] = 1
    return lab


@pytest.mark.parametrize("size", [1e9, 1e300])
def test_sizes_beyond_the_image_give_what_the_image_extent_gives(size):
    lab = square()
    diagonal = float(np.hypot(64, 64))
    assert np.all(smooth(lab, operation="grow", size_mm=size) == 1)  # every voxel reached
    assert np.all(smooth(lab, operation="close", size_mm=size) == 1)
    assert not smooth(lab, operation="shrink", size_mm=size).any()
    assert not smooth(lab, operation="open", size_mm=size).any()
    assert np.array_equal(smooth(lab, operation="grow", size_mm=size),
                          grow(lab, distance_mm=diagonal))
    # a median box wider than the image holds the whole image: 400 of 4096 voxels lose the vote
    assert np.array_equal(smooth(lab, operation="median", size_mm=size),
                          median(lab, radius_mm=63))
    big = np.zeros((64, 64), np.uint8)
    big[:, :40] = 1  # 40 of 64 columns: the whole-image vote keeps it everywhere
    assert np.all(smooth(big, operation="median", size_mm=size) == 1)


def test_a_gaussian_longer_than_the_image_is_folded_onto_it_exactly():
    mask = blob(seed=6)
    for sigma_mm in (6.0, 40.0, 300.0):  # kernels of 9 .. 1100 voxels on 8 .. 14 voxel axes
        out = gaussian(mask.astype(np.uint8), sigma_mm=sigma_mm, spacing=SPACING)
        blurred = ndi.gaussian_filter(mask.astype(np.float32), sigma_mm / np.array(SPACING),
                                      mode="nearest", truncate=3.0)
        assert np.array_equal(out > 0, blurred > 0.5), sigma_mm


def test_the_folded_kernel_matches_scipy_explicitly_and_through_erf(monkeypatch):
    from segloop.tools import morphology

    mask = blob(seed=7)
    sigma = np.array([40.0, 2.0, 100.0])
    expected = ndi.gaussian_filter(mask.astype(np.float32), sigma, mode="nearest", truncate=3.0)
    np.testing.assert_allclose(morphology._blur(mask, sigma), expected, atol=1e-6)
    monkeypatch.setattr(morphology, "_EXPLICIT_RADIUS", 10)  # force the erf sums
    np.testing.assert_allclose(morphology._blur(mask, sigma), expected, atol=1e-5)


def test_a_huge_gaussian_returns_without_allocating_the_kernel():
    lab = square()
    for size in (1e6, 1e300):
        # the edges (all background) extended far beyond the square outweigh it everywhere
        assert not smooth(lab, operation="gaussian", size_mm=size).any()
    with pytest.raises(InvalidArgumentError, match="size_mm must be a number"):
        smooth(lab, operation="gaussian", size_mm=float("inf"))


def test_margin_is_the_box_each_operation_edits():
    from segloop.tools.morphology import margin

    sp = (2.0, 0.5)
    assert margin("grow", 2.0, sp, (64, 64)).tolist() == [2, 5]
    assert margin("close", 2.0, sp, (64, 64)).tolist() == [3, 9]
    assert margin("shrink", 2.0, sp, (64, 64)).tolist() == [1, 1]
    assert margin("gaussian", 1.0, sp, (64, 64)).tolist() == [3, 7]
    assert margin("median", 1.0, sp, (64, 64)).tolist() == [1, 5]  # boxes of 1 x 5 voxels
    assert margin("grow", 1e300, sp, (64, 8)).tolist() == [64, 8]
    with pytest.raises(InvalidArgumentError, match="operation must be one of"):
        margin("blur", 1.0, sp, (64, 64))


def test_spec_accepts_and_ignores_a_colour_axis():
    lab = square((9, 9))
    rgb = np.zeros((9, 9, 3), np.uint8)
    out = get_tool("smooth").apply(rgb, lab, spacing=(1.0, 1.0), operation="open", size_mm=1.0,
                                   channel_axis=-1)
    assert np.array_equal(out, opening(lab, radius_mm=1.0))
