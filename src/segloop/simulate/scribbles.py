"""The simulated user's scribbles: strokes along skeletons, and a ring around the object.

A scribble is one or more strokes of one class (foreground or background),
each an ordered chain of voxels as a hand would draw it; tools such as
:class:`segloop.tools.GraphCutSession` take ``scribble.as_strokes()``.

* First scribbles (:func:`first_scribbles`): a foreground stroke along the
  skeleton of the object (its longest path) and a background stroke along a
  ring a few voxels outside the object (in 3D, on the slice of axis 0 where
  the object is largest).
* Corrections (:func:`next_scribble`): a stroke along the skeleton of the
  largest error region (as :func:`~segloop.simulate.clicks.largest_error`
  chooses it), foreground if it is missed object, background if it is false
  foreground.

The skeleton is :func:`skimage.morphology.skeletonize`; its longest path is
found by two breadth-first searches over the skeleton's voxels
(8/26-neighbours), the first from its first voxel in raster order: the
longest path of a tree, and a long path of a skeleton with loops.

:func:`scribbles` is the older helper of the latency benchmark and the tool
tests (a stroke through the object's core and its bounding box's outline).

Examples
--------
>>> truth = np.zeros((9, 15), bool); truth[3:6, 2:13] = True
>>> fg, bg = first_scribbles(truth, margin=2)
>>> fg.strokes[0].tolist()
[[3, 11], [4, 10], [4, 9], [4, 8], [4, 7], [4, 6], [4, 5], [4, 4], [4, 3], [4, 2]]
>>> fg.foreground, bg.foreground, bool(truth[tuple(np.vstack(bg.strokes).T)].any())
(True, False, False)
"""

from __future__ import annotations

from typing import NamedTuple

import edt
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from skimage.morphology import skeletonize

from segloop.simulate._checks import as_count, as_mask, as_pair, as_spacing
from segloop.simulate.anchors import true_contour
from segloop.simulate.clicks import largest_error

__all__ = ["Scribble", "first_scribbles", "next_scribble", "scribbles", "skeleton_path"]


class Scribble(NamedTuple):
    """Strokes of one class: each an ``(n, ndim)`` int array of voxels in drawing order."""

    strokes: list[np.ndarray]
    foreground: bool

    def as_strokes(self) -> list[list[list[int]]]:
        """The strokes as nested lists, the ``stroke`` of ``GraphCutSession.add_scribble``."""
        return [s.tolist() for s in self.strokes]

    @property
    def size(self) -> int:
        """Number of voxels drawn."""
        return int(sum(len(s) for s in self.strokes))


def skeleton_path(region) -> np.ndarray:
    """The longest path along the skeleton of a 2D or 3D region, as ordered voxels.

    Parameters
    ----------
    region : array_like
        A non-empty mask.

    Returns
    -------
    ndarray of int, shape (n, ndim)
        Neighbouring (8/26-connected) voxels from one end of the path to the
        other; the region's deepest voxel if its skeleton is empty.

    Examples
    --------
    >>> region = np.zeros((5, 9), bool); region[1:4, 1:8] = True
    >>> skeleton_path(region).tolist()
    [[1, 6], [2, 5], [2, 4], [2, 3], [2, 2], [2, 1]]
    """
    r = as_mask(region, "region", nonempty=True)
    skel = skeletonize(r)
    if not skel.any():
        depth = edt.edt(np.ascontiguousarray(r), black_border=True)
        return np.array([np.unravel_index(int(np.argmax(depth)), r.shape)])
    pts = np.argwhere(skel)
    index = np.full(np.add(r.shape, 2), -1, dtype=np.int64)
    index[tuple(pts.T + 1)] = np.arange(len(pts))
    rows, cols = [], []
    for off in np.ndindex(*(3,) * r.ndim):
        step = np.asarray(off) - 1
        if tuple(step) <= (0,) * r.ndim:  # each undirected link once
            continue
        other = index[tuple((pts + 1 + step).T)]
        rows.append(np.flatnonzero(other >= 0))
        cols.append(other[other >= 0])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    graph = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(pts),) * 2).tocsr()
    far = csgraph.breadth_first_order(graph, 0, directed=False, return_predecessors=False)[-1]
    order, pred = csgraph.breadth_first_order(graph, far, directed=False)
    path = [order[-1]]
    while path[-1] != far:
        path.append(pred[path[-1]])
    return pts[path]


