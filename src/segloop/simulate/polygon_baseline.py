"""The polygon baseline: how many vertices a user without smart tools must click.

The user traces a polygon on the object's outline. The simulated one places
the vertices that Douglas–Peucker simplification (Douglas & Peucker 1973)
keeps of the true contour (:func:`~segloop.simulate.anchors.true_contour`),
filled with :func:`segloop.tools.polygon_mask` (pixel centres inside or on
the outline). For a closed contour the first two vertices are the contour's
start (its topmost-leftmost pixel) and the contour pixel farthest from it;
each arc between two kept vertices is then split at its pixel farthest from
the chord (distance to the segment, in physical units). Splitting the arcs
in order of that distance, a split never larger than its parent's (the
nesting of Douglas–Peucker: a larger tolerance keeps a subset), gives for
every ``n`` the polygon Douglas–Peucker keeps at the tolerance leaving
``n`` vertices: an exact smallest-``n`` search, without bisecting a
tolerance. Ties go to the lowest contour index.

A polygon needs 3 vertices: 1 or 2 score Dice 0.

References
----------
Douglas, D., Peucker, T. (1973). Algorithms for the reduction of the number
of points required to represent a digitized line or its caricature.
Cartographica 10(2), 112-122.

Examples
--------
>>> truth = np.zeros((20, 20), bool); truth[4:15, 3:17] = True
>>> polygon_vertices(truth, 0.9)
4
>>> polygon_curve(truth, 5).round(3).tolist()
[0.0, 0.0, 0.672, 1.0, 1.0]
"""

from __future__ import annotations

import heapq

import numpy as np

from segloop.simulate._checks import as_count, as_mask, as_spacing, as_unit
from segloop.simulate.anchors import true_contour
from segloop.tools.polygon import polygon_mask

__all__ = ["polygon_curve", "polygon_sequence", "polygon_vertices"]


def _farthest(contour: np.ndarray, sp: np.ndarray, a: int, b: int) -> tuple[float, int]:
    """The point of the arc ``a < i < b`` (indices mod len) farthest from segment a-b."""
    m = len(contour)
    idx = np.arange(a + 1, b) % m
    pts = contour[idx] * sp
    p, q = contour[a % m] * sp, contour[b % m] * sp
    d = q - p
    length2 = float(d @ d)
    t = np.zeros(len(idx)) if length2 == 0 else np.clip((pts - p) @ d / length2, 0.0, 1.0)
    dist = np.linalg.norm(pts - (p + t[:, None] * d), axis=1)
    k = int(np.argmax(dist))
    return float(dist[k]), int(idx[k])


def _dp_order(contour: np.ndarray, sp: np.ndarray, n_max: int) -> list[int]:
    """Contour indices in the order Douglas–Peucker adds them (at most ``n_max``)."""
    m = len(contour)
    if m <= 2:
        return list(range(min(m, n_max)))
    far = int(np.argmax(np.linalg.norm((contour - contour[0]) * sp, axis=1)))
    order = [0, far][:n_max] if far else [0]
    heap: list[tuple[float, int, int, int]] = []

    def push(a: int, b: int, parent: float) -> None:
        if b - a > 1:
            dist, j = _farthest(contour, sp, a, b)
            heapq.heappush(heap, (-min(dist, parent), j, a, b))

    if far:
        push(0, far, np.inf)
        push(far, m, np.inf)
    while heap and len(order) < n_max:
        key, j, a, b = heapq.heappop(heap)
        order.append(j)
        unrolled = j if j > a else j + m
        push(a, unrolled, -key)
        push(unrolled, b, -key)
    return order


