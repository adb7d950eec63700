r"""Images for the page: intensity statistics, window/level, slices as PNG, volumes as bytes.

Display only: nothing here changes an image or a label.  A *window* is the
intensity range ``[lo, hi]`` mapped to 0..255 (``level`` is its centre,
``window`` its width); by default it is the 1st..99th percentile range of the
gray image, which :func:`intensity_stats` computes (on at most
:data:`STATS_SAMPLE` voxels, evenly strided, so that a large volume costs
milliseconds).

Examples
--------
>>> import numpy as np
>>> gray = np.linspace(0, 100, 101, dtype=np.float32).reshape(1, 101)
>>> stats = intensity_stats(gray)
>>> stats["p1"], stats["p50"], stats["p99"]
(1.0, 50.0, 99.0)
>>> lo, hi = window_bounds(stats)
>>> to_uint8(np.array([0.0, 50.0, 100.0]), lo, hi).tolist()
[0, 128, 255]
>>> png = png_bytes(np.zeros((4, 6), np.uint8))
>>> png[:4] == b"\x89PNG"
True
"""

from __future__ import annotations

import gzip
import io

import numpy as np
from PIL import Image as PILImage

from segloop.server.errors import ApiError

__all__ = ["MAX_LEVEL", "MIN_WINDOW", "STATS_SAMPLE", "gzip_bytes", "intensity_stats",
           "png_bytes", "take_slice", "to_uint8", "volume_bytes", "window_bounds"]

#: Voxels (at most) the percentiles are computed on.
STATS_SAMPLE = 4_000_000
#: Bounds of a window's width and level (float32 arithmetic stays finite inside them).
MIN_WINDOW, MAX_LEVEL = 1e-20, 1e30


def intensity_stats(gray: np.ndarray) -> dict[str, float]:
    """``min``, ``p1``, ``p50``, ``p99``, ``max`` of the finite values of ``gray``."""
    flat = np.asarray(gray).ravel()
    if flat.size > STATS_SAMPLE:
        flat = flat[:: -(-flat.size // STATS_SAMPLE)]
    flat = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
    if not flat.size:
        return {"min": 0.0, "p1": 0.0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    p1, p50, p99 = np.percentile(flat, [1, 50, 99])
    return {"min": float(flat.min()), "p1": float(p1), "p50": float(p50), "p99": float(p99),
            "max": float(flat.max())}


def window_bounds(stats: dict[str, float], window: float | None = None,
                  level: float | None = None) -> tuple[float, float]:
    """The intensity range ``(lo, hi)`` shown; defaults from the p1..p99 range.

    Examples
    --------
    >>> window_bounds({"p1": 0.0, "p99": 10.0}, window=4, level=3)
    (1.0, 5.0)
    """
    lo, hi = stats["p1"], stats["p99"]
    if hi <= lo:  # a constant image: any range holding its value
        lo, hi = stats.get("min", lo), max(stats.get("max", hi), lo + 1.0)
    width = hi - lo if window is None else float(window)
    centre = (lo + hi) / 2 if level is None else float(level)
    if not (np.isfinite(width) and np.isfinite(centre) and MIN_WINDOW <= width <= MAX_LEVEL
            and abs(centre) <= MAX_LEVEL):
        raise ApiError(422, f"window={window!r}, level={level!r}: the window must be a width "
                       f"in [{MIN_WINDOW:g}, {MAX_LEVEL:g}] and the level a centre within "
                       f"+-{MAX_LEVEL:g}")
    lo, hi = centre - width / 2, centre + width / 2
    if not hi > lo:
        raise ApiError(422, f"window={window!r} is too narrow to tell apart at level={level!r}")
    return lo, hi


def to_uint8(array: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``array`` with ``[lo, hi]`` mapped linearly to ``0..255`` (clipped, NaN -> 0)."""
    with np.errstate(over="ignore", invalid="ignore"):  # far outside the window: clipped
        scaled = (np.asarray(array, dtype=np.float32) - np.float32(lo)) \
            * np.float32(255.0 / (hi - lo))
        return np.nan_to_num(np.clip(np.rint(scaled), 0, 255), nan=0.0).astype(np.uint8)


def take_slice(array: np.ndarray, ndim: int, axis: int | None, index: int | None) -> np.ndarray:
    """The 2D slice of a ``ndim``-D image array (channels, if any, trail) to show.

    A 2D image is its own slice (axis and index 0 or omitted); a volume
    needs both.  422 with the valid range for anything else.
    """
    if ndim == 2:
        if axis not in (None, 0) or index not in (None, 0):
            raise ApiError(422, f"axis={axis}, index={index}: a 2D image has one slice "
                           "(omit axis and index, or give 0 and 0)")
        return array
    axis = 0 if axis is None else axis
    if axis not in (0, 1, 2):
        raise ApiError(422, f"axis={axis}: a volume has axes 0 (z), 1 (y), 2 (x)")
    if index is None:
        index = array.shape[axis] // 2
    if not 0 <= index < array.shape[axis]:
        raise ApiError(422, f"index={index} on axis {axis} is outside "
                       f"0..{array.shape[axis] - 1}")
    return np.take(array, index, axis=axis)


def png_bytes(plane: np.ndarray, *, size: int | None = None) -> bytes:
    """A PNG of a ``uint8`` slice (gray, or RGB with a trailing axis of 3).

    ``size`` scales the longest side to that many pixels (nearest
    neighbour, so a pixel stays a block and the aspect ratio is kept).
    """
    plane = np.ascontiguousarray(plane)
    pil = PILImage.fromarray(plane, mode="RGB" if plane.ndim == 3 else "L")
    if size is not None and size != max(plane.shape[:2]):
        scale = size / max(plane.shape[:2])
        pil = pil.resize((max(1, round(plane.shape[1] * scale)),
                          max(1, round(plane.shape[0] * scale))), PILImage.Resampling.NEAREST)
    out = io.BytesIO()
    pil.save(out, format="PNG", compress_level=3)
    return out.getvalue()


def volume_bytes(gray: np.ndarray, dtype: str, lo: float, hi: float) -> bytes:
    """The raw little-endian C-order bytes of the image as ``uint8`` (window), int16 or float32.

    ``int16`` rounds and clips the original values to the type's range.
    """
    if dtype == "uint8":
        array = to_uint8(gray, lo, hi)
    elif dtype == "int16":
        info = np.iinfo(np.int16)
        array = np.clip(np.rint(np.nan_to_num(gray)), info.min, info.max).astype("<i2")
    elif dtype == "float32":
        array = np.asarray(gray, dtype="<f4")
    else:
        raise ApiError(422, f"dtype={dtype!r}: expected uint8, int16 or float32")
    return np.ascontiguousarray(array).tobytes()


def gzip_bytes(raw: bytes, *, level: int = 1) -> bytes:
    """``raw`` gzip-compressed (level 1: fast; volumes compress well anyway)."""
    return gzip.compress(raw, compresslevel=level, mtime=0)
