"""Tests of the seeded synthetic phantoms and the mask primitives."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from segloop.data import (
    BACKGROUND_LEVEL,
    MIN_BLOB_RADIUS,
    Phantom,
    ball,
    box_mask,
    disk,
    phantom_2d,
    phantom_3d,
)
from segloop.errors import InvalidArgumentError

SEEDS = [0, 1, 2, 3, 4]


def _blob_ids(ph: Phantom) -> tuple[int, ...]:
    return ph.labels_of("smooth") + ph.labels_of("weak")


def _boundary_gradient(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean gradient magnitude on the one-voxel rings inside and outside a mask's edge."""
    ring = ndi.binary_dilation(mask) & ~ndi.binary_erosion(mask)
    return float(ndi.gaussian_gradient_magnitude(image.astype(float), 1.0)[ring].mean())


# --------------------------------------------------------------------------- primitives


def test_disk_is_exact():
    expected = np.array(
        [
            [0, 0, 1, 0, 0],
            [0, 1, 1, 1, 0],
            [1, 1, 1, 1, 1],
            [0, 1, 1, 1, 0],
            [0, 0, 1, 0, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(disk((5, 5), (2, 2), 2.0), expected)


def test_disk_is_round_in_physical_units():
    # rows are 2 mm apart, columns 1 mm: radius 2 mm reaches one row but two columns
    mask = disk((5, 5), (2, 2), 2.0, spacing=(2.0, 1.0))
    assert mask[:, 2].sum() == 3
    assert mask[2, :].sum() == 5
    assert mask.sum() == 7


def test_ball_is_exact():
    b = ball((3, 3, 3), (1, 1, 1), 1.0)
    expected = np.zeros((3, 3, 3), dtype=bool)
    expected[1, 1, :] = expected[1, :, 1] = expected[:, 1, 1] = True
    np.testing.assert_array_equal(b, expected)
    assert ball((7, 7, 7), (3, 3, 3), 3.0, spacing=(3.0, 1.0, 1.0))[:, 3, 3].sum() == 3


def test_box_mask_is_half_open():
    mask = box_mask((4, 5), (1, 2), (3, 4))
    assert mask.sum() == 4
    assert mask[1:3, 2:4].all()
    assert box_mask((2, 3, 4), (0, 0, 0), (2, 3, 4)).all()


@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda: disk((5, 5, 5), (2, 2), 1), "shape"),
        (lambda: disk((5, 5), (2, 2, 2), 1), "center"),
        (lambda: disk((5, 5), (2, 2), -1), "radius"),
        (lambda: ball((5, 5, 5), (2, 2, 2), 1, spacing=(1, 0, 1)), "spacing"),
        (lambda: box_mask((4, 4), (2, 2), (2, 3)), "lo"),
        (lambda: box_mask((4, 4), (0, 0), (5, 3)), "hi"),
    ],
)
def test_primitives_reject_bad_arguments(call, word):
    with pytest.raises(InvalidArgumentError, match=word):
        call()


# --------------------------------------------------------------------------- phantom_2d


def test_same_seed_gives_identical_phantoms():
    a, b = phantom_2d(seed=7, texture=0.03), phantom_2d(seed=7, texture=0.03)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label, b.label)
    assert a.info == b.info


def test_different_seeds_differ():
    a, b = phantom_2d(seed=0), phantom_2d(seed=1)
    assert not np.array_equal(a.label, b.label)
    assert not np.array_equal(a.image, b.image)


def test_noise_and_bias_do_not_move_the_labels():
    a = phantom_2d(seed=5, noise=0.0, bias=0.0)
    b = phantom_2d(seed=5, noise=0.2, bias=0.5, noise_kind="rician")
    np.testing.assert_array_equal(a.label, b.label)


def test_types_and_read_only():
    ph = phantom_2d((64, 96), seed=0)
    assert ph.image.shape == ph.label.shape == (64, 96)
    assert ph.image.dtype == np.float32
    assert ph.label.dtype == np.uint8
    assert ph.spacing == (1.0, 1.0)
    assert ph.ndim == 2
    with pytest.raises(ValueError, match="read-only"):
        ph.image[0, 0] = 1.0
    with pytest.raises(AttributeError):
        ph.image = None  # frozen dataclass


