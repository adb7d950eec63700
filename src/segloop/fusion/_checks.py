"""Public-entry checks of label fusion: the raters, weights, regions and EM settings.

Every public function of :mod:`segloop.fusion` reads its raters through
:func:`check_raters`, so bad input is reported the same way everywhere: an
:class:`~segloop.errors.InvalidArgumentError` naming the argument, the rater id
when there is one, and what is wrong with it.

Raters are given as a mapping ``rater id -> array`` or as a sequence of arrays
(ids ``"0"``, ``"1"``, ... then); an ndarray is read as a stack of raters along
its first axis.  Every rater is a label map of non-negative integers (boolean,
integer, or float arrays holding whole numbers) of 1, 2 or 3 dimensions, and all
raters share one shape.

Examples
--------
>>> ids, stack = check_raters({"ann": [[0, 1]], "bob": [[1, 1]]}, binary=True)
>>> ids, stack.dtype.name, stack.tolist()
(['ann', 'bob'], 'uint8', [[[0, 1]], [[1, 1]]])
>>> check_raters([[[0, 2]], [[0, 1]]], binary=True)
Traceback (most recent call last):
...
segloop.errors.InvalidArgumentError: raters: rater '0' holds values [0, 2] ...
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np

from segloop.errors import InvalidArgumentError

__all__ = [
    "TIES",
    "check_count",
    "check_prior",
    "check_raters",
    "check_region",
    "check_ties",
    "check_tol",
    "check_weights",
    "present_labels",
]

TIES = ("background", "lowest", "highest")

_MAX_LISTED = 8  # values or raters listed in one message


def _listed(values) -> str:
    values = [int(v) for v in values]
    more = f", ... ({len(values)} values)" if len(values) > _MAX_LISTED else ""
    return "[" + ", ".join(str(v) for v in values[:_MAX_LISTED]) + more + "]"


def _items(raters, name: str) -> list[tuple[str, object]]:
    """``(id, array-like)`` pairs of a mapping, a sequence or a stacked array."""
    if isinstance(raters, Mapping):
        items = [(str(key), value) for key, value in raters.items()]
        ids = [key for key, _ in items]
        if len(set(ids)) != len(ids):
            raise InvalidArgumentError(f"{name}: rater ids {ids} repeat once made strings")
        return items
    if isinstance(raters, np.ndarray):
        if raters.ndim < 2:
            raise InvalidArgumentError(
                f"{name}: an array of raters must stack the raters on its first axis, got "
                f"shape {raters.shape}"
            )
        return [(str(i), raters[i]) for i in range(raters.shape[0])]
    if isinstance(raters, Sequence) and not isinstance(raters, (str, bytes)):
        return [(str(i), value) for i, value in enumerate(raters)]
    raise InvalidArgumentError(
        f"{name} must be a mapping rater id -> mask or a sequence of masks, got "
        f"{type(raters).__name__}"
    )


def _as_labels(value, rater: str, name: str, binary: bool) -> np.ndarray:
    """One rater's array as non-negative integers (checked, not yet cast)."""
    where = f"{name}: rater {rater!r}"
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{where} is not an array") from None
    if arr.dtype == bool:
        pass
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise InvalidArgumentError(f"{where} holds NaN or infinite values")
        if not np.all(arr == np.round(arr)):
            raise InvalidArgumentError(
                f"{where} holds non-integer values (e.g. {arr[arr != np.round(arr)].flat[0]}): "
                "a rater is a label map of whole numbers; threshold a soft map first"
            )
    elif not np.issubdtype(arr.dtype, np.integer):
        raise InvalidArgumentError(f"{where} must hold integer labels, got dtype {arr.dtype}")
    if not 1 <= arr.ndim <= 3:
        raise InvalidArgumentError(
            f"{where} must be a 2D or 3D array (or 1D), got shape {arr.shape}"
        )
    if arr.size == 0:
        raise InvalidArgumentError(f"{where} is empty (shape {arr.shape})")
    if arr.dtype != bool and arr.min() < 0:
        raise InvalidArgumentError(
            f"{where} holds negative labels (min {arr.min()}): labels are integers >= 0"
        )
    if binary and arr.dtype != bool and arr.max() > 1:
        raise InvalidArgumentError(
            f"{where} holds values {_listed(np.unique(arr))} but 0/1 masks are expected here: "
            "pick a class first, e.g. {r: (m == k) for r, m in raters.items()} for class k "
            "(or (m > 0) for any foreground), or fuse the label maps with majority_vote / "
            "multilabel_staple"
        )
    return arr


