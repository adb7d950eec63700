"""Seeded synthetic phantoms: images whose true labels are known.

The phantoms stand in for real scans in the tests of every tool and in the
demo.  Each holds a few non-overlapping blobs (some with sharp edges, some with
weak, blurred, low-contrast edges), thin curvilinear structures (vessels or
membranes one or three voxels wide), an optional textured background, a smooth
multiplicative intensity bias and Gaussian or Rician noise.

Intensity model (noise-free, before the bias): background 0.25 (plus texture),
a smooth blob 0.60-0.80, a weak blob 0.42-0.53 with its edge blurred by a
Gaussian of 2.5 voxels (of the finest axis), a thin structure 0.60-0.75.

Geometry, texture, bias and noise draw from separate streams of one seed, so
changing ``noise`` or ``bias`` leaves ``label`` unchanged.

Examples
--------
>>> ph = phantom_2d((96, 96), seed=1)
>>> ph.image.shape, ph.image.dtype, ph.label.dtype
((96, 96), dtype('float32'), dtype('uint8'))
>>> ph.labels_of("smooth"), ph.labels_of("weak"), ph.labels_of("thin")
((1, 3), (2,), (4,))
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from segloop.errors import InvalidArgumentError
from segloop.io.checks import check_spacing as _check_spacing

__all__ = [
    "BACKGROUND_LEVEL",
    "MIN_BLOB_RADIUS",
    "Phantom",
    "ball",
    "box_mask",
    "disk",
    "phantom_2d",
    "phantom_3d",
]

MIN_BLOB_RADIUS = 3
"""Every blob's boundary lies at least this many voxels from its centre along every axis."""

BACKGROUND_LEVEL = 0.25
"""Noise-free, bias-free intensity of the flat background."""

_SMOOTH_SIGMA = 0.5  # blur of a sharp edge (point-spread), in voxels of the finest axis
_WEAK_SIGMA = 2.5  # blur of a weak edge, in voxels of the finest axis
_WEAK_CONTRAST = 0.5  # a weak blob's contrast relative to a smooth one
_NOISE_KINDS = ("gaussian", "rician")


@dataclass(frozen=True, eq=False)
class Phantom:
    """A synthetic image with its true label map.

    Attributes
    ----------
    image : ndarray of float32
        The image, indexed ``(y, x)`` or ``(z, y, x)``; in roughly [0, 1] before noise.
    label : ndarray of uint8
        0 for background, ``1..n_blobs`` for the blobs and ``n_blobs + 1`` for
        all thin structures (present only when some were drawn).
    spacing : tuple of float
        Physical size of a voxel along each axis, in array order.
    info : dict
        For every label value present (not 0): ``kind`` ('smooth', 'weak' or
        'thin'), ``centre`` (index coordinates, floats; None for 'thin'),
        ``radius`` (nominal radius in physical units; None for 'thin') and
        ``intensity`` (noise-free level).  Thin labels also give ``widths``,
        the width in voxels of each curve.

    Both arrays are read-only; copy them to modify.
    """

    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, ...]
    info: dict[int, dict[str, Any]]

    @property
    def ndim(self) -> int:
        """Number of image axes (2 or 3)."""
        return self.image.ndim

    def labels_of(self, kind: str) -> tuple[int, ...]:
        """Return the label values of one kind ('smooth', 'weak' or 'thin'), ascending."""
        return tuple(k for k in sorted(self.info) if self.info[k]["kind"] == kind)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{k}: {v['kind']}" for k, v in sorted(self.info.items()))
        return f"Phantom(shape={self.image.shape}, spacing={self.spacing}, labels={{{kinds}}})"


# --------------------------------------------------------------------------- validation


def _check_shape(shape: Sequence[int], ndim: int | None, *, minimum: int = 1) -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)
        ok = all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape)
    except TypeError:
        ok = False
    if not ok or (ndim is not None and len(out) != ndim) or any(s < minimum for s in out):
        dims = f"{ndim} " if ndim is not None else ""
        raise InvalidArgumentError(
            f"shape must be {dims}integers >= {minimum}, got shape={shape!r}"
        )
    return out