def polygon_sequence(truth, *, spacing=None, n_max: int | None = None) -> np.ndarray:
    """The polygon's vertices in the order Douglas–Peucker adds them.

    The ``n``-vertex polygon is the first ``n`` of them, taken in contour
    order (clockwise on screen).

    Parameters
    ----------
    truth : array_like, 2D
        The object (not empty).
    spacing : sequence of 2 float, optional
        Pixel size: distances in physical units.
    n_max : int, optional
        Stop after this many (default: every contour pixel).

    Returns
    -------
    ndarray of int, shape (k, 2)

    Examples
    --------
    >>> truth = np.zeros((8, 8), bool); truth[1:7, 2:6] = True
    >>> polygon_sequence(truth, n_max=4).tolist()
    [[1, 2], [6, 5], [1, 5], [6, 2]]
    """
    contour = true_contour(truth)
    n = len(contour) if n_max is None else as_count(n_max, "n_max", least=1)
    return contour[_dp_order(contour, as_spacing(spacing, 2), n)]


def _curve(truth, spacing, n_max: int, target: float | None = None) -> list[float]:
    """Dice of the 1.. ``n_max``-vertex polygons (stopping at ``target`` if given)."""
    t = as_mask(truth, "truth", ndims=(2,), nonempty=True)
    contour = true_contour(t)
    order = _dp_order(contour, as_spacing(spacing, 2), min(n_max, len(contour)))
    lo, hi = contour.min(axis=0), contour.max(axis=0) + 1
    crop = t[lo[0]:hi[0], lo[1]:hi[1]]
    total = int(t.sum())
    out: list[float] = []
    for n in range(1, n_max + 1):
        if n < 3 or len(order) < 3:
            out.append(0.0)
            continue
        if n <= len(order):
            verts = contour[np.sort(order[:n])] - lo
            poly = polygon_mask(crop.shape, verts)
            inter = int((poly & crop).sum())
            out.append(2.0 * inter / (int(poly.sum()) + total))
        else:
            out.append(out[-1])
        if target is not None and out[-1] >= target:
            break
    return out


def polygon_curve(truth, n_max: int, *, spacing=None) -> np.ndarray:
    """Dice of the Douglas–Peucker polygon with 1, 2, ..., ``n_max`` vertices (for plots).

    Parameters
    ----------
    truth : array_like, 2D
        The object (not empty). Dice is measured against all of it (a
        polygon outlines its largest piece, holes filled).
    n_max : int
        Largest vertex count (at least 1). Counts beyond the contour's
        length repeat the Dice of the polygon through every contour pixel.
    spacing : sequence of 2 float, optional
        Pixel size.

    Returns
    -------
    ndarray of float, shape (n_max,)
        ``out[n - 1]`` is the Dice with ``n`` vertices (0 for ``n < 3``).

    Examples
    --------
    >>> truth = np.zeros((12, 12), bool); truth[2:10, 2:10] = True
    >>> polygon_curve(truth, 4).tolist()
    [0.0, 0.0, 0.72, 1.0]
    """
    return np.asarray(_curve(truth, spacing, as_count(n_max, "n_max", least=1)))


def polygon_vertices(truth, target: float, *, spacing=None, n_max: int | None = None) -> int | None:
    """The fewest polygon vertices, traced on the true contour, reaching Dice ``target``.

    Parameters
    ----------
    truth : array_like, 2D
        The object (not empty).
    target : float
        Dice to reach, in (0, 1].
    spacing : sequence of 2 float, optional
        Pixel size.
    n_max : int, optional
        Give up beyond this many vertices (default: the contour's length).

    Returns
    -------
    int or None
        The vertex count; None if even ``n_max`` vertices (or the polygon
        through every contour pixel) stay below ``target`` (an object with
        holes or several pieces may).

    Examples
    --------
    >>> truth = np.zeros((30, 30), bool); truth[5:25, 5:25] = True
    >>> polygon_vertices(truth, 0.9), polygon_vertices(truth, 1.0)
    (4, 4)
    """
    target = as_unit(target, "target")
    limit = len(true_contour(truth)) if n_max is None else as_count(n_max, "n_max", least=1)
    curve = _curve(truth, spacing, limit, target)
    return len(curve) if curve and curve[-1] >= target else None