@pytest.mark.parametrize("seed", SEEDS)
def test_labels_and_kinds_are_as_documented(seed):
    ph = phantom_2d(seed=seed, n_blobs=4)
    assert set(np.unique(ph.label)) == {0} | set(ph.info)
    assert ph.labels_of("smooth") == (1, 3)
    assert ph.labels_of("weak") == (2, 4)
    assert ph.labels_of("thin") == (5,)
    for k in _blob_ids(ph):
        mask = ph.label == k
        assert ndi.label(mask)[1] == 1  # one piece each
        # fully inside: no blob voxel on the border
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
        # documented minimum size: the boundary is >= MIN_BLOB_RADIUS voxels from the centre
        cy, cx = np.rint(ph.info[k]["centre"]).astype(int)
        r = MIN_BLOB_RADIUS
        assert mask[cy - r : cy + r + 1, cx].all() and mask[cy, cx - r : cx + r + 1].all()


def test_no_weak_blobs_when_weak_edges_off_and_no_thin_when_off():
    ph = phantom_2d(seed=0, n_blobs=3, weak_edges=False, thin_structures=False)
    assert ph.labels_of("smooth") == (1, 2, 3)
    assert ph.labels_of("weak") == ph.labels_of("thin") == ()
    assert set(np.unique(ph.label)) == {0, 1, 2, 3}


def test_zero_blobs_gives_only_thin_structures():
    ph = phantom_2d(seed=0, n_blobs=0)
    assert set(ph.info) == {1}
    assert ph.info[1]["kind"] == "thin"


@pytest.mark.parametrize("seed", SEEDS)
def test_weak_edges_are_weaker(seed):
    ph = phantom_2d(seed=seed, n_blobs=4, noise=0.0, bias=0.0)
    smooth = [_boundary_gradient(ph.image, ph.label == k) for k in ph.labels_of("smooth")]
    weak = [_boundary_gradient(ph.image, ph.label == k) for k in ph.labels_of("weak")]
    assert max(weak) < 0.6 * min(smooth)


def test_weak_edges_are_weaker_under_noise_and_bias():
    ph = phantom_2d(seed=0, n_blobs=2)
    smooth, weak = (_boundary_gradient(ph.image, ph.label == k) for k in (1, 2))
    assert weak < 0.75 * smooth


@pytest.mark.parametrize("seed", SEEDS)
def test_thin_structures_are_thin(seed):
    ph = phantom_2d(seed=seed, n_thin=4)
    (thin_id,) = ph.labels_of("thin")
    thin = ph.label == thin_id
    assert thin.sum() >= 30
    assert ndi.distance_transform_edt(thin).max() <= 2.0
    assert set(ph.info[thin_id]["widths"]) <= {1, 3}
    # two background voxels between a thin structure and any blob
    blobs = np.isin(ph.label, _blob_ids(ph))
    assert not (ndi.binary_dilation(blobs, iterations=2) & thin).any()


@pytest.mark.parametrize(
    ("sigma", "kind"), [(0.05, "gaussian"), (0.1, "gaussian"), (0.05, "rician")]
)
def test_noise_level_matches_sigma_on_flat_background(sigma, kind):
    ph = phantom_2d((160, 160), seed=2, noise=sigma, noise_kind=kind, bias=0.0)
    far = ndi.distance_transform_edt(ph.label == 0) > 8  # clear of every blur tail
    assert far.sum() > 2000
    values = ph.image[far].astype(float)
    assert values.std() == pytest.approx(sigma, rel=0.08)
    assert values.mean() == pytest.approx(BACKGROUND_LEVEL, abs=0.01 + sigma**2 / BACKGROUND_LEVEL)


def test_noise_free_background_is_flat_and_bias_is_smooth():
    flat = phantom_2d(seed=1, noise=0.0, bias=0.0)
    far = ndi.distance_transform_edt(flat.label == 0) > 12  # beyond the 4-sigma blur tails
    np.testing.assert_allclose(flat.image[far], BACKGROUND_LEVEL, atol=1e-6)
    biased = phantom_2d(seed=1, noise=0.0, bias=0.3)
    ratio = biased.image / flat.image
    assert 0.7 - 1e-5 <= ratio.min() and ratio.max() <= 1.3 + 1e-5
    assert np.abs(np.diff(ratio, axis=0)).max() < 0.02  # smooth: tiny change per pixel


