"""Argument checks of the cut tools (graph cut, box + clicks).

* :func:`check_image`, :func:`check_spacing`, :func:`check_options`,
  :func:`check_int` -- the public-entry checks (flags: ``_edit_checks.as_bool``);
* :func:`seed_mask` -- seeds given as points, strokes or a 0/1 mask, rasterised
  (a brush radius is clipped to the image: memory never grows with it);
* :func:`check_box`, :func:`click_list` -- a bounding box and lists of clicks.

Every error is a :class:`~segloop.errors.InvalidArgumentError` on one line,
naming the argument and its value (:func:`shown`: arrays by shape, long values
cut short).

Examples
--------
>>> shown(np.zeros((64, 64), np.uint8))
'array of shape (64, 64), dtype uint8'
>>> seed_mask((3, 5), [[1, 0], [1, 4]]).astype(int)
array([[0, 0, 0, 0, 0],
       [1, 1, 1, 1, 1],
       [0, 0, 0, 0, 0]])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import edt
import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.io.checks import check_spacing as _check_spacing

__all__ = ["LAM_MAX", "check_box", "check_image", "check_int", "check_options", "check_prior",
           "check_spacing", "click_list", "intensities", "seed_mask", "shown"]

_AXES = "zyx"

#: Largest ``lam``: regional costs are a few nats, so beyond this the boundary term is nothing
#: already, and terminal capacities stay finite in float32.
LAM_MAX = 1e6


def shown(value, limit: int = 80) -> str:
    """A one-line, short ``repr`` of ``value`` for an error message."""
    if isinstance(value, np.ndarray) and value.size > 6:
        return f"array of shape {value.shape}, dtype {value.dtype}"
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def intensities(pixels: np.ndarray, *, constant: bool = False) -> str:
    """``"lo..hi"`` of ``pixels`` (``(..., C)``; a list per voxel for colour), for a message.

    With ``constant``: the one intensity if all voxels share it, else ``""``.

    Examples
    --------
    >>> intensities(np.array([[0.5], [2.0]])), intensities(np.full((3, 1), 7.0), constant=True)
    ('0.5..2', '7')
    """
    flat = pixels.reshape(-1, pixels.shape[-1])
    lo, hi = flat.min(axis=0), flat.max(axis=0)

    def text(v):
        return f"{v[0]:.4g}" if len(v) == 1 else "[" + ", ".join(f"{x:.4g}" for x in v) + "]"

    if constant:
        return text(lo) if np.all(lo == hi) else ""
    return f"{text(lo)}..{text(hi)}"


def check_int(value, name: str, lo: int, hi: int | None = None) -> int:
    """``value`` if it is a real integer (not a bool) in ``lo..hi``, else an error."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if not (ok and value >= lo and (hi is None or value <= hi)):
        bounds = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"
        raise InvalidArgumentError(f"{name} must be {bounds}, got {name}={shown(value)}")
    return int(value)


