"""Fast marching on images: speed maps, travel times and steepest-descent paths.

The primitives of the geodesic tool (:mod:`segloop.tools.geodesic`). An
image defines a speed ``F = 1 / (eps + cost)``: with ``metric="edge"`` the
cost is the direction-free edge cost of
:func:`segloop.tools.edge_cost.local_cost` (fast along edges); with
``metric="intensity"`` it is ``|I - ref| / tolerance`` for the smoothed
intensity ``I`` (fast inside a structure of intensity ``ref``). The front
from the sources arrives at ``T`` with ``|grad T| F = 1``
(:func:`skfmm.travel_time`, first order). Minimal paths come back by discrete
steepest descent on ``T``: each pixel points to the neighbour with the
largest drop of ``T`` per unit length; ``T`` strictly decreases along the
pointers, so a descent cannot loop and ends at a source.

Examples
--------
>>> import numpy as np
>>> t = travel_time(np.ones((5, 5)), [(2, 2)])
>>> pred = descent_pointers(t)
>>> int(pred[0]), int(pred[12])      # the corner steps diagonally; the source stays
(6, 12)
"""

from __future__ import annotations

import itertools
import numbers

import numpy as np
import skfmm
from scipy import ndimage as ndi

from segloop.errors import InvalidArgumentError
from segloop.tools.edge_cost import check_image, check_sigma, check_window, edge_costs

__all__ = ["EPS_RANGE", "METRICS", "TOLERANCE_RANGE", "SpeedModel", "descend",
           "descent_pointers", "line_time", "speed_map", "travel_time"]

#: Names of the speed metrics.
METRICS = ("edge", "intensity")


def travel_time(speed: np.ndarray, sources, *, spacing=None, narrow=None,
                obstacles=None) -> np.ndarray:
    """Arrival time of a front leaving ``sources`` at ``speed`` (fast marching).

    Parameters
    ----------
    speed : ndarray
        Positive speed per pixel (2D or 3D).
    sources : sequence of index tuples, or ndarray of bool
        Start points (or a mask of them, of ``speed``'s shape); the front
        starts half a pixel around each.
    spacing : sequence of float, optional
        Pixel size per axis.
    narrow : float, optional
        Stop the front at this travel time (pixels beyond get ``inf``).
    obstacles : ndarray of bool, optional
        Pixels the front does not enter (``inf``, as are pixels it cannot
        reach around them); a source is never an obstacle.

    Returns
    -------
    ndarray of float
        Travel time in physical units / speed; smallest at the sources.

    Examples
    --------
    >>> t = travel_time(np.ones((1, 5)) * 2.0, [(0, 0)])
    >>> np.round(t, 2).tolist()
    [[-0.25, 0.25, 0.75, 1.25, 1.75]]
    >>> np.round(travel_time(np.ones((1, 4)), np.array([[False, True, False, False]])), 2).tolist()
    [[0.5, -0.5, 0.5, 1.5]]
    >>> travel_time(np.ones((1, 4)), [(0, 1)], obstacles=np.array([[0, 0, 1, 0]], bool)).tolist()
    [[0.5, -0.5, inf, inf]]
    """
    if isinstance(sources, np.ndarray) and sources.dtype == bool:
        phi = np.where(sources, -1.0, 1.0)
    else:
        phi = np.ones(speed.shape)
        for s in sources:
            phi[tuple(s)] = -1.0
    dx = 1.0 if spacing is None else np.asarray(spacing, dtype=float)
    walls = phi > 0
    walls &= False if obstacles is None else np.asarray(obstacles, dtype=bool)
    if not (phi < 0).any() or (phi > 0).sum() == walls.sum():  # no source, or nowhere to go
        return np.where(phi < 0, 0.0, np.inf)
    if walls.any():
        phi = np.ma.MaskedArray(phi, walls)
    out = skfmm.travel_time(phi, speed, dx=dx, order=1, narrow=0.0 if narrow is None else narrow)
    out = np.ma.filled(out, np.inf) if np.ma.isMaskedArray(out) else np.asarray(out)
    out[np.ma.getdata(phi) < 0] *= -1  # inside the start region skfmm reports |T|: the minimum
    return out