def test_texture_roughens_the_background():
    plain = phantom_2d(seed=1, noise=0.0, bias=0.0)
    rough = phantom_2d(seed=1, noise=0.0, bias=0.0, texture=0.04)
    background = ndi.distance_transform_edt(plain.label == 0) > 8
    assert rough.image[background].std() == pytest.approx(0.04, rel=0.3)
    np.testing.assert_array_equal(plain.label, rough.label)


@pytest.mark.parametrize("spacing", [(2.0, 1.0), (1.0, 3.0)])
def test_anisotropic_blobs_are_round_in_physical_units(spacing):
    ph = phantom_2d((64, 128) if spacing[0] > 1 else (128, 48), seed=3, spacing=spacing,
                    irregularity=0.0, thin_structures=False)  # fmt: skip
    assert ph.spacing == spacing
    for k in _blob_ids(ph):
        idx = np.argwhere(ph.label == k)
        extents = (idx.max(axis=0) - idx.min(axis=0) + 1) * np.asarray(spacing)
        diameter = 2 * ph.info[k]["radius"]
        # one voxel of rounding per axis
        assert np.all(np.abs(extents - diameter) <= np.asarray(spacing) + 1e-9), (extents, diameter)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"shape": (8, 64)}, "shape"),
        ({"shape": (64, 64, 64)}, "shape"),
        ({"spacing": (1.0, -1.0)}, "spacing"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"n_blobs": 40}, "n_blobs"),
        ({"noise": -0.1}, "noise"),
        ({"bias": 1.0}, "bias"),
        ({"noise_kind": "poisson"}, "noise_kind"),
        ({"irregularity": 0.9}, "irregularity"),
    ],
)
def test_phantom_2d_rejects_bad_options(kwargs, word):
    with pytest.raises(InvalidArgumentError, match=word):
        phantom_2d(**kwargs)


# --------------------------------------------------------------------------- phantom_3d


def test_phantom_3d_is_deterministic_and_as_documented():
    ph = phantom_3d(seed=4)
    again = phantom_3d(seed=4)
    np.testing.assert_array_equal(ph.image, again.image)
    np.testing.assert_array_equal(ph.label, again.label)
    assert not np.array_equal(ph.label, phantom_3d(seed=5).label)
    assert ph.image.shape == (48, 64, 64) and ph.image.dtype == np.float32
    assert ph.labels_of("smooth") == (1, 3)
    assert ph.labels_of("weak") == (2,)
    assert ph.labels_of("thin") == (4,)
    border = np.ones(ph.label.shape, dtype=bool)
    border[1:-1, 1:-1, 1:-1] = False
    for k in _blob_ids(ph):
        mask = ph.label == k
        assert not (mask & border).any()
        assert ndi.label(mask)[1] == 1
    assert ndi.distance_transform_edt(ph.label == 4).max() <= 2.0


def test_phantom_3d_anisotropic_blobs_are_round_in_mm():
    spacing = (3.0, 1.0, 1.0)
    ph = phantom_3d((24, 64, 64), seed=1, spacing=spacing, irregularity=0.0, noise=0.0)
    for k in _blob_ids(ph):
        idx = np.argwhere(ph.label == k)
        extents = (idx.max(axis=0) - idx.min(axis=0) + 1) * np.asarray(spacing)
        assert np.all(np.abs(extents - 2 * ph.info[k]["radius"]) <= np.asarray(spacing) + 1e-9)
        assert (idx.max(axis=0) - idx.min(axis=0) + 1)[0] >= 2 * MIN_BLOB_RADIUS


def test_phantom_3d_weak_edges_are_weaker():
    ph = phantom_3d(seed=0, noise=0.0, bias=0.0)
    smooth = min(_boundary_gradient(ph.image, ph.label == k) for k in ph.labels_of("smooth"))
    weak = _boundary_gradient(ph.image, ph.label == 2)
    assert weak < 0.6 * smooth


def test_too_many_blobs_for_the_image_is_an_error():
    with pytest.raises(InvalidArgumentError, match="n_blobs=12"):
        phantom_3d((16, 32, 32), n_blobs=12)
