"""The simulated user's bounding box: tight around the object, optionally a little loose.

A user drags a box from one corner of the object to the opposite one. The
simulated user draws the tight bounding box of the true mask; with
``jitter`` it is as sloppy as a hurried user, but never cuts into the object
(a box that cuts the object off makes the tool fail for a reason no user
would accept).

Examples
--------
>>> truth = np.zeros((8, 10), bool); truth[2:5, 3:9] = True
>>> truth_box(truth)
((2, 3), (4, 8))
"""

from __future__ import annotations

import numpy as np

from segloop.simulate._checks import as_count, as_mask, as_rng

__all__ = ["truth_box"]


def truth_box(truth, *, jitter: int = 0, rng=None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The bounding box of ``truth``: inclusive first and last voxel per axis, array order.

    Parameters
    ----------
    truth : array_like
        The true object, 2D or 3D (non-zero is foreground; not empty).
    jitter : int
        Sloppiness: each side of the box moves *outwards* by a number of
        voxels drawn uniformly from ``0 .. jitter`` (independently per side,
        first the low then the high side of each axis, in axis order), then
        is clipped to the image. The box never gets smaller than the object:
        every voxel of ``truth`` stays inside it. 0 (default): the tight box.
    rng : numpy.random.Generator, optional
        Source of the jitter (default: seed 0). Not used when ``jitter`` is 0.

    Returns
    -------
    tuple
        ``(lo, hi)``: the box's first and last voxel (both inclusive), each a
        tuple of ints in array order: the ``box`` of
        :meth:`segloop.tools.BoxClicksSession.set_box`.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        An empty or non-2D/3D ``truth``, a negative ``jitter`` or a bad ``rng``.

    Examples
    --------
    >>> truth = np.zeros((20, 20), bool); truth[5:10, 6:12] = True
    >>> lo, hi = truth_box(truth, jitter=3, rng=np.random.default_rng(1))
    >>> all(a <= b for a, b in zip(lo, (5, 6))), all(a >= b for a, b in zip(hi, (9, 11)))
    (True, True)
    """
    t = as_mask(truth, "truth", nonempty=True)
    jitter = as_count(jitter, "jitter")
    idx = np.argwhere(t)
    lo, hi = idx.min(axis=0), idx.max(axis=0)
    if jitter:
        draws = as_rng(rng).integers(0, jitter + 1, size=(t.ndim, 2))
        lo = np.maximum(lo - draws[:, 0], 0)
        hi = np.minimum(hi + draws[:, 1], np.asarray(t.shape) - 1)
    return tuple(int(v) for v in lo), tuple(int(v) for v in hi)
