import math

import numpy as np
import pytest
from scipy import ndimage

from segloop.errors import InvalidArgumentError
from segloop.metrics import (
    assd,
    hausdorff,
    hausdorff95,
    surface_distances,
    surface_mask,
    surface_scores,
)

SURFACE_METRICS = {"hd95": hausdorff95, "hausdorff": hausdorff, "assd": assd}


def points(shape, *coords):
    mask = np.zeros(shape, bool)
    for c in coords:
        mask[c] = True
    return mask


# ---------------------------------------------------------------- the surface
def test_surface_uses_face_neighbours_and_the_array_border():
    mask = np.ones((5, 5), bool)
    mask[1, 1] = False  # a one-voxel hole
    expected = np.zeros((5, 5), bool)
    expected[[0, -1], :] = expected[:, [0, -1]] = True  # the array border is background
    expected[1, 2] = expected[2, 1] = True  # face neighbours of the hole
    # (2, 2) touches the hole only diagonally: not surface with face connectivity
    assert np.array_equal(surface_mask(mask), expected)
    assert not surface_mask(mask)[2, 2]


def test_surface_of_a_cube_is_its_26_outer_voxels():
    cube = np.zeros((5, 5, 5), bool)
    cube[1:4, 1:4, 1:4] = True
    surf = surface_mask(cube)
    assert surf.sum() == 26
    assert not surf[2, 2, 2]


# ------------------------------------------------------ hand-computed answers
def test_single_voxels_isotropic_and_anisotropic():
    pred = points((5, 5), (0, 0))
    truth = points((5, 5), (3, 4))
    for fn in SURFACE_METRICS.values():
        assert fn(pred, truth) == 5.0
        # spacing (2.0, 0.5): sqrt((3 * 2.0) ** 2 + (4 * 0.5) ** 2) = sqrt(40)
        assert fn(pred, truth, spacing=(2.0, 0.5)) == pytest.approx(math.sqrt(40), abs=1e-12)


def test_anisotropy_changes_which_point_is_nearest():
    pred = points((3, 4), (0, 0))
    truth = points((3, 4), (2, 0), (0, 3))
    # isotropic: (0,0) is nearest to (2,0) at 2; back: (2,0) -> 2, (0,3) -> 3
    d = surface_distances(pred, truth)
    assert d.pred_to_truth.tolist() == [2.0]
    assert d.truth_to_pred.tolist() == [3.0, 2.0]  # C order: (0,3) before (2,0)
    assert hausdorff(pred, truth) == 3.0
    assert hausdorff95(pred, truth) == pytest.approx(2 + 0.95 * (3 - 2), abs=1e-12)
    assert assd(pred, truth) == pytest.approx((2 + 3 + 2) / 3, abs=1e-12)
    # spacing (2.0, 0.5): (0,3) is now nearest, at 3 * 0.5 = 1.5; (2,0) is at 2 * 2.0 = 4
    d = surface_distances(pred, truth, spacing=(2.0, 0.5))
    assert d.pred_to_truth.tolist() == [1.5]
    assert d.truth_to_pred.tolist() == [1.5, 4.0]
    assert hausdorff(pred, truth, spacing=(2.0, 0.5)) == 4.0
    # directed P95 of [1.5, 4.0] with linear interpolation: 1.5 + 0.95 * 2.5
    assert hausdorff95(pred, truth, spacing=(2.0, 0.5)) == pytest.approx(3.875, abs=1e-12)
    assert assd(pred, truth, spacing=(2.0, 0.5)) == pytest.approx((1.5 + 1.5 + 4.0) / 3)


