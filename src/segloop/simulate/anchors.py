"""The simulated user's anchors for livewire and geodesic contours (2D).

The user places a few anchors on the object's outline, evenly spread, and
then adds one where the tool's contour strays furthest from the true
outline, until the contour is good enough. Anchors lie on the *true
contour*: the ordered chain of the object's boundary pixels
(:func:`true_contour`).

Examples
--------
>>> truth = np.zeros((9, 9), bool); truth[2:7, 2:7] = True
>>> initial_anchors(truth, 4)
[(2, 2), (2, 6), (6, 6), (6, 2)]
>>> next_anchor(np.array([[2, 2], [2, 6], [6, 6], [2, 2]]), truth, [(2, 2), (2, 6), (6, 6)])
AnchorStep(point=(6, 2), index=3, deviation=2.8284...)
"""

from __future__ import annotations

from typing import NamedTuple

import edt
import numpy as np
from scipy import ndimage as ndi
from skimage import draw, measure

from segloop.errors import InvalidArgumentError
from segloop.simulate._checks import as_count, as_mask, as_spacing

__all__ = ["AnchorStep", "initial_anchors", "next_anchor", "true_contour"]


class AnchorStep(NamedTuple):
    """A new anchor, where it goes in the anchor list, and how far the contour strayed there."""

    point: tuple[int, int]
    index: int
    deviation: float


def true_contour(truth) -> np.ndarray:
    """The object's outline as an ordered chain of its boundary pixels.

    The largest connected piece of ``truth`` (4-connected; of equal pieces
    the first in raster order), holes filled, traced between pixel centres
    (:func:`skimage.measure.find_contours` at level 0.5), each point then
    moved onto the object pixel beside it. The chain is 8-connected, runs
    clockwise on screen (``y`` down, ``x`` right), starts at the object's
    topmost-leftmost pixel and does not repeat its first pixel. A part one
    pixel wide is walked there and back.

    Parameters
    ----------
    truth : array_like, 2D
        The object (non-zero is foreground; not empty).

    Returns
    -------
    ndarray of int, shape (m, 2)
        ``(y, x)`` pixels.

    Examples
    --------
    >>> truth = np.zeros((5, 5), bool); truth[1:4, 1:4] = True
    >>> true_contour(truth).tolist()
    [[1, 1], [1, 2], [1, 3], [2, 3], [3, 3], [3, 2], [3, 1], [2, 1]]
    """
    t = as_mask(truth, "truth", ndims=(2,), nonempty=True)
    labels, n = ndi.label(t)
    if n > 1:
        t = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    padded = np.pad(ndi.binary_fill_holes(t), 1)
    line = max(measure.find_contours(padded.astype(float), 0.5), key=len)[:-1]
    y, x = line[:, 0], line[:, 1]
    if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) < 0:  # counter-clockwise on screen
        line = line[::-1]
    lo, hi = np.floor(line).astype(int), np.ceil(line).astype(int)
    lo_in = padded[lo[:, 0], lo[:, 1]]
    pixels = np.where(lo_in[:, None], lo, hi) - 1
    keep = np.any(pixels != np.roll(pixels, 1, axis=0), axis=1)
    if not keep.any():  # a single pixel
        return pixels[:1]
    pixels = pixels[keep]
    start = np.lexsort((pixels[:, 1], pixels[:, 0]))[0]
    return np.roll(pixels, -start, axis=0)


def _arc(contour: np.ndarray, sp: np.ndarray) -> np.ndarray:
    """Arc length (physical) at each point of a closed chain, and the total last."""
    steps = np.linalg.norm(np.diff(contour, axis=0, append=contour[:1]) * sp, axis=1)
    return np.concatenate([[0.0], np.cumsum(steps)])


def initial_anchors(truth, n: int = 4, *, spacing=None) -> list[tuple[int, int]]:
    """``n`` anchors on the true contour, evenly spaced by arc length.

    The first is the contour's start (the topmost-leftmost object pixel);
    the others follow clockwise (on screen), each the contour pixel nearest
    to ``k / n`` of the outline's length. A small object may give fewer
    (the anchors are distinct).

    Parameters
    ----------
    truth : array_like, 2D
        The object.
    n : int
        Number of anchors, at least 1.
    spacing : sequence of 2 float, optional
        Pixel size; arc length is measured in these units.

    Returns
    -------
    list of tuple of int
        ``(y, x)`` anchors in contour order.

    Examples
    --------
    >>> truth = np.zeros((9, 12), bool); truth[2:7, 2:10] = True
    >>> initial_anchors(truth, 3)
    [(2, 2), (2, 9), (6, 5)]
    """
    n = as_count(n, "n", least=1)
    contour = true_contour(truth)
    arc = _arc(contour, as_spacing(spacing, 2))
    wanted = np.arange(n) * arc[-1] / n
    idx = np.clip(np.searchsorted(arc, wanted), 1, len(contour))
    nearer = np.abs(arc[idx - 1] - wanted) <= np.abs(arc[np.minimum(idx, len(arc) - 1)] - wanted)
    idx = np.where(nearer, idx - 1, idx) % len(contour)
    out: list[tuple[int, int]] = []
    for i in idx:
        p = (int(contour[i, 0]), int(contour[i, 1]))
        if p not in out:
            out.append(p)
    return out