def descent_pointers(time: np.ndarray, *, spacing=None) -> np.ndarray:
    """Flat index of each pixel's steepest-descent neighbour on ``time`` (itself at minima).

    The neighbour (of the ``3**ndim - 1``) with the largest ``(T(p) - T(q)) / |p - q|``;
    pixels where ``time`` is ``inf`` (not reached) point to themselves.

    Examples
    --------
    >>> descent_pointers(np.array([[0.0, 1.0, 2.0], [1.0, 1.5, np.inf]])).tolist()
    [0, 0, 1, 0, 0, 5]
    """
    shape = time.shape
    sp = np.ones(time.ndim) if spacing is None else np.asarray(spacing, dtype=float)
    strides = np.array([int(np.prod(shape[k + 1:])) for k in range(time.ndim)])
    dtype = np.int32 if time.size < 2**31 else np.int64
    pred = np.arange(time.size, dtype=dtype).reshape(shape)
    reached = np.isfinite(time)
    if not reached.any():
        return pred.ravel()
    box = ndi.find_objects(reached.astype(np.int8))[0]  # bounding box of the reached pixels
    sub = time[box]
    padded = np.pad(sub, 1, constant_values=np.inf)
    best = np.zeros(sub.shape)
    step = np.zeros(sub.shape, dtype=dtype)
    with np.errstate(invalid="ignore"):  # inf - inf where neither pixel was reached
        for off in itertools.product((-1, 0, 1), repeat=time.ndim):
            if not any(off):
                continue
            window = tuple(slice(1 + o, 1 + o + n) for o, n in zip(off, sub.shape, strict=True))
            slope = (sub - padded[window]) / np.linalg.norm(np.array(off) * sp)
            better = slope > best
            best[better] = slope[better]
            step[better] = int(np.dot(off, strides))
    step[~np.isfinite(sub)] = 0
    pred[box] += step
    return pred.ravel()


#: ``eps`` must lie in ``[1 / EPS_RANGE, EPS_RANGE]`` and ``tolerance`` within a factor
#: ``TOLERANCE_RANGE`` of the image's intensity range. With a reference inside that range
#: (widened by the range on each side) every speed stays above ~1e-7 of the fastest:
#: scikit-fmm treats speeds below ~1e-15 as walls, which would cut paths short.
EPS_RANGE = 1e6
TOLERANCE_RANGE = 1e6


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_) \
        and bool(np.isfinite(value))


class SpeedModel:
    """An image's speed map (for any reference intensity) and its edge features.

    Parameters are those of :func:`speed_map`; ``edges=False`` skips the edge
    features when the metric does not need them. Attributes: ``costs``
    (:class:`~segloop.tools.edge_cost.EdgeCosts` or None), ``smooth`` (the
    smoothed intensity, intensity metric), ``spacing``, ``eps``,
    ``tolerance``.
    """

    def __init__(self, image, *, spacing, channel_axis, intensity_window, sigma, metric, eps,
                 tolerance, edges=True):
        if not (isinstance(metric, str) and metric in METRICS):
            raise InvalidArgumentError(f"metric must be one of {METRICS}, got metric={metric!r}")
        if not (_number(eps) and 1 / EPS_RANGE <= eps <= EPS_RANGE):
            raise InvalidArgumentError(
                f"eps must be a positive number in [{1 / EPS_RANGE:g}, {EPS_RANGE:g}], "
                f"got eps={eps!r}")
        arr, self.spacing = check_image(image, ndim=None, channel_axis=channel_axis,
                                        spacing=spacing)
        self.metric, self.eps, self.smooth, self.costs = metric, float(eps), None, None
        self.range = (0.0, 0.0)
        if metric == "edge" or edges:
            self.costs = edge_costs(image, spacing=spacing, channel_axis=channel_axis,
                                    intensity_window=intensity_window, sigma=sigma, links=False)
        if metric == "intensity":
            sigma = check_sigma(sigma, arr.shape[:-1])
            window = check_window(intensity_window)
            grey = arr.mean(axis=-1) if window is None else np.clip(arr.mean(axis=-1), *window)
            sp = self.spacing
            self.smooth = ndi.gaussian_filter(grey, sp.min() * sigma / sp)
            self.range = (float(grey.min()), float(grey.max()))
            span = self.range[1] - self.range[0]
            lo_tol, hi_tol = span / TOLERANCE_RANGE, span * TOLERANCE_RANGE
            if tolerance is None:
                lo, hi = np.percentile(self.smooth, [1, 99])
                tolerance = max(0.1 * (hi - lo), lo_tol) if span > 0 else 1.0
            if not (_number(tolerance) and tolerance > 0
                    and (span == 0 or lo_tol <= tolerance <= hi_tol)):
                bounds = f" in [{lo_tol:.3g}, {hi_tol:.3g}]" if span > 0 else ""
                raise InvalidArgumentError(
                    f"tolerance must be a positive number{bounds} (the image's intensity range "
                    f"{span:.4g} times 1e-6..1e6), got tolerance={tolerance!r}")
            tolerance = float(tolerance)
        self.tolerance = tolerance

    def check_reference(self, reference) -> float:
        """Validate the intensity followed by ``metric="intensity"``.

        A finite number within the image's intensity range (after the
        intensity window) widened by that range (or by ``tolerance`` for a
        constant image) on each side.
        """
        lo, hi = self.range
        margin = max(hi - lo, self.tolerance)
        if not (_number(reference) and lo - margin <= reference <= hi + margin):
            raise InvalidArgumentError(
                f"reference must be a number in [{lo - margin:.4g}, {hi + margin:.4g}] (the "
                f"image's intensity range [{lo:.4g}, {hi:.4g}], widened by {margin:.4g}), "
                f"got reference={reference!r}")
        return float(reference)

    def speed(self, reference=None) -> np.ndarray:
        """``1 / (eps + cost)``; ``reference`` is the intensity followed (intensity metric)."""
        if self.metric == "edge":
            return 1.0 / (self.eps + self.costs.local)
        reference = self.check_reference(reference)
        return 1.0 / (self.eps + np.abs(self.smooth - reference) / self.tolerance)