def test_two_lines_with_percentile_interpolation():
    # truth: row 0, columns 0..3; pred: row 2, columns 0..5 (thin lines are all surface)
    truth = np.zeros((3, 6), bool)
    truth[0, 0:4] = True
    pred = np.zeros((3, 6), bool)
    pred[2, 0:6] = True
    sy, sx = 2.0, 0.5
    near, off1, off2 = 2 * sy, math.hypot(2 * sy, sx), math.hypot(2 * sy, 2 * sx)
    d = surface_distances(pred, truth, spacing=(sy, sx))
    np.testing.assert_allclose(d.pred_to_truth, [near] * 4 + [off1, off2], rtol=1e-12)
    np.testing.assert_allclose(d.truth_to_pred, [near] * 4, rtol=1e-12)
    # P95 of 6 sorted values sits at index 0.95 * 5 = 4.75
    p95 = off1 + 0.75 * (off2 - off1)
    scores = surface_scores(pred, truth, spacing=(sy, sx))
    assert scores["hd95"] == pytest.approx(p95, abs=1e-12)
    assert scores["hausdorff"] == pytest.approx(math.sqrt(17), abs=1e-12)
    assert scores["assd"] == pytest.approx((8 * near + off1 + off2) / 10, abs=1e-12)
    # isotropic: 2, sqrt(5), sqrt(8)
    assert hausdorff(pred, truth) == pytest.approx(math.sqrt(8), abs=1e-12)
    assert assd(pred, truth) == pytest.approx((16 + math.sqrt(5) + math.sqrt(8)) / 10)


def test_square_shifted_along_x():
    truth = np.zeros((6, 7), bool)
    truth[1:4, 1:4] = True
    pred = np.roll(truth, 2, axis=1)
    # per direction the 8 surface voxels have distances 0,0,0,1,1,2,2,2 (in columns)
    assert assd(pred, truth) == pytest.approx(16 / 16)
    assert hausdorff(pred, truth) == 2.0
    assert hausdorff95(pred, truth) == 2.0  # 3 of 8 values are 2 -> P95 is exactly 2
    # y spacing does not matter (all nearest points are in the same row), x spacing scales
    assert assd(pred, truth, spacing=(7.0, 0.25)) == pytest.approx(0.25)
    assert hausdorff95(pred, truth, spacing=(7.0, 0.25)) == 0.5


def test_3d_parallel_planes():
    truth = np.zeros((4, 3, 4), bool)
    truth[0, 0:3, 0:3] = True  # 9 voxels
    pred = np.zeros((4, 3, 4), bool)
    pred[3, 0:3, 0:4] = True  # 12 voxels, 3 of them beyond the truth in x
    spacing = (2.0, 1.0, 0.5)
    far = math.sqrt(6.0**2 + 0.5**2)
    d = surface_distances(pred, truth, spacing=spacing)
    assert sorted(d.pred_to_truth.tolist()) == pytest.approx([6.0] * 9 + [far] * 3)
    assert d.truth_to_pred.tolist() == [6.0] * 9
    assert hausdorff(pred, truth, spacing=spacing) == pytest.approx(far)
    assert hausdorff95(pred, truth, spacing=spacing) == pytest.approx(far)  # index 10.45 of 12
    assert assd(pred, truth, spacing=spacing) == pytest.approx((18 * 6.0 + 3 * far) / 21)
    assert hausdorff(pred, truth) == pytest.approx(math.sqrt(10))  # isotropic


def test_identical_masks_are_at_distance_zero_and_metrics_are_symmetric():
    rng = np.random.default_rng(3)
    a = ndimage.gaussian_filter(rng.random((20, 22)), 2) > 0.5
    b = np.roll(a, (1, 3), axis=(0, 1))
    for name, fn in SURFACE_METRICS.items():
        assert fn(a, a, spacing=(1.5, 0.7)) == 0.0, name
        assert fn(a, b, spacing=(1.5, 0.7)) == fn(b, a, spacing=(1.5, 0.7)), name


# ------------------------------------------------- brute-force cross-check
def brute_surface(mask):
    """Voxels with a face neighbour outside the mask (or outside the array)."""
    padded = np.pad(mask, 1)
    inner = tuple(slice(1, -1) for _ in range(mask.ndim))
    interior = mask.copy()
    for axis in range(mask.ndim):
        for shift in (-1, 1):
            interior &= np.roll(padded, shift, axis=axis)[inner]
    return mask & ~interior


def brute_directed(source, target, spacing):
    a = np.argwhere(brute_surface(source)) * np.asarray(spacing)
    b = np.argwhere(brute_surface(target)) * np.asarray(spacing)
    pairwise = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))
    return pairwise.min(axis=1)


def blob(rng, shape, sigma, fraction):
    smooth = ndimage.gaussian_filter(rng.random(shape), sigma)
    return smooth > np.quantile(smooth, 1 - fraction)