def _check_point(point: Sequence[float], ndim: int, name: str) -> np.ndarray:
    arr = np.asarray(point, dtype=float)
    if arr.shape != (ndim,) or not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"{name} must be {ndim} finite numbers, got {name}={point!r}")
    return arr


def _check_number(value: float, name: str, lo: float, hi: float, *, hi_open=False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and math.isfinite(value) and lo <= value and (value < hi if hi_open else value <= hi):
        return float(value)
    right = ")" if hi_open else "]"
    raise InvalidArgumentError(
        f"{name} must be a number in [{lo}, {hi}{right}, got {name}={value!r}"
    )


def _check_int(value: int, name: str, lo: int, hi: int) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and lo <= value <= hi:
        return int(value)
    raise InvalidArgumentError(f"{name} must be an integer in [{lo}, {hi}], got {name}={value!r}")


# --------------------------------------------------------------------------- primitives


def _offsets(shape: tuple[int, ...], center: np.ndarray, spacing: Sequence[float]):
    """Physical offsets from ``center`` along each axis, as broadcastable open grids."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return [(g - c) * s for g, c, s in zip(grids, center, spacing, strict=True)]


def _round_mask(shape, center, radius, spacing, ndim: int) -> np.ndarray:
    shape = _check_shape(shape, ndim)
    spacing = _check_spacing(spacing, ndim)
    center = _check_point(center, ndim, "center")
    radius = _check_number(radius, "radius", 0.0, math.inf, hi_open=True)
    d2 = sum(o**2 for o in _offsets(shape, center, spacing))
    return np.broadcast_to(d2 <= radius**2, shape).copy()


def disk(shape, center, radius, *, spacing=None) -> np.ndarray:
    """Return a boolean disk: pixels within ``radius`` (physical units) of ``center``.

    Parameters
    ----------
    shape : tuple of 2 int
        Shape ``(y, x)`` of the output.
    center : sequence of 2 float
        Centre in index coordinates ``(y, x)``; need not be integer or inside the image.
    radius : float
        Radius in physical units (voxels when ``spacing`` is None).
    spacing : sequence of 2 float, optional
        Pixel size along each axis; the disk is round in physical space.

    Returns
    -------
    ndarray of bool
        True inside the closed disk.

    Examples
    --------
    >>> disk((5, 5), (2, 2), 1).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 0, 1, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 1, 0, 0],
           [0, 0, 0, 0, 0]])
    >>> disk((3, 5), (1, 2), 2, spacing=(2.0, 1.0)).astype(int)
    array([[0, 0, 1, 0, 0],
           [1, 1, 1, 1, 1],
           [0, 0, 1, 0, 0]])
    """
    return _round_mask(shape, center, radius, spacing, 2)


def ball(shape, center, radius, *, spacing=None) -> np.ndarray:
    """Return a boolean ball: voxels within ``radius`` (physical units) of ``center``.

    Parameters
    ----------
    shape : tuple of 3 int
        Shape ``(z, y, x)`` of the output.
    center : sequence of 3 float
        Centre in index coordinates ``(z, y, x)``.
    radius : float
        Radius in physical units (voxels when ``spacing`` is None).
    spacing : sequence of 3 float, optional
        Voxel size along each axis; the ball is round in physical space.

    Returns
    -------
    ndarray of bool
        True inside the closed ball.

    Examples
    --------
    >>> b = ball((3, 3, 3), (1, 1, 1), 1)
    >>> int(b.sum()), bool(b[1, 1, 1]), bool(b[0, 0, 0])
    (7, True, False)
    >>> int(ball((5, 9, 9), (2, 4, 4), 4, spacing=(2.0, 1.0, 1.0))[:, 4, 4].sum())
    5
    """
    return _round_mask(shape, center, radius, spacing, 3)


def box_mask(shape, lo, hi) -> np.ndarray:
    """Return a boolean box, True where ``lo <= index < hi`` on every axis.

    Parameters
    ----------
    shape : tuple of int
        Shape of the output (any number of axes).
    lo, hi : sequence of int
        First corner (inclusive) and opposite corner (exclusive), like a slice;
        ``0 <= lo < hi <= shape`` on every axis.

    Returns
    -------
    ndarray of bool
        True inside the box.

    Examples
    --------
    >>> box_mask((4, 5), (1, 2), (3, 4)).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 0, 1, 1, 0],
           [0, 0, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    shape = _check_shape(shape, None)
    lo_t = _check_shape(lo, len(shape), minimum=0)
    hi_t = _check_shape(hi, len(shape), minimum=0)
    if not all(a < b <= n for a, b, n in zip(lo_t, hi_t, shape, strict=True)):
        raise InvalidArgumentError(
            f"box corners must satisfy 0 <= lo < hi <= shape, got lo={lo!r}, hi={hi!r}, "
            f"shape={shape}"
        )
    out = np.zeros(shape, dtype=bool)
    out[tuple(slice(a, b) for a, b in zip(lo_t, hi_t, strict=True))] = True
    return out


# --------------------------------------------------------------------------- phantom parts


def _place_blobs(shape, spacing, n, irregularity, rng):
    """Draw radii and centres of ``n`` blobs that fit inside and keep apart.

    Greedy placement, largest first; on failure it starts again with radii
    drawn from a range shrinking towards the smallest allowed radius.
    """
    shp, sp = np.asarray(shape, float), np.asarray(spacing)
    smallest_extent = float((shp * sp).min())
    r_min = (MIN_BLOB_RADIUS + 0.01) * sp.max() / (1.0 - irregularity)
    r_lo = max(0.10 * smallest_extent, r_min)
    r_hi = max(0.18 * smallest_extent, r_lo)
    gap = max(2 * _WEAK_SIGMA * sp.min(), 2 * sp.max())  # physical gap between blobs
    for restart in range(20):
        radii = np.sort(rng.uniform(r_lo, r_hi - (r_hi - r_lo) * restart / 19, n))[::-1]
        centres, outers = np.empty((0, len(shape))), np.empty(0)
        for r in radii:
            outer = r * (1.0 + irregularity)
            lo = outer / sp + 2.0  # keep 2 voxels clear of the border
            hi = np.maximum(shp - 1.0 - lo, lo)
            candidates = rng.uniform(lo, hi, (200, len(shape)))
            dist = np.linalg.norm((candidates[:, None] - centres[None]) * sp, axis=-1)
            fits = np.all(dist >= outer + outers + gap, axis=1) & np.all(hi > lo)
            if not fits.any():
                break
            centres = np.vstack([centres, candidates[np.argmax(fits)]])
            outers = np.append(outers, outer)
        else:
            return [(c, float(r)) for c, r in zip(centres, radii, strict=True)]
    raise InvalidArgumentError(
        f"cannot fit n_blobs={n} separate blobs of radius >= {r_lo:.3g} into "
        f"shape={tuple(shape)} with spacing={tuple(map(float, sp))}; "
        "use a larger shape or fewer blobs"
    )


def _blob_mask(shape, spacing, centre, radius, irregularity, rng) -> np.ndarray:
    """Star-shaped blob: radius ``radius * (1 + f(u))`` with ``|f| <= irregularity``."""
    ndim = len(shape)
    freq = rng.normal(size=(3, ndim))
    freq *= rng.uniform(0.3, 1.0, (3, 1)) / np.linalg.norm(freq, axis=1, keepdims=True)
    phase = rng.uniform(0.0, 2 * np.pi, 3)
    amp = rng.uniform(0.5, 1.0, 3)
    amp *= irregularity / amp.sum()
    offsets = _offsets(shape, centre, spacing)
    dist = np.sqrt(sum(o**2 for o in offsets))
    if irregularity == 0:
        return np.broadcast_to(dist <= radius, shape).copy()
    safe = np.maximum(dist, 1e-12)
    wobble = sum(
        a * np.sin(2 * np.pi * sum(w_i * o / safe for w_i, o in zip(w, offsets, strict=True)) + p)
        for a, w, p in zip(amp, freq, phase, strict=True)
    )
    return np.broadcast_to(dist <= radius * (1.0 + wobble), shape).copy()


def _curve(shape, rng) -> np.ndarray:
    """One-voxel-thick wavy curve crossing the image (a vessel's centre line)."""
    shp = np.asarray(shape, float)
    ndim = len(shape)
    start = rng.uniform(0.25, 0.75, ndim) * (shp - 1)
    basis, _ = np.linalg.qr(
        np.column_stack([rng.normal(size=ndim), rng.normal(size=(ndim, ndim - 1))])
    )
    half = float(np.linalg.norm(shp))
    t = np.arange(-half, half, 0.25)
    points = start + t[:, None] * basis[:, 0]
    for axis in basis[:, 1:].T:  # a gentle wave (slope <= 0.5) across the direction of travel
        k, amp, phase = rng.uniform(0.5, 2.0), rng.uniform(0.03, 0.08) * half, rng.uniform(0, 6.3)
        points += amp * np.sin(np.pi * k * t / half + phase)[:, None] * axis
    idx = np.rint(points).astype(int)
    idx = idx[np.all((idx >= 0) & (idx < shp.astype(int)), axis=1)]
    line = np.zeros(shape, dtype=bool)
    line[tuple(idx.T)] = True
    return skeletonize(line).astype(bool)


def _thin_structures(shape, n, keep_out, rng):
    """Up to ``n`` curves 1 or 3 voxels wide, clear of ``keep_out`` and of each other."""
    free = np.ones(shape, dtype=bool)
    if keep_out.any():
        free = ndi.distance_transform_edt(~keep_out) > 3  # two background voxels around blobs
    cross = ndi.generate_binary_structure(len(shape), 1)
    thin = np.zeros(shape, dtype=bool)
    widths = []
    for _ in range(n):
        near = ndi.binary_dilation(thin, cross, iterations=4)
        for _ in range(20):
            tube, half_width = _curve(shape, rng), int(rng.integers(0, 2))
            if half_width:
                tube = ndi.binary_dilation(tube, cross)
            tube &= free
            if tube.sum() >= 8 and not (tube & near).any():
                thin |= tube
                widths.append(2 * half_width + 1)
                break
    pieces, count = ndi.label(thin, ndi.generate_binary_structure(len(shape), len(shape)))
    sizes = ndi.sum_labels(thin, pieces, np.arange(1, count + 1))
    thin &= np.isin(pieces, 1 + np.flatnonzero(sizes >= 4))  # drop crumbs left by clipping
    return thin, widths


def _bias_field(shape, strength, rng) -> np.ndarray:
    """Smooth multiplicative field in ``[1 - strength, 1 + strength]`` (random quadratic)."""
    coords = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij", sparse=True)
    terms = list(coords) + [a * b for i, a in enumerate(coords) for b in coords[i:]]
    field = sum(c * t for c, t in zip(rng.normal(size=len(terms)), terms, strict=True))
    field = np.broadcast_to(field, shape)
    return 1.0 + strength * field / np.abs(field).max()


def _phantom(shape, spacing, ndim, *, seed, n_blobs, noise, noise_kind, bias, texture, weak_edges,
             thin_structures, n_thin, irregularity) -> Phantom:  # fmt: skip
    shape = _check_shape(shape, ndim, minimum=16)
    spacing = _check_spacing(spacing, ndim)
    seed = _check_int(seed, "seed", 0, 2**63 - 1)
    n_blobs = _check_int(n_blobs, "n_blobs", 0, 254)
    n_thin = _check_int(n_thin, "n_thin", 0, 100)
    noise = _check_number(noise, "noise", 0.0, 1.0)
    bias = _check_number(bias, "bias", 0.0, 1.0, hi_open=True)
    texture = _check_number(texture, "texture", 0.0, 1.0)
    irregularity = _check_number(irregularity, "irregularity", 0.0, 0.5)
    if noise_kind not in _NOISE_KINDS:
        raise InvalidArgumentError(
            f"noise_kind must be one of {_NOISE_KINDS}, got noise_kind={noise_kind!r}"
        )
    geo, lines, tex, smooth_bias, noisy = map(
        np.random.default_rng, np.random.SeedSequence(seed).spawn(5)
    )
    sp = np.asarray(spacing)

    image = np.full(shape, BACKGROUND_LEVEL)
    if texture > 0:
        grain = ndi.gaussian_filter(tex.standard_normal(shape), 2.0)
        image += texture * grain / grain.std()
    label = np.zeros(shape, dtype=np.uint8)
    info: dict[int, dict[str, Any]] = {}
    for i, (centre, radius) in enumerate(_place_blobs(shape, sp, n_blobs, irregularity, geo), 1):
        weak = weak_edges and i % 2 == 0
        mask = _blob_mask(shape, sp, centre, radius, irregularity, geo)
        level = BACKGROUND_LEVEL + geo.uniform(0.35, 0.55) * (_WEAK_CONTRAST if weak else 1.0)
        sigma = (_WEAK_SIGMA if weak else _SMOOTH_SIGMA) * sp.min() / sp
        soft = ndi.gaussian_filter(mask.astype(float), sigma)
        image = image * (1.0 - soft) + level * soft
        label[mask] = i
        info[i] = dict(kind="weak" if weak else "smooth", centre=tuple(map(float, centre)),
                       radius=radius, intensity=level)  # fmt: skip

    if thin_structures and n_thin:
        thin, widths = _thin_structures(shape, n_thin, label > 0, lines)
        if thin.any():
            level = BACKGROUND_LEVEL + lines.uniform(0.35, 0.5)
            image[thin] = level
            label[thin] = n_blobs + 1
            info[n_blobs + 1] = dict(kind="thin", centre=None, radius=None, intensity=level,
                                     widths=tuple(widths))  # fmt: skip

    image = image * _bias_field(shape, bias, smooth_bias)
    if noise_kind == "gaussian":
        image = image + noise * noisy.standard_normal(shape)
    else:
        real = image + noise * noisy.standard_normal(shape)
        image = np.hypot(real, noise * noisy.standard_normal(shape))
    image = image.astype(np.float32)
    image.setflags(write=False)
    label.setflags(write=False)
    return Phantom(image=image, label=label, spacing=spacing, info=info)


# --------------------------------------------------------------------------- public phantoms


def phantom_2d(
    shape=(128, 128),
    *,
    seed: int = 0,
    spacing=None,
    n_blobs: int = 3,
    noise: float = 0.05,
    noise_kind: str = "gaussian",
    bias: float = 0.2,
    texture: float = 0.0,
    weak_edges: bool = True,
    thin_structures: bool = True,
    n_thin: int = 2,
    irregularity: float = 0.15,
) -> Phantom:
    """Make a seeded 2D phantom: blobs, thin curves, bias and noise, with its labels.

    Parameters
    ----------
    shape : tuple of 2 int, optional
        Image shape ``(y, x)``; each axis at least 16.
    seed : int, optional
        Non-negative seed; the same seed and options give identical arrays.
    spacing : sequence of 2 float, optional
        Pixel size per axis (default 1).  Blobs are round in physical space and
        their radii scale with the smallest physical extent of the image.
    n_blobs : int, optional
        Number of blobs, labelled ``1..n_blobs`` (0 to 254).  They never
        overlap, are at least 2 voxels clear of the border and of each other,
        and each extends at least :data:`MIN_BLOB_RADIUS` voxels from its
        centre along every axis.  Too many for the image raises an error.
    noise : float, optional
        Standard deviation of the noise, in image intensity units (0 to 1).
    noise_kind : {'gaussian', 'rician'}, optional
        Additive Gaussian noise, or Rician (magnitude of complex Gaussian) noise.
    bias : float, optional
        Strength of a smooth multiplicative bias field with values in
        ``[1 - bias, 1 + bias]`` (0 <= bias < 1).
    texture : float, optional
        Standard deviation of a smooth random texture added to the background.
    weak_edges : bool, optional
        If True, blobs with an even label (2, 4, ...) have weak edges: half the
        contrast and a 2.5-voxel blur; the others always have sharp edges.
    thin_structures : bool, optional
        If True, draw up to ``n_thin`` wavy curves 1 or 3 voxels wide (maximum of
        their distance transform <= 2), labelled ``n_blobs + 1``.  They may run
        off the image, keep two background voxels away from every blob and never
        touch each other.
    n_thin : int, optional
        Number of thin curves to try to draw.
    irregularity : float, optional
        Relative amplitude (0 to 0.5) of the low-frequency wobble of the blob
        outlines; 0 gives exact disks.

    Returns
    -------
    Phantom
        The image (float32), the label map (uint8), the spacing and per-label info.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        If an option is out of range or the blobs do not fit.

    See Also
    --------
    phantom_3d : The same for volumes.

    Examples
    --------
    >>> ph = phantom_2d((64, 80), seed=3, n_blobs=2, noise=0.0, bias=0.0)
    >>> ph.image.shape, ph.spacing
    ((64, 80), (1.0, 1.0))
    >>> [ph.info[k]["kind"] for k in sorted(ph.info)]
    ['smooth', 'weak', 'thin']
    >>> float(ph.image[ph.label == 0].min()) == 0.25   # flat background
    True
    """
    return _phantom(
        shape, spacing, 2, seed=seed, n_blobs=n_blobs, noise=noise, noise_kind=noise_kind,
        bias=bias, texture=texture, weak_edges=weak_edges, thin_structures=thin_structures,
        n_thin=n_thin, irregularity=irregularity,
    )  # fmt: skip


def phantom_3d(
    shape=(48, 64, 64),
    *,
    seed: int = 0,
    spacing=None,
    n_blobs: int = 3,
    noise: float = 0.05,
    noise_kind: str = "gaussian",
    bias: float = 0.2,
    texture: float = 0.0,
    weak_edges: bool = True,
    thin_structures: bool = True,
    n_thin: int = 2,
    irregularity: float = 0.15,
) -> Phantom:
    """Make a seeded 3D phantom: balls, thin tubes, bias and noise, with its labels.

    Parameters
    ----------
    shape : tuple of 3 int, optional
        Volume shape ``(z, y, x)``; each axis at least 16.
    seed : int, optional
        Non-negative seed; the same seed and options give identical arrays.
    spacing : sequence of 3 float, optional
        Voxel size per axis (default 1), e.g. ``(3.0, 1.0, 1.0)`` for thick
        slices; blobs are round in physical space.

    Returns
    -------
    Phantom
        The volume (float32), the label map (uint8), the spacing and per-label info.

    Other Parameters
    ----------------
    n_blobs, noise, noise_kind, bias, texture, weak_edges, thin_structures, n_thin, irregularity
        As in :func:`phantom_2d`; thin structures are tubes 1 or 3 voxels wide.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        If an option is out of range or the blobs do not fit.

    See Also
    --------
    phantom_2d : The same for images, with every option described.

    Examples
    --------
    >>> ph = phantom_3d((24, 48, 48), seed=0, spacing=(2.0, 1.0, 1.0))
    >>> ph.image.shape, ph.spacing
    ((24, 48, 48), (2.0, 1.0, 1.0))
    >>> ph.labels_of("smooth"), ph.labels_of("weak"), ph.labels_of("thin")
    ((1, 3), (2,), (4,))
    """
    return _phantom(
        shape, spacing, 3, seed=seed, n_blobs=n_blobs, noise=noise, noise_kind=noise_kind,
        bias=bias, texture=texture, weak_edges=weak_edges, thin_structures=thin_structures,
        n_thin=n_thin, irregularity=irregularity,
    )  # fmt: skip