_NEIGHBOURS_3D = np.array([o for o in itertools.product((-1, 0, 1), repeat=3) if any(o)])


def descend(time: np.ndarray, start: tuple[int, ...], spacing) -> np.ndarray:
    """Steepest descent on a 3D ``time`` from ``start`` to the minimum, voxel by voxel.

    The path from the minimum (a source) to ``start``, ``(n, 3)``; cheaper
    than :func:`descent_pointers` when a single path is wanted.
    """
    lengths = np.linalg.norm(_NEIGHBOURS_3D * np.asarray(spacing), axis=1)
    upper = np.array(time.shape) - 1
    node, path = np.array(start), [tuple(start)]
    for _ in range(time.size):
        nb = np.clip(node + _NEIGHBOURS_3D, 0, upper)
        slope = (time[tuple(node)] - time[tuple(nb.T)]) / lengths
        k = int(np.argmax(slope))
        if not slope[k] > 0:
            break
        node = nb[k]
        path.append(tuple(int(v) for v in node))
    return np.array(path[::-1])


def speed_map(image, *, spacing=None, channel_axis=None, intensity_window=None, sigma=1.0,
              metric="edge", eps=0.05, tolerance=None, reference=None) -> np.ndarray:
    """The fast-marching speed ``1 / (eps + cost)`` of an image (2D or 3D).

    Parameters
    ----------
    image : array_like, 2D or 3D (plus a channel axis with ``channel_axis``)
        The image, ``(y, x)`` or ``(z, y, x)``.
    spacing : sequence of float, optional
        Pixel size per axis.
    channel_axis : int, optional
        Channel axis of a multi-channel image.
    intensity_window : (float, float), optional
        Clip intensities to ``[lo, hi]`` first.
    sigma : float
        Scale of the image features, in pixels of the finest axis.
    metric : {'edge', 'intensity'}
        Fast along edges, or where the smoothed intensity is near ``reference``.
    eps : float
        Regularisation: the speed is at most ``1 / eps``; smaller hugs edges
        more tightly, larger gives shorter, straighter paths. In ``[1e-6, 1e6]``.
    tolerance : float, optional
        Intensity scale of ``metric="intensity"`` (default: a tenth of the
        1-99 percentile range of the smoothed image); within a factor 1e6 of
        the image's intensity range.
    reference : float, optional
        The intensity followed by ``metric="intensity"`` (required there); at
        most one intensity range below the image's minimum or above its
        maximum.

    Returns
    -------
    ndarray of float

    Examples
    --------
    >>> image = np.zeros((5, 8)); image[:, 4:] = 1.0
    >>> speed_map(image).argmax(axis=1).tolist()    # fastest on the edge
    [3, 3, 3, 3, 3]
    """
    if metric == "intensity" and reference is None:
        raise InvalidArgumentError("metric='intensity' needs a reference intensity")
    return SpeedModel(image, spacing=spacing, channel_axis=channel_axis,
                      intensity_window=intensity_window, sigma=sigma, metric=metric, eps=eps,
                      tolerance=tolerance).speed(reference)


def line_time(speed: np.ndarray, a, b, spacing) -> float:
    """Travel time along the straight segment from ``a`` to ``b``, with a margin.

    It bounds the minimal travel time (up to the discretisation of fast
    marching, hence the margin): fronts need not go further.
    """
    steps = int(np.abs(np.subtract(b, a)).max()) + 1
    line = np.rint(np.linspace(a, b, steps)).astype(int)
    length = np.linalg.norm(np.subtract(b, a) * spacing)
    slowest = float(spacing.max() / speed.min())
    return 1.1 * length * float(np.mean(1.0 / speed[tuple(line.T)])) + 2.0 * slowest
