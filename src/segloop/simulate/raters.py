"""Simulated raters of known bias: a manual mask redrawn too big, too small, shifted, sloppy.

They stand in for real raters when testing label fusion and the rater report
(:mod:`segloop.fusion.agreement`): the bias put in is known, so the report must
find it again.  :func:`simulate_rater` applies, in this order, to a 0/1 mask:

1. ``grow_mm``: the surface moves outwards (> 0) or inwards (< 0) by that
   distance in mm.  The mask's surface is placed midway between its inner and
   outer boundary voxel layers, and the new mask is every voxel whose signed
   distance from that surface (mean of the Euclidean distances to the two
   layers, :func:`scipy.ndimage.distance_transform_edt` with ``sampling=spacing``)
   is at most ``grow_mm``.  A flat face moves by ``grow_mm`` rounded to whole
   voxels (halves upwards: the first layer outside is half a voxel out, so
   ``grow_mm`` of half a voxel adds it, minus half a voxel removes nothing); a
   curved one moves by about ``grow_mm`` on average (this is the surface
   that :func:`segloop.fusion.boundary.signed_surface_distance` measures from).
   The outside of the array is background.
2. ``shift_mm``: a translation, rounded per axis to whole voxels
   (``round(shift_mm / spacing)``, halves to even); what leaves the array is lost.
3. ``miss``: random misses.  Balls of radius ``blob_mm`` centred on random
   voxels of the mask are removed until exactly ``round(miss * volume)``
   voxels are gone (the last ball removes only its voxels nearest its centre).
4. ``extra``: random false-positive blobs next to the object.  Balls centred on
   random voxels just outside the mask (face-neighbours of it) are added until
   exactly ``round(extra * volume)`` voxels are new.

``volume`` is the voxel count after steps 1-2, and misses and extras are drawn
on that mask independently (two random streams of ``seed``), so a rater with
``miss=m`` keeps a fraction ``1 - m`` of it: sensitivity ``1 - m`` against it.
The default ``blob_mm`` is a quarter of the radius of the disc (2D) or ball (3D)
of the object's area or volume, at least the largest voxel size.

An empty mask stays empty.

Examples
--------
>>> import numpy as np
>>> mask = np.zeros((9, 9), bool); mask[3:6, 3:6] = True
>>> int(simulate_rater(mask, grow_mm=1.0).sum()), int(simulate_rater(mask, grow_mm=-1.0).sum())
(21, 1)
>>> raters = simulated_raters(mask, {"big": {"grow_mm": 1.0}, "sloppy": {"miss": 0.3}})
>>> sorted(raters), int(raters["sloppy"].sum())
(['big', 'sloppy'], 6)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np
from scipy import ndimage

from segloop.errors import InvalidArgumentError
from segloop.metrics.surface import surface_field
from segloop.simulate._checks import as_mask, as_spacing

__all__ = ["RATER_OPTIONS", "simulate_rater", "simulated_raters"]

RATER_OPTIONS = ("grow_mm", "shift_mm", "miss", "extra", "blob_mm")
"""The keys a spec of :func:`simulated_raters` may hold."""


def _number(value, name: str, lo: float = -math.inf, hi: float = math.inf, *, hi_open=False):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (
        ok and math.isfinite(value) and lo <= value and (value < hi if hi_open else value <= hi)
    ):
        interval = f"[{lo}, {hi}{')' if hi_open else ']'}" if math.isfinite(lo) else "finite"
        raise InvalidArgumentError(f"{name} must be a number in {interval}, got {name}={value!r}")
    return float(value)


def _grow(mask: np.ndarray, grow_mm: float, spacing) -> np.ndarray:
    if grow_mm == 0:
        return mask.copy()
    padded = np.pad(mask, 1)  # the outside of the array is background
    inner = (slice(1, -1),) * mask.ndim
    return (surface_field(padded, spacing) <= grow_mm)[inner]


def _shift(mask: np.ndarray, shift_mm, spacing: np.ndarray) -> np.ndarray:
    try:
        shift = np.asarray(shift_mm, dtype=float)
    except (TypeError, ValueError):
        shift = np.array([np.nan])
    if shift.shape != (mask.ndim,) or not np.all(np.isfinite(shift)):
        raise InvalidArgumentError(
            f"shift_mm must be {mask.ndim} finite numbers (mm, array order), got "
            f"shift_mm={shift_mm!r}"
        )
    steps = np.round(shift / spacing).astype(int)
    out = np.zeros_like(mask)
    src = tuple(slice(max(0, -s), n - max(0, s)) for s, n in zip(steps, mask.shape, strict=True))
    dst = tuple(slice(max(0, s), n - max(0, -s)) for s, n in zip(steps, mask.shape, strict=True))
    if all(n - abs(s) > 0 for s, n in zip(steps, mask.shape, strict=True)):
        out[dst] = mask[src]
    return out


def _ball_offsets(radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Integer offsets of the voxels within ``radius_mm`` of a centre, nearest first."""
    half = np.floor(radius_mm / spacing).astype(int)
    grid = np.stack(np.meshgrid(*[np.arange(-h, h + 1) for h in half], indexing="ij"), -1)
    offsets = grid.reshape(-1, len(spacing))
    dist = np.sqrt(((offsets * spacing) ** 2).sum(1))
    keep = dist <= radius_mm
    order = np.argsort(dist[keep], kind="stable")
    return offsets[keep][order]


