"""Checks of tool parameters at the API's edge: size, finite numbers, points inside the image.

The tools check their own parameters (a 400 naming the parameter); these
checks come first and refuse, with a 422 (413 for size) naming the
parameter, what no tool should see: NaN or infinite numbers, integers
beyond 64 bits, points with the wrong number of coordinates or outside the
image (or slice), parameter objects too large to be a user's clicks.  Points
are array indices, ``[y, x]`` or ``[z, y, x]``, in every parameter of
:data:`POINT_PARAMS` (a point, a list of points, or a list of strokes).

Examples
--------
>>> check_params({"seeds": [[1, 2]], "tolerance": 0.5}, (4, 4))
>>> try:
...     check_params({"seeds": [[1, 9]]}, (4, 4))
... except ApiError as err:
...     print(err.status, err.message)
422 params.seeds: point [1, 9]: x=9 is outside 0..3
"""

from __future__ import annotations

import json
import math
from typing import Any

from segloop.server.errors import ApiError

__all__ = ["MAX_PARAMS_BYTES", "MAX_POINTS", "POINT_PARAMS", "check_finite", "check_params",
           "check_points", "is_number"]

#: Parameters holding points (array indices): a point, or (nested) lists of points.
POINT_PARAMS = ("anchors", "foreground", "background", "box", "positive", "negative", "seeds",
                "points", "vertices", "point")
#: Largest parameter object accepted (JSON bytes), and most points in it.
MAX_PARAMS_BYTES = 256 * 1024
MAX_POINTS = 20_000


def is_number(v: Any) -> bool:
    """Whether ``v`` is an int or a float (not a bool)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def check_finite(name: str, value: Any, depth: int = 0) -> None:
    """422 for a NaN, an infinity or an integer beyond 64 bits anywhere in ``value``."""
    if depth > 6:
        raise ApiError(422, f"params.{name}: nested too deeply")
    if isinstance(value, float) and not math.isfinite(value):
        raise ApiError(422, f"params.{name}: {value} is not a finite number")
    if isinstance(value, int) and abs(value) >= 2**63:
        raise ApiError(422, f"params.{name}: an integer of {value.bit_length()} bits is too large")
    if isinstance(value, list):
        for v in value:
            check_finite(name, v, depth + 1)
    elif isinstance(value, dict):
        for k, v in value.items():
            check_finite(f"{name}.{k}", v, depth + 1)


def check_points(name: str, value: Any, shape: tuple[int, ...], depth: int = 0) -> int:
    """Check a point or (nested) lists of points against ``shape``; how many points.

    Examples
    --------
    >>> check_points("seeds", [[1, 2], [3, 4.4]], (5, 5))
    2
    """
    axes = "z, y, x" if len(shape) == 3 else "y, x"
    if isinstance(value, list) and value and all(is_number(v) for v in value):
        if len(value) != len(shape):
            raise ApiError(422, f"params.{name}: point {value} has {len(value)} coordinates; "
                           f"points here are [{axes}] (array indices)")
        for v, n, ax in zip(value, shape, axes.split(", "), strict=True):
            if isinstance(v, float) and not math.isfinite(v):
                raise ApiError(422, f"params.{name}: point {value}: {ax}={v} is not a finite "
                               "number")
            if not 0 <= round(v) < n:
                raise ApiError(422, f"params.{name}: point {value}: {ax}={v} is outside "
                               f"0..{n - 1}")
        return 1
    if isinstance(value, list) and depth < 3:
        return sum(check_points(name, v, shape, depth + 1) for v in value)
    raise ApiError(422, f"params.{name}: expected a point [{axes}] or a list of points, got "
                   f"{json.dumps(value)[:80]}")


def check_params(params: dict[str, Any], shape: tuple[int, ...]) -> None:
    """422/413 for parameters no tool should see: too big, not finite, points outside."""
    size = len(json.dumps(params))
    if size > MAX_PARAMS_BYTES:
        raise ApiError(413, f"params of {size} bytes exceed the limit of {MAX_PARAMS_BYTES}")
    for key, value in params.items():
        check_finite(key, value)
    points = sum(check_points(k, params[k], shape) for k in POINT_PARAMS if k in params)
    if points > MAX_POINTS:
        raise ApiError(413, f"{points} points in params exceed the limit of {MAX_POINTS}")
    value = params.get("value")
    if value is not None and not (isinstance(value, int) and not isinstance(value, bool)
                                  and 0 <= value <= 65535):
        raise ApiError(422, f"params.value: a label value is an integer in 0..65535, got "
                       f"{json.dumps(value)[:40]}")
