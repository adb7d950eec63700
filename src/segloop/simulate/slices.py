"""The simulated user of slice interpolation: which slices of a volume are drawn by hand.

The user outlines the object on every ``every``-th slice of its extent along
an axis, and always on its first and last slice (so that the interpolation
never has to guess where the object ends); the tool fills the slices
between. "Work saved" is the number of slices holding the object divided by
the number of slices drawn.

Examples
--------
>>> truth = np.zeros((12, 4, 4), bool); truth[2:10, 1:3, 1:3] = True
>>> given_slices(truth, 3)
[2, 5, 8, 9]
>>> work_saved(truth, given_slices(truth, 3))
2.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.simulate._checks import as_count, as_mask

__all__ = ["given_label", "given_slices", "object_slices", "work_saved"]


def _axis(axis, ndim: int) -> int:
    if not isinstance(axis, int) or isinstance(axis, bool) or not -ndim <= axis < ndim:
        raise InvalidArgumentError(f"axis must be 0, 1 or 2 for a volume, got axis={axis!r}")
    return axis % ndim


def object_slices(truth, *, axis: int = 0) -> np.ndarray:
    """Indices of the slices along ``axis`` that hold part of the object.

    Examples
    --------
    >>> truth = np.zeros((5, 2, 2), bool); truth[[1, 3]] = True
    >>> object_slices(truth).tolist()
    [1, 3]
    """
    t = as_mask(truth, "truth", ndims=(3,), nonempty=True)
    a = _axis(axis, 3)
    return np.flatnonzero(t.any(axis=tuple(i for i in range(3) if i != a)))


def given_slices(truth, every: int, *, axis: int = 0) -> list[int]:
    """The slices drawn by hand: every ``every``-th of the object's extent, plus its last.

    Parameters
    ----------
    truth : array_like, 3D
        The object (not empty).
    every : int
        Step between drawn slices, at least 1 (1: every slice).
    axis : int
        The slicing axis (0: axial slices of a ``(z, y, x)`` volume).

    Returns
    -------
    list of int
        Sorted slice indices: ``first, first + every, ...`` up to the
        object's last slice, and that last slice.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A non-3D or empty ``truth``, ``every < 1`` or a bad ``axis``.

    Examples
    --------
    >>> truth = np.zeros((3, 3, 10), bool); truth[1, 1, 0:10] = True
    >>> given_slices(truth, 4, axis=2)
    [0, 4, 8, 9]
    """
    every = as_count(every, "every", least=1)
    zs = object_slices(truth, axis=axis)
    return sorted(set(range(int(zs[0]), int(zs[-1]) + 1, every)) | {int(zs[-1])})


def given_label(truth, given: Sequence[int], *, axis: int = 0) -> np.ndarray:
    """The truth on the ``given`` slices only (zero elsewhere): the interpolation's input.

    Examples
    --------
    >>> truth = np.ones((4, 2, 2), np.uint8)
    >>> given_label(truth, [0, 3]).sum(axis=(1, 2)).tolist()
    [4, 0, 0, 4]
    """
    arr = np.asarray(truth)
    t = as_mask(arr, "truth", ndims=(3,))
    a = _axis(axis, 3)
    idx = _given(given, t.shape[a])
    out = np.zeros_like(arr)
    sl = [slice(None)] * 3
    sl[a] = idx
    out[tuple(sl)] = arr[tuple(sl)]
    return out


def _given(given, n: int) -> np.ndarray:
    try:
        idx = np.asarray(given)
        ok = idx.ndim == 1 and (idx.size == 0 or np.issubdtype(idx.dtype, np.integer))
    except (TypeError, ValueError):
        ok = False
    if not ok or np.any((idx < 0) | (idx >= n)):
        raise InvalidArgumentError(
            f"given must be a list of slice indices in 0..{n - 1}, got given={given!r}")
    return idx.astype(np.intp)


def work_saved(truth, given: Sequence[int], *, axis: int = 0) -> float:
    """Slices holding the object divided by slices drawn (distinct entries of ``given``).

    Examples
    --------
    >>> truth = np.zeros((41, 3, 3), bool); truth[0:41, 1, 1] = True
    >>> work_saved(truth, given_slices(truth, 40))
    20.5
    """
    n = len(object_slices(truth, axis=axis))
    idx = _given(given, np.shape(truth)[_axis(axis, 3)])
    if idx.size == 0:
        raise InvalidArgumentError("given is empty: at least one slice must be drawn")
    return n / np.unique(idx).size
