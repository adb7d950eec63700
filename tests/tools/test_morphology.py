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