def _pixels(current, shape) -> np.ndarray:
    """The pixels of the current contour: a boolean mask's boundary, or a rasterised path."""
    arr = np.asarray(current)
    if arr.dtype == bool and arr.shape == tuple(shape):
        return arr & ~ndi.binary_erosion(arr)
    pts = np.asarray(arr, dtype=float)
    if pts.size == 0:
        return np.zeros(shape, dtype=bool)
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.all(np.isfinite(pts)):
        raise InvalidArgumentError(
            "current must be a boolean mask of the truth's shape or an (n, 2) array of (y, x) "
            f"points, got an array of shape {arr.shape} and dtype {arr.dtype}")
    idx = np.clip(np.rint(pts).astype(int), 0, np.asarray(shape) - 1)
    on = np.zeros(shape, dtype=bool)
    on[idx[:, 0], idx[:, 1]] = True
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        on[draw.line(*a, *b)] = True
    return on


def next_anchor(current, truth, anchors, *, spacing=None) -> AnchorStep | None:
    """The point of the true contour farthest from the current contour, and where it goes.

    Parameters
    ----------
    current : array_like
        The tool's current result: a **boolean** mask of ``truth``'s shape
        (its boundary pixels are the contour), or its contour as an
        ``(n, 2)`` array of ``(y, x)`` points (consecutive points joined by
        straight lines: repeat the first point to close a polygon). An empty
        contour (no closed result yet) counts as the anchors themselves.
    truth : array_like, 2D
        The true object.
    anchors : sequence of (y, x)
        The anchors so far, in contour order (as :func:`initial_anchors`
        gives them and this function keeps them).
    spacing : sequence of 2 float, optional
        Pixel size; distances are measured in these units.

    Returns
    -------
    AnchorStep or None
        ``point``: the true-contour pixel at the largest distance from the
        current contour (not an anchor; the first in contour order if
        several); ``index``: where to insert it into ``anchors`` so they stay
        in contour order (after the anchor that precedes it along the
        contour); ``deviation``: that distance. None when every contour pixel
        lies on the current contour (or is an anchor).

    Examples
    --------
    >>> truth = np.zeros((12, 12), bool); truth[2:10, 2:10] = True
    >>> tool = truth.copy(); tool[2:6, 7:10] = False       # the contour cut a corner off
    >>> next_anchor(tool, truth, [(2, 2), (9, 9), (9, 2)])
    AnchorStep(point=(2, 9), index=1, deviation=3.0)
    """
    contour = true_contour(truth)
    shape = np.shape(truth)
    sp = as_spacing(spacing, 2)
    on = _pixels(current, shape)
    pts = _anchor_points(anchors, shape)
    if not on.any():
        for p in pts:
            on[p] = True
    if not on.any():
        return AnchorStep((int(contour[0, 0]), int(contour[0, 1])), 0, float("inf"))
    dist = edt.edt(np.ascontiguousarray(~on), anisotropy=tuple(sp), black_border=False)
    dev = dist[contour[:, 0], contour[:, 1]].astype(float)
    placed = np.zeros(shape, dtype=bool)
    for p in pts:
        placed[p] = True
    dev[placed[contour[:, 0], contour[:, 1]]] = -1.0
    j = int(np.argmax(dev))
    if dev[j] <= 0:
        return None
    return AnchorStep((int(contour[j, 0]), int(contour[j, 1])), _insert_at(contour, pts, j, sp),
                      float(dev[j]))


def _anchor_points(anchors, shape) -> list[tuple[int, int]]:
    """``anchors`` as in-image integer pixels."""
    try:
        arr = np.asarray(anchors, dtype=float).reshape(-1, 2)
    except (TypeError, ValueError):
        arr = np.full((1, 2), np.nan)
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(
            f"anchors must be a list of finite (y, x) points, got anchors={anchors!r}")
    pts = np.rint(arr).astype(int)
    if np.any((pts < 0) | (pts >= np.asarray(shape))):
        raise InvalidArgumentError(
            f"anchors={np.asarray(anchors).tolist()!r} has a point outside the image of shape "
            f"{tuple(shape)}")
    return [(int(y), int(x)) for y, x in pts]


def _insert_at(contour: np.ndarray, anchors, j: int, sp: np.ndarray) -> int:
    """Where contour point ``j`` goes among ``anchors``: after the one preceding it."""
    if not anchors:
        return 0
    m = len(contour)
    idx = [int(np.argmin((((contour - a) * sp) ** 2).sum(axis=1))) for a in anchors]
    shifted = [(i - idx[0]) % m for i in idx]
    before = [k for k, s in enumerate(shifted) if s <= (j - idx[0]) % m]
    return 1 + max(before, key=lambda k: shifted[k])