def _blobs(base, target, offsets, rng, *, inside: bool) -> np.ndarray:
    """``target`` voxels of ``base`` (inside) or next to it (outside), covered by random balls."""
    face = ndimage.generate_binary_structure(base.ndim, 1)
    taken = np.zeros_like(base)
    shape = np.array(base.shape)
    while (count := int(taken.sum())) < target:
        free = base & ~taken if inside else ~base & ~taken
        centres = free if inside else free & ndimage.binary_dilation(base | taken, face)
        flat = np.flatnonzero(centres)
        if flat.size == 0:  # background cut off from the object: any background voxel
            flat = np.flatnonzero(free)
        centre = np.array(np.unravel_index(flat[rng.integers(flat.size)], base.shape))
        points = centre + offsets
        points = points[np.all((points >= 0) & (points < shape), axis=1)]
        points = points[free[tuple(points.T)]][: target - count]
        taken[tuple(points.T)] = True
    return taken


def simulate_rater(
    mask,
    *,
    grow_mm: float = 0.0,
    shift_mm=None,
    miss: float = 0.0,
    extra: float = 0.0,
    blob_mm: float | None = None,
    spacing=None,
    seed: int = 0,
) -> np.ndarray:
    """Redraw ``mask`` as a rater of known bias would (see the module docstring).

    Parameters
    ----------
    mask : array_like
        The manual 0/1 (or boolean) mask, 2D ``(y, x)`` or 3D ``(z, y, x)``.
    grow_mm : float
        Move the surface outwards (> 0) or inwards (< 0) by this many mm.
    shift_mm : sequence of float, optional
        Translation in mm per axis, array order; rounded to whole voxels.
    miss : float in [0, 1)
        Fraction of the (grown, shifted) volume removed as random ball-shaped misses.
    extra : float in [0, 1]
        Fraction of that volume added as random ball-shaped false positives
        touching the object.
    blob_mm : float, optional
        Radius of the missed and extra balls in mm (default: from the object's size).
    spacing : sequence of float, optional
        Voxel size in mm per axis (default 1).
    seed : int
        Non-negative seed of the misses and extras; the same seed and
        arguments give the same mask.

    Returns
    -------
    ndarray of bool
        The rater's mask, shape of ``mask``.

    Raises
    ------
    InvalidArgumentError
        A mask that is not a 2D/3D 0/1 array, a bad spacing, a non-finite
        ``grow_mm``, a ``shift_mm`` of the wrong length, ``miss`` or ``extra``
        out of range, more extra voxels asked for than background, a
        non-positive ``blob_mm`` or a bad seed.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((1, 12), bool); mask[0, 4:8] = True
    >>> simulate_rater(mask, shift_mm=(0.0, 3.0), spacing=(1.0, 1.5)).astype(int)
    array([[0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0]])
    """
    m = as_mask(mask, "mask")
    if not (np.asarray(mask).dtype == bool or np.isin(np.asarray(mask), (0, 1)).all()):
        found = np.unique(np.asarray(mask))[:5].tolist()
        raise InvalidArgumentError(f"mask must be a 0/1 mask, found values {found}")
    spacing = as_spacing(spacing, m.ndim)
    grow_mm = _number(grow_mm, "grow_mm")
    miss = _number(miss, "miss", 0.0, 1.0, hi_open=True)
    extra = _number(extra, "extra", 0.0, 1.0)
    if blob_mm is not None:
        blob_mm = _number(blob_mm, "blob_mm", 0.0)
        if blob_mm == 0:
            raise InvalidArgumentError("blob_mm must be > 0, got blob_mm=0")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise InvalidArgumentError(f"seed must be an integer >= 0, got seed={seed!r}")
    drawn = _grow(m, grow_mm, spacing)
    if shift_mm is not None:
        drawn = _shift(drawn, shift_mm, spacing)
    volume = int(drawn.sum())
    n_miss, n_extra = round(miss * volume), round(extra * volume)
    if n_extra > drawn.size - volume:
        raise InvalidArgumentError(
            f"extra={extra} asks for {n_extra} new voxels but only {drawn.size - volume} are "
            "background"
        )
    if volume == 0 or n_miss + n_extra == 0:
        return drawn
    if blob_mm is None:
        size = volume * float(np.prod(spacing))
        radius = (size / math.pi) ** 0.5 if m.ndim == 2 else (size * 3 / (4 * math.pi)) ** (1 / 3)
        blob_mm = max(radius / 4, float(spacing.max()))
    offsets = _ball_offsets(blob_mm, spacing)
    miss_rng, extra_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    out = drawn & ~_blobs(drawn, n_miss, offsets, miss_rng, inside=True)
    return out | _blobs(drawn, n_extra, offsets, extra_rng, inside=False)