@pytest.mark.parametrize(
    ("shape", "spacing", "seed"),
    [
        ((40, 36), (1.0, 1.0), 0),
        ((40, 36), (2.0, 0.5), 1),
        ((31, 45), (0.3, 1.7), 2),
        ((12, 16, 18), (3.0, 0.8, 0.8), 3),
        ((14, 13, 15), (1.0, 2.5, 0.6), 4),
    ],
)
def test_against_brute_force_all_pairs(shape, spacing, seed):
    rng = np.random.default_rng(seed)
    truth = blob(rng, shape, 2.0, 0.3)  # several blobs, some touch the array border
    pred = blob(rng, shape, 2.0, 0.25)
    forward = brute_directed(pred, truth, spacing)
    backward = brute_directed(truth, pred, spacing)
    d = surface_distances(pred, truth, spacing=spacing)
    np.testing.assert_allclose(d.pred_to_truth, forward, rtol=1e-12)
    np.testing.assert_allclose(d.truth_to_pred, backward, rtol=1e-12)
    expected = {
        "hd95": max(np.percentile(forward, 95), np.percentile(backward, 95)),
        "hausdorff": max(forward.max(), backward.max()),
        "assd": (forward.sum() + backward.sum()) / (forward.size + backward.size),
    }
    for name, fn in SURFACE_METRICS.items():
        assert fn(pred, truth, spacing=spacing) == pytest.approx(expected[name], rel=1e-12)
    assert surface_scores(pred, truth, spacing=spacing) == pytest.approx(expected, rel=1e-12)


def test_cropping_to_the_masks_changes_nothing():
    rng = np.random.default_rng(5)
    small_truth = blob(rng, (10, 12, 9), 1.5, 0.3)
    small_pred = blob(rng, (10, 12, 9), 1.5, 0.3)
    big_truth = np.zeros((30, 30, 30), bool)
    big_pred = np.zeros((30, 30, 30), bool)
    big_truth[7:17, 5:17, 11:20] = small_truth
    big_pred[7:17, 5:17, 11:20] = small_pred
    spacing = (2.0, 1.0, 0.5)
    assert surface_scores(big_pred, big_truth, spacing=spacing) == surface_scores(
        small_pred, small_truth, spacing=spacing
    )


# ------------------------------------------------------------- empty masks
def test_both_empty_gives_zero():
    empty = np.zeros((4, 5, 6), bool)
    d = surface_distances(empty, empty)
    assert d.pred_to_truth.size == 0 and d.truth_to_pred.size == 0
    for name, fn in SURFACE_METRICS.items():
        assert fn(empty, empty) == 0.0, name


@pytest.mark.parametrize("empty_side", ["pred", "truth"])
def test_one_empty_gives_inf(empty_side):
    mask = np.zeros((6, 6), bool)
    mask[2:4, 1:5] = True  # 8 voxels, all on the surface
    empty = np.zeros_like(mask)
    pred, truth = (empty, mask) if empty_side == "pred" else (mask, empty)
    for name, fn in SURFACE_METRICS.items():
        assert fn(pred, truth, spacing=(1.0, 2.0)) == math.inf, name
    d = surface_distances(pred, truth)
    to_empty = d.truth_to_pred if empty_side == "pred" else d.pred_to_truth
    from_empty = d.pred_to_truth if empty_side == "pred" else d.truth_to_pred
    assert to_empty.tolist() == [math.inf] * 8
    assert from_empty.size == 0


# ------------------------------------------------------------ bad arguments
@pytest.mark.parametrize(
    "spacing", [(1.0,), (1.0, 1.0, 1.0), (1.0, 0.0), (1.0, -2.0), (1.0, math.nan), "ab"]
)
def test_bad_spacing_is_refused(spacing):
    mask = np.ones((3, 3), bool)
    with pytest.raises(InvalidArgumentError, match="spacing"):
        hausdorff95(mask, mask, spacing=spacing)


def test_shape_mismatch_is_refused():
    with pytest.raises(InvalidArgumentError, match=r"\(3, 3\).*\(3, 4\)"):
        assd(np.ones((3, 3)), np.ones((3, 4)))