def check_image(image, *, channel_axis=None, ndims=(2, 3), name="image") -> np.ndarray:
    """Return ``image`` as float32 ``(spatial..., C)`` after the public-entry checks.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A non-numeric or non-finite image, a bad ``channel_axis``, or a number
        of spatial axes not in ``ndims``.
    """
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"{name} must be numeric, got dtype {arr.dtype}")
    if channel_axis is None:
        arr = arr[..., None]
    else:
        ok = (isinstance(channel_axis, numbers.Integral) and not isinstance(channel_axis, bool)
              and -arr.ndim <= channel_axis < arr.ndim)
        if not ok:
            raise InvalidArgumentError(f"channel_axis={shown(channel_axis)} is not an axis of "
                                       f"{name} of shape {arr.shape}")
        arr = np.moveaxis(arr, channel_axis, -1)
    spatial = arr.ndim - 1
    if spatial not in ndims:
        what = " or ".join(f"{d}D" for d in ndims)
        raise InvalidArgumentError(f"{name} must be {what} (plus channel_axis for colour), got "
                                   f"shape {np.shape(image)} with channel_axis={channel_axis}")
    if min(arr.shape[:-1]) < 2:
        raise InvalidArgumentError(f"{name} must have at least 2 voxels along every axis, got "
                                   f"shape {np.shape(image)}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise InvalidArgumentError(f"{name} has {int((~np.isfinite(arr)).sum())} NaN/Inf voxels")
    return arr


def check_spacing(spacing, ndim: int) -> np.ndarray:
    """``spacing`` (None = 1) as an array of ``ndim`` positive finite floats."""
    return np.asarray(_check_spacing(spacing, ndim), dtype=np.float64)


def _number(value, name, allow_zero=False, most=math.inf):
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if not (ok and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
            and value <= most):
        sign = ">= 0" if allow_zero else "> 0"
        sign += "" if most == math.inf else f", <= {most:g}"
        raise InvalidArgumentError(f"{name} must be a finite number {sign}, got "
                                   f"{name}={shown(value)}")


def check_prior(*, geodesic, balance) -> tuple[float, float]:
    """The weight of the graph cut's geodesic prior (>= 0) and its balance (in [0, 1]).

    Examples
    --------
    >>> check_prior(geodesic=5, balance=0.7)
    (5.0, 0.7)
    """
    _number(geodesic, "geodesic", allow_zero=True, most=LAM_MAX)
    _number(balance, "balance", allow_zero=True, most=1.0)
    return float(geodesic), float(balance)


def check_options(*, lam, sigma, model, connectivity, radius, ndim):
    """Public-entry checks of the options shared by the cut tools."""
    number = _number

    from segloop.tools.intensity_model import MODELS  # here: intensity_model imports this module

    number(lam, "lam", most=LAM_MAX)
    number(radius, "radius", allow_zero=True)
    if sigma is not None:
        number(sigma, "sigma")
    if not (isinstance(model, str) and model in MODELS):
        raise InvalidArgumentError(f"model must be one of {', '.join(MODELS)}, got "
                                   f"model={shown(model)}")
    check_int(connectivity, "connectivity", 1, ndim)


def _strokes(seeds, ndim: int, name: str) -> list[np.ndarray]:
    """Points ``[[y, x], ...]`` (one stroke) or strokes ``[[[y, x], ...], ...]``."""
    if seeds is None:
        return []
    if isinstance(seeds, (str, bytes)):
        arr, strokes = None, None
    else:
        try:
            arr = np.asarray(seeds, dtype=np.float64)
        except (TypeError, ValueError):  # ragged: strokes of different lengths
            arr = None
        if arr is not None and arr.size == 0:
            return []
        strokes = None
        if arr is None:
            try:
                strokes = [np.asarray(s, dtype=np.float64) for s in seeds]
            except (TypeError, ValueError):
                strokes = None
        elif arr.ndim in (2, 3):
            strokes = [arr] if arr.ndim == 2 else list(arr)
    if strokes is None or any(s.ndim != 2 or s.shape[1] != ndim or len(s) == 0 for s in strokes):
        raise InvalidArgumentError(
            f"{name} must be a stroke [[{', '.join(_AXES[-ndim:])}], ...] or a list of strokes "
            f"({ndim} coordinates per point), got {name}={shown(seeds)}")
    return strokes


def _as_mask(seeds, shape, name: str) -> np.ndarray | None:
    """``seeds`` as a boolean mask if it is one (bool, or integer 0/1 of the image's shape)."""
    if not isinstance(seeds, np.ndarray):
        return None
    if seeds.dtype == bool:
        if seeds.shape != shape:
            raise InvalidArgumentError(f"{name} mask has shape {seeds.shape}, the image {shape}")
        return seeds.copy()
    if seeds.dtype.kind in "iu" and seeds.shape == shape:
        values = np.unique(seeds)
        if not np.isin(values, (0, 1)).all():
            raise InvalidArgumentError(f"{name} mask must hold only 0 and 1, got values "
                                       f"{shown(values.tolist())}")
        return seeds == 1
    return None


def _brush(shape, pts: np.ndarray, spacing, radius: float) -> np.ndarray:
    """Voxels within ``radius`` (physical units) of ``pts``; memory bounded by the image."""
    ndim = len(shape)
    sp = check_spacing(spacing, ndim)
    reach = np.minimum(np.floor(radius / sp), np.asarray(shape) - 1).astype(np.int64)
    mask = np.zeros(shape, dtype=bool)
    limit = radius * radius * (1 + 1e-6) + 1e-9  # inf when radius is huge: every voxel
    if len(pts) * int(np.prod(2 * reach + 1)) <= 2**20:  # a small brush: offsets of a ball
        grid = np.stack(np.meshgrid(*(np.arange(-r, r + 1) for r in reach), indexing="ij"), -1)
        offsets = grid.reshape(-1, ndim)
        offsets = offsets[((offsets * sp) ** 2).sum(axis=1) <= limit]
        pts = (pts[:, None, :] + offsets[None]).reshape(-1, ndim)
        mask[tuple(pts[np.all((pts >= 0) & (pts < np.asarray(shape)), axis=1)].T)] = True
        return mask
    lo = np.maximum(pts.min(axis=0) - reach, 0)
    hi = np.minimum(pts.max(axis=0) + reach + 1, shape)
    window = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    far = np.ones(tuple(hi - lo), dtype=bool)
    far[tuple((pts - lo).T)] = False
    mask[window] = edt.edtsq(far, anisotropy=tuple(sp)) <= limit
    return mask


def seed_mask(shape, seeds, *, spacing=None, radius: float = 0.0, name="seeds") -> np.ndarray:
    """Rasterise seeds: a 0/1 mask, a stroke or a list of strokes.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the image.
    seeds : array_like
        A boolean (or integer 0/1) mask of ``shape``; or a stroke
        ``[[y, x], ...]`` (points in array order joined by straight segments;
        one point is a click); or a list of strokes ``[[[y, x], ...], ...]``.
    spacing : sequence of float, optional
        Voxel size, for ``radius``.
    radius : float
        Brush radius in physical units: voxels within it of a stroke are
        seeds (a radius beyond the image covers the image).
    name : str
        Argument name for error messages.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A point outside the image, a malformed stroke or a mask of another
        shape or with values other than 0/1 (named by ``name``).

    Examples
    --------
    >>> int(seed_mask((9, 9), [[[4, 4]]], radius=1.0).sum())
    5
    >>> int(seed_mask((9, 9), [[4, 4]], radius=1e9).sum())
    81
    """
    shape = tuple(shape)
    mask = _as_mask(seeds, shape, name)
    if mask is not None:
        return mask
    ndim = len(shape)
    points = []
    for stroke in _strokes(seeds, ndim, name):
        if not np.all(np.isfinite(stroke)):
            raise InvalidArgumentError(f"{name} has a non-finite point: {shown(stroke.tolist())}")
        idx = np.rint(stroke).astype(np.int64)
        bad = np.any((idx < 0) | (idx >= np.asarray(shape)), axis=1)
        if bad.any():
            raise InvalidArgumentError(f"{name} point {stroke[bad][0].tolist()!r} lies outside "
                                       f"the image of shape {shape}")
        points.append(idx[:1])
        for a, b in zip(idx[:-1], idx[1:], strict=True):
            n = int(np.abs(b - a).max()) + 1
            points.append(np.rint(np.linspace(a, b, n)).astype(np.int64))
    if not points:
        return np.zeros(shape, dtype=bool)
    pts = np.unique(np.concatenate(points), axis=0)
    if radius > 0:
        return _brush(shape, pts, spacing, radius)
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(pts.T)] = True
    return mask