def simulated_raters(mask, specs: Mapping[str, Mapping], *, spacing=None, seed: int = 0):
    """Several simulated raters of one mask: ``{id: simulate_rater(mask, **spec)}``.

    Parameters
    ----------
    mask : array_like
        The manual 0/1 mask (2D or 3D).
    specs : mapping of str to mapping
        Rater id -> keyword arguments of :func:`simulate_rater` (any of
        :data:`RATER_OPTIONS`; ``{}`` is a rater who copies the mask).
    spacing : sequence of float, optional
        Voxel size in mm, shared by all raters.
    seed : int
        Rater number ``i`` (in the order of ``specs``) uses seed ``seed + i``.

    Returns
    -------
    dict of str to ndarray of bool
        The raters' masks, in the order of ``specs``.

    Raises
    ------
    InvalidArgumentError
        ``specs`` is not a mapping of mappings, a spec has an unknown key (the
        rater is named), or :func:`simulate_rater` refuses a value.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((20, 20), bool); mask[5:15, 5:15] = True
    >>> raters = simulated_raters(mask, {"a": {"grow_mm": 2.0}, "b": {"extra": 0.2}})
    >>> [int(r.sum()) for r in raters.values()]
    [192, 120]
    """
    if not isinstance(specs, Mapping):
        raise InvalidArgumentError(f"specs must be a mapping rater id -> options, got {specs!r}")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise InvalidArgumentError(f"seed must be an integer >= 0, got seed={seed!r}")
    out = {}
    for i, (rater, spec) in enumerate(specs.items()):
        if not isinstance(spec, Mapping):
            raise InvalidArgumentError(
                f"specs[{rater!r}] must be a mapping of options, got {spec!r}"
            )
        unknown = sorted(set(spec) - set(RATER_OPTIONS))
        if unknown:
            raise InvalidArgumentError(
                f"specs[{rater!r}]: unknown option(s) {unknown}; known: {list(RATER_OPTIONS)} "
                "(spacing and seed are arguments of simulated_raters)"
            )
        try:
            out[str(rater)] = simulate_rater(mask, **spec, spacing=spacing, seed=seed + i)
        except InvalidArgumentError as err:
            raise InvalidArgumentError(f"rater {rater!r}: {err}") from None
    return out
