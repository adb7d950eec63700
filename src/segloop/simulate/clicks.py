"""The simulated user's clicks: the interior-most point of the largest error region.

The standard protocol of the interactive-segmentation literature (Xu et al.
2016; Sofiiuk et al. 2022): compare the current prediction with the truth,
take the largest connected error region, and click at its interior-most
point, the maximum of its distance to the region's boundary. The click is
positive (foreground) when the region is missed object, negative when it is
false foreground.

Conventions, fixed so that every run is reproducible:

* error regions are the connected components (face connectivity: 4
  neighbours in 2D, 6 in 3D) of the missed foreground ``truth & ~pred`` and,
  separately, of the false foreground ``pred & ~truth``; their size is their
  number of voxels;
* of several regions of the largest size, the one whose first voxel comes
  first in flat (C, raster) order wins;
* the distance is the Euclidean distance transform (``edt``) of the region in
  physical units (``spacing``), with the image border counting as boundary (a
  region touching the border is not "deep" there);
* of several voxels at the maximum distance, the one of lowest flat index wins.

References
----------
Xu, N., Price, B., Cohen, S., Yang, J., Huang, T. (2016). Deep interactive
object selection. CVPR.
Sofiiuk, K., Petrov, I., Konushin, A. (2022). Reviving iterative training
with mask guidance for interactive segmentation. ICIP.

Examples
--------
>>> truth = np.zeros((5, 7), bool); truth[1:4, 1:6] = True
>>> next_click(np.zeros_like(truth), truth)
Click(point=(2, 2), positive=True)
>>> next_click(truth, truth) is None
True
"""

from __future__ import annotations

from typing import NamedTuple

import edt
import numpy as np
from scipy import ndimage as ndi

from segloop.simulate._checks import as_count, as_pair, as_rng, as_spacing

__all__ = ["Click", "ErrorRegion", "largest_error", "next_click"]


class Click(NamedTuple):
    """A click in array index order; ``positive`` marks foreground.

    A click unpacks as ``point, positive``, so ``session.add_click(*click)``
    works with :class:`segloop.tools.BoxClicksSession`.
    """

    point: tuple[int, ...]
    positive: bool


class ErrorRegion(NamedTuple):
    """The largest error region: its mask, its bounding box and its kind."""

    mask: np.ndarray
    box: tuple[slice, ...]
    positive: bool


def largest_error(pred, truth) -> ErrorRegion | None:
    """The largest connected region where ``pred`` and ``truth`` disagree.

    Parameters
    ----------
    pred, truth : array_like
        Masks of the same 2D or 3D shape (non-zero is foreground).

    Returns
    -------
    ErrorRegion or None
        ``mask`` (full size, boolean), ``box`` (slices of its bounding box)
        and ``positive`` (True for missed foreground); None when the masks
        agree everywhere. Ties are broken as the module says.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 0, 0]]); pred = np.array([[0, 0, 1, 1, 1]])
    >>> region = largest_error(pred, truth)
    >>> region.mask.astype(int).tolist(), region.positive
    ([[0, 0, 1, 1, 1]], False)
    """
    p, t = as_pair(pred, truth)
    missed, n_missed = ndi.label(t & ~p)
    false, n_false = ndi.label(p & ~t)
    if n_missed + n_false == 0:
        return None
    labels = missed
    labels[false > 0] = false[false > 0] + n_missed
    sizes = np.bincount(labels.ravel(), minlength=n_missed + n_false + 1)
    sizes[0] = 0
    best = np.flatnonzero(sizes == sizes.max())
    if best.size > 1:  # equal sizes: the region met first in raster order
        flat = labels.ravel()
        best = best[np.argmin([np.argmax(flat == b) for b in best])]
    else:
        best = best[0]
    region = labels == best
    box = ndi.find_objects(region.view(np.uint8))[0]
    return ErrorRegion(region, box, bool(best <= n_missed))


def _depth(region: np.ndarray, box, spacing) -> np.ndarray:
    """Distance of every voxel of the region (in its box) to the region's boundary."""
    crop = np.ascontiguousarray(region[box])
    return edt.edt(crop, anisotropy=tuple(float(s) for s in spacing), black_border=True)


def next_click(pred, truth, *, spacing=None, jitter: int = 0, rng=None) -> Click | None:
    """Where the simulated user clicks next: the deepest point of the largest error region.

    Parameters
    ----------
    pred : array_like
        The current segmentation, 2D or 3D (non-zero is foreground).
    truth : array_like
        The true object, same shape.
    spacing : sequence of float, optional
        Voxel size in array order (default 1): depth is measured in these units.
    jitter : int
        Sloppiness: the click moves to a voxel of the same error region
        drawn uniformly within ``jitter`` voxels (Euclidean, in voxels) of
        the deepest point; 0 (default) clicks exactly there.
    rng : numpy.random.Generator, optional
        Source of the jitter (default: seed 0). Not used when ``jitter`` is 0.

    Returns
    -------
    Click or None
        ``(point, positive)``; None when ``pred`` equals ``truth``.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        Masks of other shapes or dimensions, a bad spacing, jitter or rng.

    Examples
    --------
    >>> truth = np.zeros((6, 6), bool); truth[1:5, 1:5] = True
    >>> pred = truth.copy(); pred[0, :] = True            # a false row along the top
    >>> next_click(pred, truth)
    Click(point=(0, 0), positive=False)
    """
    p, t = as_pair(pred, truth)
    sp = as_spacing(spacing, p.ndim)
    jitter = as_count(jitter, "jitter")
    generator = as_rng(rng) if jitter else None
    region = largest_error(p, t)
    if region is None:
        return None
    depth = _depth(region.mask, region.box, sp)
    at = np.array(np.unravel_index(int(np.argmax(depth)), depth.shape))
    if jitter:
        at = _jittered(depth > 0, at, jitter, generator)
    point = tuple(int(a + s.start) for a, s in zip(at, region.box, strict=True))
    return Click(point, region.positive)


def _jittered(region: np.ndarray, at: np.ndarray, jitter: int,
              rng: np.random.Generator) -> np.ndarray:
    """A voxel of ``region`` within ``jitter`` voxels of ``at``, drawn uniformly."""
    lo = np.maximum(at - jitter, 0)
    hi = np.minimum(at + jitter + 1, region.shape)
    near = np.argwhere(region[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]) + lo
    near = near[((near - at) ** 2).sum(axis=1) <= jitter**2]
    return near[rng.integers(len(near))]