def check_box(box, shape) -> tuple[np.ndarray, np.ndarray]:
    """``[[y0, x0], [y1, x1]]`` (inclusive corners, any order) -> ``lo``, ``hi`` (exclusive).

    Examples
    --------
    >>> [v.tolist() for v in check_box([[5, 2], [1, 8]], (10, 10))]
    [[1, 2], [6, 9]]
    """
    nd = len(shape)
    try:
        arr = np.asarray(box, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.empty(0)
    if arr.shape != (2, nd) or not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"box must be two corners [[{', '.join(_AXES[-nd:])}], [...]] "
                                   f"in array order, got box={shown(box)}")
    corners = np.rint(arr).astype(np.int64)
    lo, hi = corners.min(axis=0), corners.max(axis=0) + 1
    if np.any(lo < 0) or np.any(hi > np.asarray(shape)):
        raise InvalidArgumentError(f"box={shown(box)} reaches outside the image of shape "
                                   f"{tuple(shape)}")
    if np.any(hi - lo < 2):
        raise InvalidArgumentError(f"box={shown(box)} has zero size: it must span at least 2 "
                                   f"voxels along every axis")
    if np.all(lo == 0) and np.all(hi == np.asarray(shape)):
        raise InvalidArgumentError(f"box={shown(box)} covers the whole image: nothing is known "
                                   f"to be background")
    return lo, hi


def click_list(points, name: str, ndim: int) -> list:
    """``points`` (``[[y, x], ...]``, or None for none) as a list of single points.

    Each point is checked later, named ``name[i]``; here only the list's form.

    Examples
    --------
    >>> click_list([[1, 2]], "positive", 2)
    [[1, 2]]
    """
    if points is None:
        return []
    flat = isinstance(points, Iterable) and not isinstance(points, (str, bytes))
    items = list(points) if flat else []
    if not flat or (items and all(isinstance(v, numbers.Number) for v in items)):
        raise InvalidArgumentError(
            f"{name} must be a list of points [[{', '.join(_AXES[-ndim:])}], ...] (one click is "
            f"[[{', '.join(_AXES[-ndim:])}]]), got {name}={shown(points)}")
    return items
