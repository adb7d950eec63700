"""Threshold an image between two levels, with automatic suggestions for the levels.

:func:`suggest_thresholds` computes one intensity histogram (256 bins over
the image, or over ``mask``) and derives from it the classic automatic
thresholds: Otsu's (maximum between-class variance), multi-Otsu's two levels
(three classes), Li's (minimum cross entropy, iterated) and the triangle
method (Zack et al.). One histogram serves all four, so the whole set costs
about as much as :func:`skimage.filters.threshold_otsu` alone.
:func:`threshold` keeps the voxels whose intensity lies in ``[low, high]``;
bounds that keep no voxel are an error (with the image's range), never an
empty label. Colour images (``channel_axis``, e.g. ``-1`` for RGB) are first
reduced to grey by the plain mean of their channels, ``(R + G + B) / 3``.

Examples
--------
>>> import numpy as np
>>> img = np.array([[0.0, 0.1, 0.9], [1.0, 0.2, 0.8]])
>>> s = suggest_thresholds(img)
>>> 0.2 < s["otsu"] < 0.8
True
>>> threshold(img, low=s["otsu"]).astype(int)
array([[0, 0, 1],
       [1, 0, 1]])

References
----------
.. [1] N. Otsu, "A threshold selection method from gray-level histograms",
   IEEE Trans. SMC 9(1), 1979.
.. [2] C.H. Li, P.K.S. Tam, "An iterative algorithm for minimum cross entropy
   thresholding", Pattern Recognition Letters 19(8), 1998.
.. [3] G.W. Zack, W.E. Rogers, S.A. Latt, "Automatic measurement of sister
   chromatid exchange frequency", J. Histochem. Cytochem. 25(7), 1977.
"""

from __future__ import annotations

import numbers

import numpy as np
from skimage.filters import threshold_multiotsu, threshold_otsu

from segloop.errors import InvalidArgumentError
from segloop.tools._edit_checks import as_grey, as_mask
from segloop.tools._label_edit import write_into
from segloop.tools.spec import ToolSpec

__all__ = ["SPEC", "SUGGESTIONS", "suggest_thresholds", "threshold"]

#: Names of the automatic thresholds :func:`suggest_thresholds` returns.
SUGGESTIONS = ("otsu", "multiotsu_low", "multiotsu_high", "li", "triangle")


