"""Rater-vs-consensus scores, the signed boundary bias, pairwise agreement and groups.

Expected values are hand-computed on tiny arrays, computed independently with
``np.logical_and`` counts, or exact for digital discs and spheres of known radii.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from segloop.data.phantoms import ball, disk
from segloop.errors import InvalidArgumentError
from segloop.fusion.agreement import (
    AGREEMENT_KEYS,
    agreement_matrix,
    group_agreement,
    pairwise_dice,
    rater_scores,
    score_summary,
    signed_surface_distance,
)
from segloop.fusion.boundary import surface_field

NAN = float("nan")


def blob(shape, seed: int) -> np.ndarray:
    """A seeded irregular object away from the array border."""
    rng = np.random.default_rng(seed)
    noise = rng.random(shape)
    smooth = ndimage.gaussian_filter(noise, 2.0)
    out = smooth > np.quantile(smooth, 0.6)
    border = np.ones(shape, bool)
    border[tuple(slice(2, -2) for _ in shape)] = False
    return out & ~border


def round_object(shape, centre, radius, spacing):
    return (disk if len(shape) == 2 else ball)(shape, centre, radius, spacing=spacing)


# --------------------------------------------------------------------------- signed distance


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (2.0, 0.7), (3.0, 1.0, 0.5)])
def test_identical_masks_are_at_exactly_zero(spacing):
    mask = blob((20,) * len(spacing), seed=len(spacing))
    assert signed_surface_distance(mask, mask, spacing=spacing) == 0.0
    assert signed_surface_distance(mask.astype(np.uint8), mask, spacing=spacing) == 0.0


def test_shrunk_by_one_voxel_hand_computed():
    # The 3x3 square's inner layer is the 8 voxels around the centre; the field is
    # -(0 + 1)/2 = -0.5 there and -(1 + 2)/2 = -1.5 at the centre, so each of the
    # centre voxel's 4 faces lies at (-1.5 - 0.5)/2 = -1 voxel.
    reference = np.zeros((5, 5), bool)
    reference[1:4, 1:4] = True
    centre = np.zeros_like(reference)
    centre[2, 2] = True
    assert signed_surface_distance(centre, reference) == -1.0
    assert signed_surface_distance(centre, reference, spacing=(0.5, 0.5)) == -0.5
    field = surface_field(reference, (1.0, 1.0))
    assert field[2, 2] == -1.5 and field[1, 2] == -0.5 and field[0, 2] == 0.5


def test_one_voxel_too_long_on_a_row_hand_computed():
    # reference columns 2..4, mask 2..5, one row: the outside of the array is background.
    # Faces of the mask: left end (shared with the reference: 0), right end
    # ((0.5 + 1.5) / 2 = 1), and above/below each column: columns 2-4 shared (0),
    # column 5 at (0.5 + (sqrt(2) + 1) / 2) / 2 on both sides.
    reference = np.zeros((1, 8), bool)
    reference[0, 2:5] = True
    mask = reference.copy()
    mask[0, 5] = True
    side = (0.5 + (math.sqrt(2) + 1) / 2) / 2
    assert signed_surface_distance(mask, reference) == pytest.approx((1.0 + 2 * side) / 10)
    assert signed_surface_distance(reference, mask) < 0


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (2.0, 0.5)])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("k", [-3, -1, 1, 2, 4])
def test_flat_boundary_moved_by_k_voxels_is_exact(spacing, axis, k):
    # A half-plane; the region leaves out the array border, where the plane meets it:
    # the border (background) must be farther than the offset (|k| + 1) * spacing.
    other = 1 - axis
    margin = math.ceil((abs(k) + 1) * spacing[axis] / spacing[other]) + 1
    shape = [30, 30]
    shape[other] = 2 * margin + 4
    index = np.indices(shape)[axis]
    reference = index <= 14
    mask = index <= 14 + k
    region = np.zeros(shape, bool)
    region[tuple(slice(margin, -margin) if a == other else slice(2, -2) for a in range(2))] = True
    got = signed_surface_distance(mask, reference, spacing=spacing, region=region)
    assert got == pytest.approx(k * spacing[axis], abs=1e-12)


@pytest.mark.parametrize(
    ("spacing", "radii"),
    [((1.0, 1.0), (10, 20)), ((2.0, 1.0), (12, 22)), ((1.0, 1.0, 1.0), (8, 12)),
     ((2.0, 1.0, 1.0), (11, 14))],
)  # fmt: skip
@pytest.mark.parametrize("k", [-2, -1, -0.5, 0.5, 1, 2])
def test_concentric_round_objects_are_k_mm_apart(spacing, radii, k):
    # Digital discs/spheres of radius R + k and R around one sub-voxel centre: the true
    # mean signed distance of the two round surfaces is k.  Each digital surface
    # stands within a fraction of a voxel of its round one; averaged over its faces
    # the error is a small fraction of the finest voxel (measured over 30 random
    # discs / 6 spheres per case: mean error at most 0.13, worst single one 0.24
    # with 2:1 pixels).
    ndim = len(spacing)
    shape = (40,) * ndim if ndim == 3 else (64, 64)
    rng = np.random.default_rng(abs(int(10 * k)) + ndim)
    errors = []
    for _ in range(3):
        centre = np.array(shape) / 2 + rng.uniform(-1, 1, ndim)
        radius = rng.uniform(*radii) * min(spacing)
        mask = round_object(shape, centre, radius + k * min(spacing), spacing)
        reference = round_object(shape, centre, radius, spacing)
        errors.append(signed_surface_distance(mask, reference, spacing=spacing) / min(spacing) - k)
    assert abs(np.mean(errors)) <= 0.15
    assert np.max(np.abs(errors)) <= 0.25


def test_far_offsets_are_slightly_underestimated():
    # Documented limit: on oblique and curved boundaries the magnitude of a large
    # offset comes out a few per cent short (about 0.15 voxel at 4 voxels).
    reference = disk((80, 80), (40.3, 39.6), 18)
    for k in (-4, 4):
        got = signed_surface_distance(disk((80, 80), (40.3, 39.6), 18 + k), reference)
        assert np.sign(got) == np.sign(k) and abs(got) <= abs(k)
        assert abs(got - k) <= 0.3


@pytest.mark.parametrize("k", [1, 2, 3])
def test_ball_dilation_and_erosion_by_k_voxels(k):
    # Morphological dilation with a Euclidean ball of radius k (all voxels within
    # k of the object) moves a digital circle by a little less than k; the truth is
    # the change of the radius of the disc of equal area.
    reference = disk((80, 80), (40.4, 39.7), 17.3)
    grown = ndimage.distance_transform_edt(~reference) <= k
    shrunk = ndimage.distance_transform_edt(reference) > k
    for mask, sign in ((grown, 1), (shrunk, -1)):
        truth = math.sqrt(mask.sum() / math.pi) - math.sqrt(reference.sum() / math.pi)
        got = signed_surface_distance(mask, reference)
        assert got == pytest.approx(truth, abs=0.15)
        assert got == pytest.approx(sign * k, abs=0.35)


def test_pure_shift_is_about_zero():
    # A circle of radius R moved by t: the mean over the moved circle of its signed
    # distance |t + R u| - R from the first is about |t|^2 / (4 R) (second order).
    radius, t = 16.0, np.array([3.0, -2.0])
    reference = disk((64, 64), (31.6, 32.2), radius)
    mask = disk((64, 64), (31.6 + t[0], 32.2 + t[1]), radius)
    angles = np.linspace(0, 2 * np.pi, 3600, endpoint=False)
    u = np.stack([np.cos(angles), np.sin(angles)], 1)
    truth = float(np.mean(np.linalg.norm(t + radius * u, axis=1) - radius))
    got = signed_surface_distance(mask, reference)
    assert truth == pytest.approx(0.20, abs=0.01)
    assert got == pytest.approx(truth, abs=0.1)


def test_cropping_and_padding_do_not_change_the_value():
    reference = disk((40, 40), (20.2, 19.5), 9)
    mask = disk((40, 40), (18.7, 21.1), 10.5)
    value = signed_surface_distance(mask, reference, spacing=(1.2, 0.8))
    padded = signed_surface_distance(np.pad(mask, 7), np.pad(reference, 7), spacing=(1.2, 0.8))
    assert padded == pytest.approx(value, abs=1e-12)


def test_region_counts_the_faces_inside_it():
    reference = np.zeros((12, 12), bool)
    reference[3:9, 3:9] = True
    mask = reference.copy()
    mask[3:9, 9] = True  # one column too far on the right ...
    region = np.ones_like(reference)
    assert signed_surface_distance(mask, reference, region=region) == pytest.approx(
        signed_surface_distance(mask, reference)
    )
    region[:, 9:] = False  # ... outside the region: no difference left
    assert signed_surface_distance(mask, reference, region=region) == 0.0
    # The region cuts the mask (one voxel inside the reference on 3 sides) and the
    # reference at column 6: the cut is no boundary of either, every counted face
    # lies exactly one voxel inside the reference.
    region = np.ones_like(reference)
    region[:, 6:] = False
    shrunk = np.zeros_like(reference)
    shrunk[4:8, 4:9] = True
    assert signed_surface_distance(shrunk, reference, region=region) == -1.0
    assert signed_surface_distance(shrunk & region, reference & region, region=region) < -0.5
    # nothing of either inside the region
    assert signed_surface_distance(shrunk, reference, region=~reference & ~shrunk) == 0.0


def test_empty_masks():
    full = np.zeros((6, 6), bool)
    full[2:4, 2:4] = True
    empty = np.zeros_like(full)
    assert signed_surface_distance(empty, empty) == 0.0
    assert math.isnan(signed_surface_distance(full, empty))
    assert math.isnan(signed_surface_distance(empty, full))


def test_signed_distance_bad_input():
    a = np.zeros((5, 5), np.uint8)
    with pytest.raises(InvalidArgumentError, match="reference has shape"):
        signed_surface_distance(a, np.zeros((5, 6)))
    with pytest.raises(InvalidArgumentError, match=r"mask must be a 0/1 mask, found values \[2\]"):
        signed_surface_distance(a + 2, a)
    with pytest.raises(InvalidArgumentError, match="spacing must be 2 positive"):
        signed_surface_distance(a, a, spacing=(1.0, 0.0))
    with pytest.raises(InvalidArgumentError, match="region has shape"):
        signed_surface_distance(a, a, region=np.ones((4, 4), bool))
    with pytest.raises(InvalidArgumentError, match="2D or 3D"):
        signed_surface_distance(np.zeros(5), np.zeros(5))


# --------------------------------------------------------------------------- rater_scores


def test_rater_scores_hand_computed():
    # consensus: 4x4 square (16 voxels) in 8x8 (48 background); rater: 6x6 square.
    consensus = np.zeros((8, 8), np.uint8)
    consensus[2:6, 2:6] = 1
    rater = np.zeros_like(consensus)
    rater[1:7, 1:7] = 1
    scores = rater_scores(rater, consensus, spacing=(0.5, 0.5))
    assert tuple(scores) == AGREEMENT_KEYS
    assert scores["dice"] == pytest.approx(2 * 16 / (16 + 36))
    assert scores["sensitivity"] == 1.0
    assert scores["specificity"] == pytest.approx((48 - 20) / 48)
    assert scores["volume_bias"] == pytest.approx(20 / 16)
    # Each side has 6 faces: 4 along the consensus one voxel out, at (0.5 + 1.5) / 2, and
    # 2 at the corners, at ((sqrt(2) + 1) / 2 + (sqrt(5) + sqrt(2)) / 2) / 2 voxels.
    corner = (math.sqrt(2) + 1 + math.sqrt(5) + math.sqrt(2)) / 4
    assert scores["boundary_bias_mm"] == pytest.approx(0.5 * (4 + 2 * corner) / 6)
    # the region changes specificity: only the 7x7 top-left block counts
    region = np.zeros((8, 8), bool)
    region[:7, :7] = True
    scored = rater_scores(rater, consensus, region=region)
    assert scored["specificity"] == pytest.approx((49 - 36) / (49 - 16))


@pytest.mark.parametrize("with_region", [False, True])
def test_sensitivity_specificity_match_logical_and_counts(with_region):
    rng = np.random.default_rng(7)
    for seed in range(5):
        rater = blob((24, 24), seed)
        consensus = blob((24, 24), seed + 100) | (rater & (rng.random((24, 24)) < 0.5))
        region = rng.random((24, 24)) < 0.8 if with_region else np.ones((24, 24), bool)
        tp = np.logical_and.reduce([rater, consensus, region]).sum()
        fn = np.logical_and.reduce([~rater, consensus, region]).sum()
        tn = np.logical_and.reduce([~rater, ~consensus, region]).sum()
        fp = np.logical_and.reduce([rater, ~consensus, region]).sum()
        scores = rater_scores(rater, consensus, region=region if with_region else None)
        assert scores["sensitivity"] == pytest.approx(tp / (tp + fn))
        assert scores["specificity"] == pytest.approx(tn / (tn + fp))
        assert scores["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert scores["volume_bias"] == pytest.approx((tp + fp - (tp + fn)) / (tp + fn))


def test_rater_scores_empty_conventions():
    empty = np.zeros((4, 4), bool)
    some = empty.copy()
    some[1:3, 1:3] = True
    full = np.ones_like(empty)

    def same(got, expected):
        return all(
            (math.isnan(v) and math.isnan(e)) or v == e
            for v, e in zip(got.values(), expected, strict=True)
        )

    assert same(rater_scores(empty, empty), (1.0, 1.0, 1.0, 0.0, 0.0))
    assert same(rater_scores(some, empty), (0.0, NAN, 12 / 16, math.inf, NAN))
    assert same(rater_scores(empty, some), (0.0, 0.0, 1.0, -1.0, NAN))
    # the consensus covers the whole region: no background to spare
    assert same(rater_scores(full, full), (1.0, 1.0, 1.0, 0.0, 0.0))
    assert math.isnan(rater_scores(some, full)["specificity"])


def test_rater_scores_bad_input():
    a = np.zeros((4, 4))
    with pytest.raises(InvalidArgumentError, match="consensus has shape"):
        rater_scores(a, np.zeros((4, 5)))
    with pytest.raises(InvalidArgumentError, match=r"consensus must be a 0/1 mask.*soft map"):
        rater_scores(a, np.full((4, 4), 0.5))
    with pytest.raises(InvalidArgumentError, match="region is empty"):
        rater_scores(a, a, region=np.zeros((4, 4), bool))
    with pytest.raises(InvalidArgumentError, match="dtype"):
        rater_scores(np.full((4, 4), "x"), a)


# --------------------------------------------------------------------------- over cases


def test_score_summary_hand_computed():
    cases = [
        {"dice": 0.8, "volume_bias": math.inf},
        {"dice": 0.6, "volume_bias": 0.1},
        {"dice": NAN},
    ]
    summary = score_summary(cases)
    assert summary["dice"] == {
        "mean": pytest.approx(0.7), "std": pytest.approx(0.1), "median": pytest.approx(0.7),
        "min": 0.6, "max": 0.8, "n": 2, "n_undefined": 1,
    }  # fmt: skip
    assert summary["volume_bias"]["n"] == 1 and summary["volume_bias"]["n_undefined"] == 1
    assert math.isnan(score_summary([{"dice": NAN}])["dice"]["mean"])
    with pytest.raises(InvalidArgumentError, match="sequence"):
        score_summary({"dice": 1.0})


# --------------------------------------------------------------------------- rater vs rater


def test_pairwise_dice_hand_computed():
    raters = {
        "r2": np.array([[1, 1, 0, 0]]),
        "r1": np.array([[1, 1, 1, 1]]),
        "r3": np.array([[0, 0, 0, 0]]),
        "r4": np.array([[0, 0, 0, 0]]),
    }
    pairs = pairwise_dice(raters)
    assert list(pairs) == [
        ("r1", "r2"), ("r1", "r3"), ("r1", "r4"), ("r2", "r3"), ("r2", "r4"), ("r3", "r4"),
    ]  # fmt: skip
    assert pairs[("r1", "r2")] == pytest.approx(2 * 2 / 6)
    assert pairs[("r1", "r3")] == 0.0
    assert pairs[("r3", "r4")] == 1.0  # both empty
    assert pairwise_dice({"only": np.ones((2, 2))}) == {}


def test_pairwise_dice_bad_input():
    with pytest.raises(InvalidArgumentError, match=r"different shapes: 'a' \(2, 2\), 'b' \(3, 3\)"):
        pairwise_dice({"a": np.ones((2, 2)), "b": np.ones((3, 3))})
    with pytest.raises(InvalidArgumentError, match="rater 'b' must be a 0/1 mask"):
        pairwise_dice({"a": np.ones((2, 2)), "b": np.full((2, 2), 3)})
    with pytest.raises(InvalidArgumentError, match="mapping"):
        pairwise_dice([np.ones((2, 2))])


def test_agreement_matrix_with_missing_raters():
    cases = [
        {("a", "b"): 0.8, ("a", "c"): 0.4, ("b", "c"): 0.5},
        {("b", "a"): 0.6},  # either order
        {("c", "a"): 0.2, ("d", "a"): 0.9},
    ]
    mean, counts = agreement_matrix(cases, ["a", "b", "c", "d"])
    expected = [
        [1.0, 0.7, 0.3, 0.9],
        [0.7, 1.0, 0.5, NAN],
        [0.3, 0.5, 1.0, NAN],
        [0.9, NAN, NAN, 1.0],
    ]
    np.testing.assert_allclose(mean, expected)
    assert counts.tolist() == [[3, 2, 2, 1], [2, 2, 1, 0], [2, 1, 2, 0], [1, 0, 0, 1]]
    assert counts.dtype == np.int64
    empty_mean, empty_counts = agreement_matrix([], ["a", "b"])
    np.testing.assert_array_equal(empty_mean, [[1.0, NAN], [NAN, 1.0]])
    assert empty_counts.tolist() == [[0, 0], [0, 0]]


def test_agreement_matrix_from_pairwise_dice():
    case = {"x": np.eye(4), "y": np.ones((4, 4)), "z": np.eye(4)}
    mean, counts = agreement_matrix([pairwise_dice(case)], ["z", "y", "x"])
    np.testing.assert_allclose(mean, [[1, 0.4, 1], [0.4, 1, 0.4], [1, 0.4, 1]])
    assert counts.tolist() == [[1, 1, 1]] * 3


def test_agreement_matrix_bad_input():
    raters = ["a", "b"]
    with pytest.raises(
        InvalidArgumentError, match=r"per_case_pairs\[1\]: pair .* unknown rater 'q'"
    ):
        agreement_matrix([{("a", "b"): 0.5}, {("a", "q"): 0.5}], raters)
    with pytest.raises(InvalidArgumentError, match="given twice"):
        agreement_matrix([{("a", "b"): 0.5, ("b", "a"): 0.5}], raters)
    with pytest.raises(InvalidArgumentError, match="not a Dice"):
        agreement_matrix([{("a", "b"): NAN}], raters)
    with pytest.raises(InvalidArgumentError, match="not a Dice"):
        agreement_matrix([{("a", "b"): 1.5}], raters)
    with pytest.raises(InvalidArgumentError, match="twice"):
        agreement_matrix([{("a", "a"): 1.0}], raters)
    with pytest.raises(InvalidArgumentError, match="not a pair"):
        agreement_matrix([{"ab": 1.0}], raters)
    with pytest.raises(InvalidArgumentError, match="repeat"):
        agreement_matrix([], ["a", "a"])


def test_group_agreement_hand_computed():
    raters = ["a", "b", "c", "d", "e"]
    matrix = np.array([
        [1.0, 0.9, 0.6, 0.5, 0.4],
        [0.9, 1.0, 0.7, NAN, 0.3],
        [0.6, 0.7, 1.0, 0.8, 0.2],
        [0.5, NAN, 0.8, 1.0, 0.1],
        [0.4, 0.3, 0.2, 0.1, 1.0],
    ])  # fmt: skip
    groups = {"a": "x", "b": "x", "c": "y", "d": "y", "e": "z", "unused": "w"}
    out = group_agreement(matrix, raters, groups)
    # within: (a,b) 0.9, (c,d) 0.8; between: ac .6 ad .5 ae .4 bc .7 be .3 ce .2 de .1 (bd NaN)
    assert out["within"] == pytest.approx(0.85)
    assert out["between"] == pytest.approx((0.6 + 0.5 + 0.4 + 0.7 + 0.3 + 0.2 + 0.1) / 7)
    assert (out["pairs_within"], out["pairs_between"]) == (2, 7)
    assert list(out["per_group"]) == ["x", "y", "z"]
    assert out["per_group"]["x"] == {"raters": ["a", "b"], "within": pytest.approx(0.9), "pairs": 1}
    assert out["per_group"]["z"]["raters"] == ["e"] and out["per_group"]["z"]["pairs"] == 0
    assert math.isnan(out["per_group"]["z"]["within"])
    single = group_agreement(matrix, raters, {r: r for r in raters})
    assert math.isnan(single["within"]) and single["pairs_within"] == 0


def test_group_agreement_bad_input():
    with pytest.raises(InvalidArgumentError, match=r"raters \['b'\] have no group"):
        group_agreement(np.eye(2), ["a", "b"], {"a": "x"})
    with pytest.raises(InvalidArgumentError, match="matrix has shape"):
        group_agreement(np.eye(3), ["a", "b"], {"a": "x", "b": "x"})
    with pytest.raises(InvalidArgumentError, match="sequence of rater ids"):
        group_agreement(np.eye(2), "ab", {"a": "x", "b": "x"})
