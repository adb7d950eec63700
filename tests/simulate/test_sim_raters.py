"""Simulated raters of known bias, and the rater scores that must find the bias again."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from conftest import needs_shared, shared
from segloop.data.phantoms import disk, phantom_3d
from segloop.errors import InvalidArgumentError
from segloop.fusion.agreement import rater_scores
from segloop.simulate.raters import RATER_OPTIONS, simulate_rater, simulated_raters

QUBIQ = ("qubiq_brain_growth_7raters", "brain_growth_7raters.npz")
GROWS = (-2.0, -1.0, 0.0, 1.0, 2.0)


def square(n=12, lo=4, hi=8):
    mask = np.zeros((n, n), bool)
    mask[lo:hi, lo:hi] = True
    return mask


# --------------------------------------------------------------------------- grow and shift


def test_grow_hand_computed():
    # 3x3 square: the 12 face-neighbours are 0.5 voxel outside its surface, the
    # diagonal ones (sqrt(2) + 1) / 2 = 1.21: growing by 1 adds the 12; the centre
    # is (1 + 2) / 2 = 1.5 inside, the rest 0.5: shrinking by 1 keeps the centre.
    mask = square(9, 3, 6)
    grown = simulate_rater(mask, grow_mm=1.0)
    assert grown.sum() == 21 and not grown[2, 2] and grown[2, 3] and grown[4, 2]
    shrunk = simulate_rater(mask, grow_mm=-1.0)
    assert shrunk.sum() == 1 and shrunk[4, 4]
    assert simulate_rater(mask, grow_mm=1.3).sum() == 25  # now the diagonal corners too
    assert simulate_rater(mask, grow_mm=-1.6).sum() == 0


@pytest.mark.parametrize("grow_mm", [-3.0, -1.2, 0.6, 1.0, 2.4])
def test_flat_faces_move_by_grow_rounded_to_voxels(grow_mm):
    # spacing 2 mm along y, 0.5 mm along x: a band's faces move by grow / spacing
    # rounded to whole voxels (the first layer outside is 1 mm out, the next 3 mm...).
    mask = np.zeros((24, 40), bool)
    mask[8:16, :] = True  # a band across the image along x
    out = simulate_rater(mask, grow_mm=grow_mm, spacing=(2.0, 0.5))
    rows = np.flatnonzero(out[:, 20])
    steps = math.floor(grow_mm / 2.0 + 0.5)  # halves round up: -1.5 -> -1, 0.5 -> 1
    assert (rows.min(), rows.max()) == (8 - steps, 15 + steps)
    assert out[:, 20].sum() == rows.size
    # the outside of the array is background: shrinking also eats the band's ends
    assert out[:, 0].any() == (grow_mm > 0)


def test_grow_is_nested_and_zero_is_identity():
    mask = disk((48, 48), (23.4, 24.2), 12.5) & ~disk((48, 48), (20, 30), 5)
    out = [simulate_rater(mask, grow_mm=g, spacing=(1.0, 0.8)) for g in GROWS]
    np.testing.assert_array_equal(out[2], mask)
    for small, big in zip(out, out[1:], strict=False):
        assert not (small & ~big).any() and (big & ~small).any()


@pytest.mark.parametrize("grow", [-3.0, -1.5, 1.0, 2.5])
def test_grow_of_a_disc_matches_the_radius_change(grow):
    # Independent of the measure: the equal-area radius of the grown disc changes by
    # about grow (a digital disc's area fixes its radius to ~0.1 voxel).
    mask = disk((96, 96), (47.3, 48.6), 24.2)
    out = simulate_rater(mask, grow_mm=grow)
    change = math.sqrt(out.sum() / math.pi) - math.sqrt(mask.sum() / math.pi)
    assert change == pytest.approx(grow, abs=0.25)


def test_shift_rounds_to_voxels_and_loses_what_leaves():
    mask = np.zeros((6, 8), bool)
    mask[1:3, 5:8] = True
    out = simulate_rater(mask, shift_mm=(2.2, 1.6), spacing=(1.0, 0.5))  # (2, 3) voxels
    expected = np.zeros_like(mask)
    expected[3:5, 8:] = True  # columns 8.. are outside: all gone
    np.testing.assert_array_equal(out, expected)
    out = simulate_rater(mask, shift_mm=(2.0, -1.5), spacing=(1.0, 0.5))
    expected[3:5, 2:5] = True
    np.testing.assert_array_equal(out, expected)
    assert not simulate_rater(mask, shift_mm=(10.0, 0.0)).any()


# --------------------------------------------------------------------------- misses and extras


@pytest.mark.parametrize("miss", [0.05, 0.2, 0.5])
def test_miss_removes_exactly_that_fraction(miss):
    mask = disk((64, 64), (31.5, 32.5), 20)
    out = simulate_rater(mask, miss=miss, seed=4)
    assert not (out & ~mask).any()
    assert mask.sum() - out.sum() == round(miss * mask.sum())
    # balls, not salt: the missed voxels form few connected pieces
    assert ndimage.label(mask & ~out)[1] <= 1 + 8 * miss * 16


def test_extra_adds_exactly_that_fraction_next_to_the_object():
    mask = disk((64, 64), (31.5, 32.5), 15)
    out = simulate_rater(mask, extra=0.25, seed=2)
    assert not (mask & ~out).any()
    assert out.sum() - mask.sum() == round(0.25 * mask.sum())
    assert ndimage.label(out)[1] == 1  # every blob touches the object


def test_miss_and_extra_are_seeded():
    mask = disk((40, 40), (20, 20), 12)
    a = simulate_rater(mask, miss=0.3, extra=0.2, seed=5)
    np.testing.assert_array_equal(a, simulate_rater(mask, miss=0.3, extra=0.2, seed=5))
    assert (a != simulate_rater(mask, miss=0.3, extra=0.2, seed=6)).any()
    # misses and extras come from separate streams: adding extras keeps the misses
    missed = mask & ~a
    np.testing.assert_array_equal(missed, mask & ~simulate_rater(mask, miss=0.3, seed=5))


def test_blob_size_and_3d():
    mask = np.zeros((12, 20, 20), bool)
    mask[3:9, 5:15, 5:15] = True
    out = simulate_rater(mask, miss=0.1, blob_mm=1.0, spacing=(2.0, 1.0, 1.0), seed=1)
    assert mask.sum() - out.sum() == round(0.1 * mask.sum())


def test_empty_mask_stays_empty():
    empty = np.zeros((8, 8), np.uint8)
    for options in ({"grow_mm": 2.0}, {"miss": 0.5}, {"extra": 0.5}, {"shift_mm": (1, 1)}):
        out = simulate_rater(empty, **options)
        assert out.dtype == bool and not out.any()


def test_simulated_raters_seeds_and_order():
    mask = disk((40, 40), (20, 20), 10)
    specs = {"z": {"miss": 0.2}, "a": {"grow_mm": 1.0, "extra": 0.1}, "copy": {}}
    raters = simulated_raters(mask, specs, spacing=(1.0, 1.0), seed=10)
    assert list(raters) == ["z", "a", "copy"]
    np.testing.assert_array_equal(raters["z"], simulate_rater(mask, miss=0.2, seed=10))
    np.testing.assert_array_equal(
        raters["a"], simulate_rater(mask, grow_mm=1.0, extra=0.1, seed=11)
    )
    np.testing.assert_array_equal(raters["copy"], mask)
    assert set(RATER_OPTIONS) == {"grow_mm", "shift_mm", "miss", "extra", "blob_mm"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"miss": 1.0}, r"miss must be a number in \[0.0, 1.0\)"),
        ({"miss": -0.1}, "miss must be"),
        ({"extra": 1.5}, "extra must be"),
        ({"grow_mm": float("nan")}, "grow_mm must be a number"),
        ({"grow_mm": "2"}, "grow_mm must be a number"),
        ({"shift_mm": (1.0,)}, "shift_mm must be 2 finite numbers"),
        ({"blob_mm": 0.0}, "blob_mm must be > 0"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"spacing": (1.0,)}, "spacing must be 2 positive"),
    ],
)
def test_simulate_rater_bad_arguments(options, message):
    with pytest.raises(InvalidArgumentError, match=message):
        simulate_rater(square(), **options)


def test_simulate_rater_bad_masks_and_specs():
    with pytest.raises(
        InvalidArgumentError, match=r"mask must be a 0/1 mask, found values \[0, 2\]"
    ):
        simulate_rater(square().astype(int) * 2)
    with pytest.raises(InvalidArgumentError, match="2D or 3D"):
        simulate_rater(np.ones(5))
    with pytest.raises(InvalidArgumentError, match="3 new voxels but only 1 are background"):
        simulate_rater(np.array([[1, 1, 1, 0]]), extra=1.0)
    assert simulate_rater(np.array([[1, 1, 0, 0]]), extra=1.0).all()
    with pytest.raises(InvalidArgumentError, match=r"specs\['b'\]: unknown option\(s\) \['grow'\]"):
        simulated_raters(square(), {"a": {}, "b": {"grow": 1.0}})
    with pytest.raises(InvalidArgumentError, match=r"specs\['b'\]: unknown option\(s\) \['seed'\]"):
        simulated_raters(square(), {"b": {"seed": 1}})
    with pytest.raises(InvalidArgumentError, match="rater 'a': miss must be"):
        simulated_raters(square(), {"a": {"miss": 2.0}})
    with pytest.raises(InvalidArgumentError, match="specs must be a mapping"):
        simulated_raters(square(), [{"miss": 0.1}])


# --------------------------------------------------------------------------- recovery


def recovery(mask, spacing, seed):
    """Simulated raters of ``mask``: their scores against it, and the finest voxel."""
    specs = {f"grow{g:+.0f}": {"grow_mm": g} for g in GROWS}
    specs["miss"] = {"miss": 0.2}
    specs["extra"] = {"extra": 0.15}
    raters = simulated_raters(mask, specs, spacing=spacing, seed=seed)
    return {rid: rater_scores(r, mask, spacing=spacing) for rid, r in raters.items()}


def check_recovery(scores, mask, voxel):
    for g in GROWS:
        s = scores[f"grow{g:+.0f}"]
        # the boundary bias is the grow distance, to 0.3 of the finest voxel
        assert s["boundary_bias_mm"] == pytest.approx(g, abs=0.3 * voxel)
        assert np.sign(s["volume_bias"]) == np.sign(g)
        assert (s["sensitivity"] == 1.0) == (g >= 0)
        assert (s["specificity"] == 1.0) == (g <= 0)
    n = int(mask.sum())
    assert scores["miss"]["sensitivity"] == pytest.approx(1 - round(0.2 * n) / n)
    assert scores["miss"]["sensitivity"] == pytest.approx(0.8, abs=1 / n)
    assert scores["miss"]["specificity"] == 1.0 and scores["miss"]["boundary_bias_mm"] < 0
    assert scores["extra"]["volume_bias"] == pytest.approx(round(0.15 * n) / n)
    assert scores["extra"]["sensitivity"] == 1.0 and scores["extra"]["boundary_bias_mm"] > 0


@needs_shared(*QUBIQ)
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (1.0, 0.6)])
def test_recovery_on_qubiq_rater_1(spacing):
    with np.load(shared(*QUBIQ)) as data:
        masks = data["masks"][[0, 12, 25], 0] != 0  # rater 1 of three cases
    for i, mask in enumerate(masks):
        check_recovery(recovery(mask, spacing, seed=i), mask, min(spacing))


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.0, 1.0, 1.0)])
def test_recovery_on_a_3d_phantom(spacing):
    ph = phantom_3d((36, 48, 48), seed=3, spacing=spacing, noise=0.0, thin_structures=False)
    mask = ph.label == ph.labels_of("smooth")[0]
    check_recovery(recovery(mask, spacing, seed=1), mask, min(spacing))