def _histogram(values: np.ndarray, nbins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts and bin centres of ``nbins`` equal bins from min to max."""
    lo, hi = float(values.min()), float(values.max())
    counts, edges = np.histogram(values, bins=nbins, range=(lo, hi))
    return counts, (edges[:-1] + edges[1:]) / 2


def _li(counts: np.ndarray, centres: np.ndarray) -> float:
    """Li's iterative minimum cross-entropy threshold on a histogram."""
    shift = centres[0] - (centres[1] - centres[0]) / 2  # values become positive
    x = centres - shift
    csum, wsum = np.cumsum(counts), np.cumsum(counts * x)
    total, wtotal = csum[-1], wsum[-1]
    t = wtotal / total
    for _ in range(256):
        k = int(np.searchsorted(x, t, side="right")) - 1  # last bin at or below t
        if k < 0 or k >= len(x) - 1 or csum[k] == 0 or csum[k] == total:
            break
        back, fore = wsum[k] / csum[k], (wtotal - wsum[k]) / (total - csum[k])
        if back <= 0 or fore <= back:
            break
        t_next = (back - fore) / (np.log(back) - np.log(fore))
        if abs(t_next - t) < (x[1] - x[0]) / 2:
            t = t_next
            break
        t = t_next
    return float(t + shift)


def _triangle(counts: np.ndarray, centres: np.ndarray) -> float:
    """Zack's triangle threshold: farthest histogram bin from the peak-to-tail line."""
    nonzero = np.flatnonzero(counts)
    first, last, peak = int(nonzero[0]), int(nonzero[-1]), int(np.argmax(counts))
    if peak - first < last - peak:  # the long tail is on the right: work on a mirrored copy
        h, start, end = counts[::-1], len(counts) - 1 - last, len(counts) - 1 - peak
        flip = True
    else:
        h, start, end, flip = counts, first, peak, False
    if end <= start:
        return float(centres[peak])
    xs = np.arange(start, end + 1)
    # distance (up to a constant factor) from each bin top to the line (start, 0)-(end, h[end])
    dist = h[end] * (xs - start) - (end - start) * h[start:end + 1]
    k = int(xs[np.argmax(dist)])
    k = len(counts) - 1 - k if flip else k
    return float(centres[k])


def suggest_thresholds(image, *, mask=None, nbins: int = 256,
                       channel_axis=None) -> dict[str, float]:
    """Automatic threshold levels of an image (or of the voxels in ``mask``).

    Parameters
    ----------
    image : array_like
        2D or 3D intensity image, finite (plus a colour axis with ``channel_axis``).
    mask : array_like of bool, optional
        Voxels whose histogram is used (e.g. the brain); default all.
    nbins : int
        Histogram bins (at least 8).
    channel_axis : int, optional
        Axis of colour channels (e.g. -1 for RGB): the levels are those of the
        grey image, the mean of the channels.

    Returns
    -------
    dict of str to float
        ``otsu``, ``multiotsu_low`` and ``multiotsu_high`` (three classes;
        both equal ``otsu`` when the histogram has only two filled bins),
        ``li``, ``triangle``, and the intensity range ``min`` / ``max``.
        A bright object is ``threshold(image, low=s["otsu"])``.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A NaN image, an image (or masked region) of one intensity, a mask of
        another shape or an empty mask.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = np.concatenate([rng.normal(0, 1, 500), rng.normal(10, 1, 500)]).reshape(20, 50)
    >>> s = suggest_thresholds(img)
    >>> sorted(s)
    ['li', 'max', 'min', 'multiotsu_high', 'multiotsu_low', 'otsu', 'triangle']
    >>> 3 < s["otsu"] < 7 and 3 < s["li"] < 7
    True
    """
    arr = as_grey(image, channel_axis)
    m = as_mask(mask, arr.shape)
    if not isinstance(nbins, numbers.Integral) or isinstance(nbins, bool) or nbins < 8:
        raise InvalidArgumentError(f"nbins must be an integer >= 8, got nbins={nbins!r}")
    values = arr if m is None else arr[m]
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        where = "image" if m is None else "masked region"
        raise InvalidArgumentError(f"the {where} has one intensity ({lo}): nothing to threshold")
    counts, centres = _histogram(values, int(nbins))
    otsu = float(threshold_otsu(hist=(counts, centres)))
    if np.count_nonzero(counts) >= 3:
        low, high = threshold_multiotsu(classes=3, hist=(counts, centres))
    else:  # two intensity levels make two classes, not three
        low = high = otsu
    return {
        "otsu": otsu,
        "multiotsu_low": float(low),
        "multiotsu_high": float(high),
        "li": _li(counts, centres),
        "triangle": _triangle(counts, centres),
        "min": lo,
        "max": hi,
    }


def _level(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value):
        return float(value)
    raise InvalidArgumentError(f"{name} must be a finite number or None, got {name}={value!r}")


def threshold(image, *, low=None, high=None, mask=None, channel_axis=None) -> np.ndarray:
    """Voxels whose intensity lies between ``low`` and ``high`` (both included).

    Parameters
    ----------
    image : array_like
        2D or 3D intensity image, finite (plus a colour axis with ``channel_axis``).
    low, high : float, optional
        Lower and upper bound; None leaves that side open (at least one is needed).
    mask : array_like of bool, optional
        Only voxels inside it can be selected.
    channel_axis : int, optional
        Axis of colour channels (e.g. -1 for RGB): the bounds apply to the
        mean of the channels.

    Returns
    -------
    ndarray of bool
        The selected voxels (at least one).

    Raises
    ------
    segloop.errors.InvalidArgumentError
        No bound, ``low > high``, bounds that select no voxel (the message
        gives the image's range), a NaN image or a bad mask.

    Examples
    --------
    >>> import numpy as np
    >>> threshold(np.arange(6.0).reshape(2, 3), low=1, high=3).astype(int)
    array([[0, 1, 1],
           [1, 0, 0]])
    """
    arr = as_grey(image, channel_axis)
    lo, hi = _level(low, "low"), _level(high, "high")
    m = as_mask(mask, arr.shape)
    if lo is None and hi is None:
        raise InvalidArgumentError("threshold needs low, high or both; got neither")
    if lo is not None and hi is not None and lo > hi:
        raise InvalidArgumentError(f"low must not exceed high, got low={lo}, high={hi}")
    if hi is None:
        out = arr >= lo
    elif lo is None:
        out = arr <= hi
    else:
        out = arr >= lo
        out &= arr <= hi
    if m is not None:
        out &= m
    if not out.any():
        values = arr if m is None else arr[m]
        where = "the image's" if m is None else "inside mask the image's"
        raise InvalidArgumentError(
            f"low={lo}, high={hi} select no voxel: {where} intensities lie in "
            f"[{float(values.min()):.6g}, {float(values.max()):.6g}]")
    return out


def _resolve(value, name: str, image: np.ndarray, cache: dict):
    """A level given as a number, or as the name of an automatic threshold."""
    if not isinstance(value, str):
        return value
    if value not in SUGGESTIONS:
        raise InvalidArgumentError(f"{name}={value!r} is neither a number nor one of "
                                   f"{', '.join(SUGGESTIONS)}")
    if not cache:
        cache.update(suggest_thresholds(image))
    return cache[value]


def _apply(image, label, *, spacing=None, low=None, high=None, value=1, channel_axis=None):
    """The tool: colour images (``channel_axis``) are thresholded on the mean of their channels."""
    arr = as_grey(image, channel_axis)
    cache: dict = {}
    if low is None and high is None:
        low = "otsu"
    sel = threshold(arr, low=_resolve(low, "low", arr, cache),
                    high=_resolve(high, "high", arr, cache))
    return write_into(sel, label, value)


SPEC = ToolSpec(
    "threshold",
    "keep voxels with low <= intensity <= high (levels as numbers or automatic: otsu, li...; "
    "colour: the mean of the channels)",
    _apply,
    params={
        "low": "lower level: a number, or otsu | multiotsu_low | multiotsu_high | li | triangle "
               "(default otsu when neither level is given)",
        "high": "upper level: a number or an automatic level name (default: open)",
        "value": "label value written where selected (default 1); other voxels of --label kept",
    },
)