def _ring(truth: np.ndarray, margin: int, sp: np.ndarray) -> list[np.ndarray]:
    """The outline of ``truth`` grown by ``margin`` voxels, cut where it meets the object (2D)."""
    grown = edt.edt(np.ascontiguousarray(~truth), anisotropy=tuple(sp / sp.min()),
                    black_border=False) <= margin
    ring = true_contour(grown)
    keep = ~truth[ring[:, 0], ring[:, 1]]
    if keep.all():
        return [ring]
    start = int(np.argmin(keep))  # a dropped pixel: runs then never wrap around
    ring, keep = np.roll(ring, -start, axis=0), np.roll(keep, -start)
    edges = np.flatnonzero(np.diff(keep.astype(np.int8)))
    pieces = np.split(ring, edges + 1)
    flags = np.split(keep, edges + 1)
    return [p for p, f in zip(pieces, flags, strict=True) if f[0]]


def first_scribbles(truth, *, margin: int = 5, spacing=None) -> tuple[Scribble, Scribble]:
    """The first two scribbles: along the object's skeleton, and around the object.

    Parameters
    ----------
    truth : array_like
        The object, 2D or 3D (not empty).
    margin : int
        How far outside the object the background ring runs, in voxels of
        the finest axis (at least 1). Where the ring would leave the image
        it follows the image border; where it would cross the object (an
        object touching the border) it is cut.
    spacing : sequence of float, optional
        Voxel size in array order (makes the ring round in physical space).

    Returns
    -------
    (Scribble, Scribble)
        The foreground stroke (the skeleton's longest path) and the
        background strokes (the ring; in 3D on the slice of axis 0 where the
        object is largest).

    Examples
    --------
    >>> truth = np.zeros((20, 20), bool); truth[6:14, 6:14] = True
    >>> fg, bg = first_scribbles(truth, margin=3)
    >>> bool(truth[tuple(fg.strokes[0].T)].all()), bool(truth[tuple(bg.strokes[0].T)].any())
    (True, False)
    """
    t = as_mask(truth, "truth", nonempty=True)
    margin = as_count(margin, "margin", least=1)
    sp = as_spacing(spacing, t.ndim)
    fg = Scribble([skeleton_path(t)], True)
    if t.ndim == 2:
        return fg, Scribble(_ring(t, margin, sp), False)
    z = int(np.argmax(t.sum(axis=(1, 2))))
    strokes = [np.column_stack([np.full(len(s), z), s]) for s in _ring(t[z], margin, sp[1:])]
    return fg, Scribble(strokes, False)


def next_scribble(pred, truth) -> Scribble | None:
    """A correction: a stroke along the skeleton of the largest error region.

    Parameters
    ----------
    pred, truth : array_like
        The current segmentation and the true object, same 2D/3D shape.

    Returns
    -------
    Scribble or None
        Foreground if the region is missed object, background if it is false
        foreground; None when ``pred`` equals ``truth``.

    Examples
    --------
    >>> truth = np.zeros((8, 12), bool); truth[2:6, 2:10] = True
    >>> pred = truth.copy(); pred[2:6, 7:10] = False     # the right end missed
    >>> s = next_scribble(pred, truth)
    >>> s.foreground, s.strokes[0].tolist()
    (True, [[2, 8], [3, 8]])
    """
    p, t = as_pair(pred, truth)
    region = largest_error(p, t)
    if region is None:
        return None
    lo = np.array([s.start for s in region.box])
    return Scribble([skeleton_path(region.mask[region.box]) + lo], region.positive)


def scribbles(truth, margin: int = 10):
    """A stroke through the core of ``truth`` and the edges of its bounding box grown by ``margin``.

    The fixed seeds of the latency benchmark and of the graph-cut tests (not
    the simulated user's protocol: see :func:`first_scribbles`).

    Returns
    -------
    (list, list)
        Foreground strokes (one stroke of three points along the core's main
        axis) and background strokes (the box's edges, each a two-point
        stroke), as nested lists.

    Examples
    --------
    >>> t = np.zeros((40, 40), bool); t[10:30, 15:25] = True
    >>> fg, bg = scribbles(t)
    >>> len(fg[0]), len(bg)
    (3, 4)
    """
    t = as_mask(truth, "truth", nonempty=True)
    dist = edt.edt(np.ascontiguousarray(t))
    core = np.argwhere(dist >= 0.5 * dist.max())
    centre = core.mean(axis=0)
    axis = np.linalg.svd(core - centre, full_matrices=False)[2][0]
    proj = (core - centre) @ axis
    fg = [[core[np.argmin(proj)].tolist(), core[np.argmin(np.abs(proj))].tolist(),
           core[np.argmax(proj)].tolist()]]
    idx = np.argwhere(t)
    lo = np.maximum(idx.min(axis=0) - margin, 0)
    hi = np.minimum(idx.max(axis=0) + margin, np.asarray(t.shape) - 1)
    corners = [np.where(np.array(bits) == 1, hi, lo) for bits in np.ndindex(*(2,) * t.ndim)]
    bg = [[a.tolist(), b.tolist()] for i, a in enumerate(corners) for b in corners[i + 1:]
          if np.count_nonzero(a != b) == 1]
    return fg, bg
