"""Public-entry checks and small helpers shared by the editing tools.

The editing tools (threshold, region growing, brush, polygon, islands,
smoothing, margins, slice interpolation) take an intensity image or a label
map, voxel sizes and points. Each checks its inputs once, here, so that a bad
value is reported the same way everywhere: an
:class:`~segloop.errors.InvalidArgumentError` naming the argument and the value.

Examples
--------
>>> as_spacing(None, 2)
(1.0, 1.0)
>>> as_points([[1, 2]], (4, 5)).tolist()
[[1.0, 2.0]]
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.io.checks import check_spacing as as_spacing

__all__ = [
    "as_axis",
    "as_bool",
    "as_channel_axis",
    "as_grey",
    "as_image",
    "as_label",
    "as_mask",
    "as_number",
    "as_points",
    "as_shape",
    "as_spacing",
    "on_one_slice",
]


def _dims(ndims) -> str:
    return " or ".join(f"{d}D" for d in ndims)


def as_axis(axis, ndim: int, *, name: str = "axis") -> int:
    """``axis`` of a volume (``ndim`` must be 3) as a non-negative int."""
    if ndim != 3:
        raise InvalidArgumentError(f"{name}={axis!r} goes with a 3D array, got a {ndim}D one")
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool) or not -3 <= axis < 3:
        raise InvalidArgumentError(f"{name} must be 0, 1 or 2 on a volume, got {name}={axis!r}")
    return int(axis) % 3


def as_bool(value, name: str) -> bool:
    """``value`` when it is a real bool (``True``/``False``, NumPy's too), else an error.

    Strings such as ``"no"`` and numbers are refused rather than read by their truth value.

    Examples
    --------
    >>> as_bool(False, "erase")
    False
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InvalidArgumentError(f"{name} must be true or false, got {name}={value!r}")


def as_channel_axis(channel_axis, ndim: int, *, name: str = "image") -> int | None:
    """``channel_axis`` (None allowed) as a non-negative axis of an array of ``ndim`` axes."""
    if channel_axis is None:
        return None
    if (not isinstance(channel_axis, numbers.Integral) or isinstance(channel_axis, bool)
            or not -ndim <= channel_axis < ndim):
        raise InvalidArgumentError(f"channel_axis={channel_axis!r} is not an axis of {name} "
                                   f"({ndim} axes)")
    return int(channel_axis) % ndim


def as_shape(shape, *, ndims=(2, 3), name: str = "shape") -> tuple[int, ...]:
    """``shape`` as a tuple of positive ints with a number of axes in ``ndims``.

    Examples
    --------
    >>> as_shape((3, 4))
    (3, 4)
    """
    try:
        ok = len(shape) in ndims and all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in shape)
    except TypeError:
        ok = False
    if not ok:
        raise InvalidArgumentError(f"{name} must be {_dims(ndims)}: a tuple of positive "
                                   f"integers, got {name}={shape!r}")
    return tuple(int(n) for n in shape)


def as_grey(image, channel_axis=None, *, ndims=(2, 3), name: str = "image") -> np.ndarray:
    """``image`` as a grey finite float array: with ``channel_axis``, the mean of the channels.

    Without ``channel_axis`` this is :func:`as_image`. With it (e.g. ``-1`` for
    RGB), every channel counts equally: ``(R + G + B) / 3``, not a luminance
    weighting, and an alpha channel counts as a channel too.

    Examples
    --------
    >>> import numpy as np
    >>> as_grey(np.array([[[0, 30, 60]]], np.uint8), channel_axis=-1)
    array([[30.]], dtype=float32)
    """
    if channel_axis is None:
        return as_image(image, ndims=ndims, name=name)
    arr = np.asarray(image)
    axis = as_channel_axis(channel_axis, arr.ndim, name=name)
    arr = as_image(np.moveaxis(arr, axis, -1), ndims=tuple(d + 1 for d in ndims), name=name)
    return arr.mean(axis=-1, dtype=np.float64).astype(arr.dtype, copy=False)


