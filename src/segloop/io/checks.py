"""Argument checks shared by every layer (one place for each rule).

Examples
--------
>>> check_spacing(None, 2)
(1.0, 1.0)
>>> check_spacing([2, 0.5], 2)
(2.0, 0.5)
"""

from __future__ import annotations

import math

from segloop.errors import InvalidArgumentError

__all__ = ["check_spacing"]


def check_spacing(spacing, ndim: int) -> tuple[float, ...]:
    """``spacing`` as ``ndim`` positive finite floats in array order (None means 1).

    Parameters
    ----------
    spacing : sequence of float or None
        Voxel size in mm, ``(z, y, x)`` or ``(y, x)``.
    ndim : int
        Number of spatial axes expected.

    Returns
    -------
    tuple of float
        The validated spacing.

    Raises
    ------
    InvalidArgumentError
        Wrong length, a non-number, zero, negative, NaN or infinite value.
    """
    if spacing is None:
        return (1.0,) * ndim
    try:
        out = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        out = ()
    if len(out) != ndim or not all(math.isfinite(s) and s > 0 for s in out):
        raise InvalidArgumentError(f"spacing must be {ndim} positive numbers in array order "
                                   f"({'z, y, x' if ndim == 3 else 'y, x'}), got "
                                   f"spacing={spacing!r}")
    return out
