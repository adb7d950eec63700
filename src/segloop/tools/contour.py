"""Contours as point paths: checking points, closing, filling, resampling.

Shared by the livewire and geodesic tools. A contour is an ``(n, 2)`` array
of ``(y, x)`` points (pixel indices for traced paths, floats for resampled
ones). A closed contour is stored without repeating its first point; filling
follows :func:`skimage.draw.polygon` (a pixel is inside when its centre is)
plus, by default, the pixels the outline passes through.

Examples
--------
>>> import numpy as np
>>> square = np.array([[1, 1], [1, 4], [4, 4], [4, 1]])
>>> fill_contour(square, (6, 6)).astype(int)
array([[0, 0, 0, 0, 0, 0],
       [0, 1, 1, 1, 1, 0],
       [0, 1, 1, 1, 1, 0],
       [0, 1, 1, 1, 1, 0],
       [0, 1, 1, 1, 1, 0],
       [0, 0, 0, 0, 0, 0]])
>>> resample_contour(square, 8).shape
(8, 2)
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import ndimage as ndi
from skimage import draw, measure

from segloop.errors import InvalidArgumentError

__all__ = [
    "check_point",
    "close_path",
    "fill_contour",
    "join_paths",
    "mask_contour",
    "resample_contour",
    "snap_point",
]


def check_point(point, shape: tuple[int, ...], name: str = "point") -> tuple[int, ...]:
    """Return ``point`` as a tuple of ints after checking it lies inside ``shape``.

    Parameters
    ----------
    point : sequence of numbers
        Index coordinates in array order (rounded to the nearest pixel).
    shape : tuple of int
        The image shape.
    name : str
        Argument name used in the error message.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        If the point has the wrong length, holds anything but finite
        numbers (strings and bools are refused) or falls outside.

    Examples
    --------
    >>> check_point([2.4, 0], (4, 4))
    (2, 0)
    """
    if type(point) is tuple and len(point) == len(shape) \
            and all(type(v) is int and 0 <= v < n for v, n in zip(point, shape, strict=True)):
        return point  # the common case (a cursor position), checked quickly
    try:
        items = list(point)
    except TypeError:
        items = []
    ok = len(items) == len(shape) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) and np.isfinite(v)
        for v in items)
    if not ok:  # strings, bools, NaN or the wrong number of coordinates
        raise InvalidArgumentError(
            f"{name} must be {len(shape)} finite numbers (array order), got {name}={point!r}")
    arr = np.asarray(items, dtype=float)
    idx = tuple(int(v) for v in np.rint(arr))
    if not all(0 <= i < n for i, n in zip(idx, shape, strict=True)):
        raise InvalidArgumentError(
            f"{name}={point!r} lies outside the image of shape {tuple(shape)}")
    return idx


def close_path(points) -> np.ndarray:
    """Return the path with its first point appended unless it already ends there.

    Examples
    --------
    >>> close_path([[0, 0], [0, 2], [2, 2]]).tolist()
    [[0, 0], [0, 2], [2, 2], [0, 0]]
    """
    pts = np.asarray(points)
    if len(pts) and not np.array_equal(pts[0], pts[-1]):
        pts = np.vstack([pts, pts[:1]])
    return pts


def join_paths(segments) -> np.ndarray:
    """Concatenate paths that share end points, dropping the repeated joints.

    Examples
    --------
    >>> join_paths([np.array([[0, 0], [0, 1]]), np.array([[0, 1], [1, 1]])]).tolist()
    [[0, 0], [0, 1], [1, 1]]
    """
    parts = [np.asarray(s) for s in segments if len(s)]
    if not parts:
        return np.empty((0, 2), dtype=np.intp)
    out = [parts[0]]
    for seg in parts[1:]:
        out.append(seg[1:] if np.array_equal(seg[0], out[-1][-1]) else seg)
    return np.concatenate(out)


def fill_contour(contour, shape: tuple[int, int], *, include_boundary: bool = True) -> np.ndarray:
    """Fill a closed contour into a boolean mask.

    Parameters
    ----------
    contour : array_like of shape (n, 2)
        ``(y, x)`` vertices, closed implicitly (last back to first).
    shape : tuple of 2 int
        Output shape.
    include_boundary : bool
        Also set the pixels the outline passes through (as a traced livewire
        path lies on the object's edge); otherwise only pixels whose centre is
        inside the polygon, as :func:`skimage.draw.polygon`. An 8-connected
        chain of integer pixels (a traced contour) is filled by labelling
        (see :func:`_fill_chain`): its pixels are always included.

    Returns
    -------
    ndarray of bool

    Raises
    ------
    segloop.errors.InvalidArgumentError
        If the contour is not an ``(n, 2)`` array of finite numbers with ``n >= 3``.

    Examples
    --------
    >>> fill_contour([[0, 0], [0, 2], [2, 0]], (3, 3)).astype(int)
    array([[1, 1, 1],
           [1, 1, 0],
           [1, 0, 0]])
    """
    pts = np.asarray(contour, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3 or not np.all(np.isfinite(pts)):
        raise InvalidArgumentError(
            f"contour must be an (n, 2) array of finite (y, x) points with n >= 3, "
            f"got shape {pts.shape}")
    ends = np.rint(np.vstack([pts, pts[:1]])).astype(np.intp)
    chain = bool(np.all(np.abs(np.diff(ends, axis=0)).max(axis=1) <= 1))
    if chain and np.array_equal(ends[:-1], pts) and np.all((ends >= 0) & (ends < shape)):
        return _fill_chain(ends[:-1], shape)
    mask = np.zeros(shape, dtype=bool)
    rr, cc = draw.polygon(pts[:, 0], pts[:, 1], shape)
    mask[rr, cc] = True
    if include_boundary:
        if chain:  # an 8-connected pixel chain: the vertices are the outline
            rr, cc = ends[:, 0], ends[:, 1]
        else:
            lines = [draw.line(*a, *b) for a, b in zip(ends[:-1], ends[1:], strict=True)]
            rr = np.concatenate([r for r, _ in lines])
            cc = np.concatenate([c for _, c in lines])
        inside = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
        mask[rr[inside], cc[inside]] = True
    return mask


def _fill_chain(chain: np.ndarray, shape) -> np.ndarray:
    """A closed 8-connected chain of pixels inside the image, and the pixels it encloses.

    The pixels not on the chain that it cuts off from the outside (4-connected
    background components not touching the chain's bounding box, taken one
    pixel wider) are inside. For a simple chain these are the pixels whose
    centres lie inside the polygon through the chain (as
    :func:`skimage.draw.polygon`), found in one labelling instead of a
    point-in-polygon test per pixel and vertex (seconds for a traced contour
    of thousands of pixels); where the chain crosses itself, every enclosed
    pixel counts.
    """
    lo = np.maximum(chain.min(axis=0) - 1, 0)
    hi = np.minimum(chain.max(axis=0) + 2, shape)
    on = np.zeros(tuple(hi - lo), dtype=bool)
    on[tuple((chain - lo).T)] = True
    labels, _ = ndi.label(~on)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    outside = np.zeros(labels.max() + 1, dtype=bool)
    outside[edge] = True
    mask = np.zeros(shape, dtype=bool)
    mask[lo[0]:hi[0], lo[1]:hi[1]] = on | ~outside[labels]
    return mask


def resample_contour(contour, n: int, *, closed: bool = True, spacing=None) -> np.ndarray:
    """Return ``n`` points evenly spaced by arc length along a contour.

    Parameters
    ----------
    contour : array_like of shape (m, 2)
        ``(y, x)`` points.
    n : int
        Number of points wanted (``>= 2``; ``>= 3`` when closed).
    closed : bool
        Whether the contour returns to its first point (which is not repeated
        in the output).
    spacing : sequence of 2 float, optional
        Pixel size per axis; arc length is measured in physical units.

    Returns
    -------
    ndarray of float, shape (n, 2)
        Starts at the contour's first point.

    Examples
    --------
    >>> resample_contour([[0, 0], [0, 4]], 3, closed=False).tolist()
    [[0.0, 0.0], [0.0, 2.0], [0.0, 4.0]]
    """
    pts = np.asarray(contour, dtype=float)
    least = 3 if closed else 2
    if not (isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= least):
        raise InvalidArgumentError(f"n must be an integer >= {least}, got n={n!r}")
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2 or not np.all(np.isfinite(pts)):
        raise InvalidArgumentError(
            f"contour must be an (m, 2) array of finite points with m >= 2, got shape {pts.shape}")
    sp = np.ones(2) if spacing is None else np.asarray(spacing, dtype=float)
    if closed:
        pts = close_path(pts)
    seg = np.linalg.norm(np.diff(pts, axis=0) * sp, axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    wanted = np.linspace(0.0, arc[-1], n + 1 if closed else n)[:n]
    return np.column_stack([np.interp(wanted, arc, pts[:, k]) for k in range(2)])


def mask_contour(mask) -> np.ndarray:
    """The outer contour of the largest connected object of a 2D mask.

    Traced at the 0.5 level between pixel centres
    (:func:`skimage.measure.find_contours`), so the points are half-integers
    on the object's boundary; the first point is not repeated at the end.

    Parameters
    ----------
    mask : array_like of bool, 2D
        The object (other objects are ignored).

    Returns
    -------
    ndarray of float, shape (m, 2)

    Raises
    ------
    segloop.errors.InvalidArgumentError
        If the mask is not 2D or is empty.

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True
    >>> mask_contour(m).shape
    (12, 2)
    """
    arr = np.asarray(mask, dtype=bool)
    if arr.ndim != 2 or not arr.any():
        raise InvalidArgumentError(
            f"mask must be a non-empty 2D mask, got shape {arr.shape} with {int(arr.sum())} "
            "pixels set")
    labels, count = ndi.label(arr)
    if count > 1:
        sizes = ndi.sum_labels(arr, labels, np.arange(1, count + 1))
        arr = labels == 1 + int(np.argmax(sizes))
    filled = ndi.binary_fill_holes(arr)
    lines = measure.find_contours(np.pad(filled, 1).astype(float), 0.5)
    outer = max(lines, key=len) - 1.0
    return outer[:-1] if np.array_equal(outer[0], outer[-1]) else outer


def snap_point(strength: np.ndarray, point, radius: float, spacing=None, *,
               name: str = "radius") -> tuple[int, ...]:
    """The pixel of largest ``strength`` within ``radius`` (physical units) of ``point``.

    Ties go to the pixel nearest ``point``; ``radius=0`` returns the point itself.
    ``name`` is the radius's name in error messages.

    Examples
    --------
    >>> edges = np.zeros((5, 9)); edges[:, 6] = 1.0
    >>> snap_point(edges, (2, 3), 3), snap_point(edges, (2, 3), 2)
    ((2, 6), (2, 3))
    """
    p = check_point(point, strength.shape)
    if not (isinstance(radius, numbers.Real) and not isinstance(radius, bool)
            and np.isfinite(radius) and radius >= 0):
        raise InvalidArgumentError(f"{name} must be a finite number >= 0, got {name}={radius!r}")
    sp = np.ones(strength.ndim) if spacing is None else np.asarray(spacing, dtype=float)
    reach = np.floor(radius / sp).astype(int)
    lo = np.maximum(np.array(p) - reach, 0)
    hi = np.minimum(np.array(p) + reach + 1, strength.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    grids = np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi, strict=True)), indexing="ij")
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, p, sp, strict=True))
    score = np.where(d2 <= radius**2, strength[box], -np.inf)
    best = np.flatnonzero(score == score.max())
    k = best[np.argmin(d2.ravel()[best])]
    return tuple(int(g.ravel()[k]) for g in grids)