def check_raters(
    raters, *, binary: bool = False, name: str = "raters"
) -> tuple[list[str], np.ndarray]:
    """Rater ids and the raters stacked as one integer array ``(R, *shape)``.

    Parameters
    ----------
    raters : Mapping[str, array] or Sequence[array] or ndarray
        The raters' label maps: a mapping rater id -> array, or a sequence (ids
        ``"0"``, ``"1"``, ... in order); an ndarray is a stack along axis 0.
    binary : bool
        Require 0/1 (or boolean) masks.
    name : str
        The argument's name in error messages.

    Returns
    -------
    ids : list of str
        Rater ids in the order given.
    stack : ndarray
        ``uint8`` for binary input and labels below 256, else the smallest of
        ``uint16``, ``uint32``, ``int64`` that holds the largest label.

    Raises
    ------
    InvalidArgumentError
        No rater, a rater that is not an integer label map (NaN, fractions,
        negative values), 0-d or 4-d arrays, shapes that differ (every rater's
        shape is listed), or values other than 0/1 when ``binary``.
    """
    items = _items(raters, name)
    if not items:
        raise InvalidArgumentError(f"{name} is empty: give at least one rater's mask")
    arrays = [_as_labels(value, rater, name, binary) for rater, value in items]
    ids = [rater for rater, _ in items]
    shapes = {arr.shape for arr in arrays}
    if len(shapes) > 1:
        listed = ", ".join(f"{rater!r} {arr.shape}" for rater, arr in zip(ids, arrays, strict=True))
        raise InvalidArgumentError(f"{name}: raters have different shapes: {listed}")
    top = max(int(arr.max()) for arr in arrays)
    dtype = next(t for t in (np.uint8, np.uint16, np.uint32, np.int64) if top <= np.iinfo(t).max)
    stack = np.empty((len(arrays), *arrays[0].shape), dtype=dtype)
    for i, arr in enumerate(arrays):
        stack[i] = arr
    return ids, stack


def present_labels(stack: np.ndarray) -> np.ndarray:
    """The labels found anywhere in ``stack``, ascending (``int64``)."""
    top = int(stack.max())
    if top < 1 << 16:
        return np.flatnonzero(np.bincount(stack.ravel(), minlength=top + 1)).astype(np.int64)
    return np.unique(stack).astype(np.int64)


def check_region(region, shape: tuple[int, ...], name: str = "region") -> np.ndarray | None:
    """``region`` as a boolean mask of ``shape`` with at least one voxel (None stays None)."""
    if region is None:
        return None
    try:
        arr = np.asarray(region)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a mask array") from None
    if not (arr.dtype == bool or np.issubdtype(arr.dtype, np.number)) or arr.dtype == object:
        raise InvalidArgumentError(f"{name} must be a boolean mask, got dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise InvalidArgumentError(
            f"{name} has shape {arr.shape} but the raters have shape {tuple(shape)}"
        )
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"{name} holds NaN or infinite values")
    mask = arr != 0
    if not mask.any():
        raise InvalidArgumentError(f"{name} is empty: no voxel to fuse (shape {arr.shape})")
    return mask


def check_weights(weights, ids: list[str], name: str = "weights") -> np.ndarray:
    """Rater weights in the order of ``ids``: finite, >= 0, not all zero."""
    if isinstance(weights, Mapping):
        keys = [str(k) for k in weights]
        missing = [r for r in ids if r not in keys]
        extra = [k for k in keys if k not in ids]
        if missing or extra:
            raise InvalidArgumentError(
                f"{name} must give one weight per rater {ids}: missing {missing}, unknown {extra}"
            )
        lookup = {str(k): v for k, v in weights.items()}
        values = [lookup[r] for r in ids]
    elif isinstance(weights, (Sequence, np.ndarray)) and not isinstance(weights, (str, bytes)):
        values = list(np.ravel(np.asarray(weights, dtype=object)))
        if len(values) != len(ids):
            raise InvalidArgumentError(
                f"{name} has {len(values)} values but there are {len(ids)} raters {ids}"
            )
    else:
        raise InvalidArgumentError(
            f"{name} must be a mapping rater id -> weight or a sequence, got "
            f"{type(weights).__name__}"
        )
    out = np.empty(len(ids))
    for i, (rater, value) in enumerate(zip(ids, values, strict=True)):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not ok or not np.isfinite(value) or value < 0:
            raise InvalidArgumentError(
                f"{name}: the weight of rater {rater!r} must be a finite number >= 0, got {value!r}"
            )
        out[i] = float(value)
    if not out.any():
        raise InvalidArgumentError(f"{name} are all zero: at least one rater must count")
    return out


def check_ties(ties) -> str:
    """``ties`` as one of :data:`TIES`."""
    if ties not in TIES:
        raise InvalidArgumentError(f"ties must be one of {', '.join(TIES)}; got ties={ties!r}")
    return ties


def check_count(value, name: str, *, least: int = 1) -> int:
    """``value`` as an int ``>= least`` (bools and floats refused)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < least:
        raise InvalidArgumentError(f"{name} must be an integer >= {least}, got {name}={value!r}")
    return int(value)


def check_tol(value, name: str = "tol") -> float:
    """``value`` as a finite float > 0."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (ok and np.isfinite(value) and value > 0):
        raise InvalidArgumentError(f"{name} must be a number > 0, got {name}={value!r}")
    return float(value)


def check_prior(value, name: str = "prior") -> float:
    """A probability strictly between 0 and 1."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (ok and 0.0 < float(value) < 1.0):
        raise InvalidArgumentError(f"{name} must be a probability in (0, 1), got {name}={value!r}")
    return float(value)