def as_image(image, *, ndims=(2, 3), name: str = "image") -> np.ndarray:
    """``image`` as a finite float array of 2 or 3 axes (no copy when it already is one).

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A non-numeric array, NaN/Inf voxels, or a number of axes not in ``ndims``.
    """
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim not in ndims or arr.size == 0:
        raise InvalidArgumentError(f"{name} must be a non-empty {_dims(ndims)} array, "
                                   f"got shape {arr.shape}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float32)
    elif not np.isfinite(arr).all():
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise InvalidArgumentError(f"{name} has {bad} NaN/Inf voxels")
    return arr


def as_label(label, *, shape=None, ndims=(2, 3), name: str = "label") -> np.ndarray:
    """``label`` as a non-negative integer array (booleans become ``uint8``).

    Parameters
    ----------
    label : array_like
        A label map: 0 is background, positive integers are labels.
    shape : tuple of int, optional
        The shape it must have (that of the image it goes with).
    ndims : tuple of int
        Accepted numbers of axes.
    name : str
        Argument name for the error message.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        Another shape, a non-integer value or a negative value.
    """
    arr = np.asarray(label)
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            raise InvalidArgumentError(f"{name} must hold whole numbers, got dtype {arr.dtype} "
                                       "with fractional or NaN values")
        arr = arr.astype(np.int32)
    elif arr.dtype.kind not in "iu":
        raise InvalidArgumentError(f"{name} must be an integer label map, got dtype {arr.dtype}")
    if shape is not None and arr.shape != tuple(shape):
        raise InvalidArgumentError(f"{name} has shape {arr.shape}, expected {tuple(shape)} "
                                   "(the image's shape)")
    if arr.ndim not in ndims or arr.size == 0:
        raise InvalidArgumentError(f"{name} must be a non-empty {_dims(ndims)} array, "
                                   f"got shape {arr.shape}")
    if arr.dtype.kind == "i" and arr.min() < 0:
        raise InvalidArgumentError(f"{name} must not hold negative values, got {int(arr.min())}")
    return arr


def as_mask(mask, shape, *, name: str = "mask") -> np.ndarray | None:
    """``mask`` (None allowed) as a boolean array of ``shape``."""
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.shape != tuple(shape):
        raise InvalidArgumentError(f"{name} has shape {arr.shape}, expected {tuple(shape)}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InvalidArgumentError(f"{name} holds NaN/Inf values")
    arr = arr.astype(bool, copy=False)
    if not arr.any():
        raise InvalidArgumentError(f"{name} is empty (no voxel set)")
    return arr


def as_number(value, name: str, *, lo: float = 0.0, lo_open: bool = False,
              hi: float = math.inf) -> float:
    """``value`` as a finite float in ``[lo, hi]`` (``(lo, hi]`` when ``lo_open``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi:
        return float(value)
    left = "(" if lo_open else "["
    raise InvalidArgumentError(f"{name} must be a number in {left}{lo}, {hi}], "
                               f"got {name}={value!r}")


def as_points(points, shape, *, name: str = "points") -> np.ndarray:
    """``points`` (one point or a list) as an ``(n, ndim)`` float array inside ``shape``.

    Coordinates are array indices (``(y, x)`` or ``(z, y, x)``); a point lies
    inside when it rounds to a voxel of the image.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        No point, a wrong number of coordinates, NaN, or a point outside.
    """
    ndim = len(shape)
    try:
        arr = np.asarray(points)
        # numbers only: strings, booleans and objects are refused rather than converted
        arr = arr.astype(np.float64) if arr.dtype.kind in "iuf" else np.empty((0, 0))
    except (TypeError, ValueError):
        arr = np.empty((0, 0))
    if arr.ndim == 1 and arr.size == ndim:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != ndim or len(arr) == 0 or not np.isfinite(arr).all():
        raise InvalidArgumentError(
            f"{name} must be one or more points of {ndim} finite coordinates "
            f"[{', '.join('zyx'[-ndim:])}], got {name}={points!r}")
    idx = np.rint(arr)
    outside = np.any((idx < 0) | (idx > np.asarray(shape) - 1), axis=1)
    if outside.any():
        bad = arr[np.argmax(outside)].tolist()
        raise InvalidArgumentError(f"{name} has a point {bad} outside the image of shape "
                                   f"{tuple(shape)}")
    return arr


def on_one_slice(shape, points, axis, *, name: str = "points"):
    """Where points that must share one slice of a volume lie.

    Returns
    -------
    take : tuple
        Index of the slice (an int on ``axis``, full slices elsewhere).
    plane_points : ndarray, shape (n, 2)
        The points' coordinates within the slice.
    axis : int
        ``axis`` made non-negative.

    Examples
    --------
    >>> take, pts, axis = on_one_slice((4, 5, 6), [[2, 1, 1], [2, 3, 4]], 0)
    >>> take[0], pts.tolist(), axis
    (2, [[1.0, 1.0], [3.0, 4.0]], 0)
    """
    axis = as_axis(axis, len(shape))
    pts = as_points(points, shape, name=name)
    index = np.unique(np.rint(pts[:, axis]).astype(int))
    if index.size != 1:
        raise InvalidArgumentError(f"with axis={axis} every point of {name} must lie on one "
                                   f"slice, got slices {index.tolist()}")
    take = tuple(int(index[0]) if i == axis else slice(None) for i in range(3))
    return take, np.delete(pts, axis, axis=1), axis
