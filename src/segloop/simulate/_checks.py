"""Public-entry checks of the simulated annotator: masks, pairs of masks, counts, generators.

Every public function of :mod:`segloop.simulate` checks its inputs here, so a
bad value is reported the same way everywhere: an
:class:`~segloop.errors.InvalidArgumentError` naming the argument and the value.

Examples
--------
>>> as_mask([[0, 1], [1, 0]], "truth").tolist()
[[False, True], [True, False]]
>>> as_count(3, "n", least=1)
3
"""

from __future__ import annotations

import numbers

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.io.checks import check_spacing

__all__ = ["as_count", "as_mask", "as_pair", "as_rng", "as_spacing", "as_unit"]


def as_mask(mask, name: str, *, ndims=(2, 3), nonempty: bool = False) -> np.ndarray:
    """``mask`` as a boolean array (non-zero is foreground) of one of ``ndims`` dimensions.

    Raises
    ------
    InvalidArgumentError
        Not an array of numbers or bools, NaN values, the wrong number of
        dimensions, or (with ``nonempty``) no voxel set.
    """
    try:
        arr = np.asarray(mask)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be an array, got {name}={mask!r}") from None
    if arr.dtype == object or not (arr.dtype == bool or np.issubdtype(arr.dtype, np.number)):
        raise InvalidArgumentError(f"{name} must be a boolean or integer mask, got dtype "
                                   f"{arr.dtype}")
    if arr.ndim not in ndims:
        dims = " or ".join(f"{d}D" for d in ndims)
        raise InvalidArgumentError(f"{name} must be {dims}, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"{name} holds NaN or infinite values")
    out = arr != 0
    if nonempty and not out.any():
        raise InvalidArgumentError(f"{name} is empty (no voxel set, shape {arr.shape})")
    return out


def as_pair(pred, truth, *, ndims=(2, 3)) -> tuple[np.ndarray, np.ndarray]:
    """``pred`` and ``truth`` as boolean masks of the same shape."""
    p, t = as_mask(pred, "pred", ndims=ndims), as_mask(truth, "truth", ndims=ndims)
    if p.shape != t.shape:
        raise InvalidArgumentError(f"pred has shape {p.shape} but truth has shape {t.shape}")
    return p, t


def as_spacing(spacing, ndim: int) -> np.ndarray:
    """Voxel size in array order as floats (None: 1 on every axis)."""
    return np.asarray(check_spacing(spacing, ndim), dtype=float)


def as_count(value, name: str, *, least: int = 0) -> int:
    """``value`` as an int ``>= least`` (bools and floats refused)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < least:
        raise InvalidArgumentError(f"{name} must be an integer >= {least}, got {name}={value!r}")
    return int(value)


def as_unit(value, name: str) -> float:
    """``value`` as a float in (0, 1] (a target or stopping Dice)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (ok and 0.0 < float(value) <= 1.0):
        raise InvalidArgumentError(f"{name} must be in (0, 1], got {name}={value!r}")
    return float(value)


def as_rng(rng) -> np.random.Generator:
    """The generator to draw sloppiness from (None: a fixed seed, 0, so runs repeat)."""
    if rng is None:
        return np.random.default_rng(0)
    if not isinstance(rng, np.random.Generator):
        raise InvalidArgumentError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {rng!r}")
    return rng
