"""Geodesic minimal paths by fast marching (scikit-fmm): contours and 3D centrelines.

The image defines a speed ``F = 1 / (eps + cost)`` (:mod:`segloop.tools.fast_marching`):
``metric="edge"`` is fast along edges, for outlining an object;
``metric="intensity"`` is fast where the smoothed intensity is that of the
clicked points, for tracing a vessel or the spinal cord. The front propagated
from an anchor gives the travel time ``T``; a minimal path is read back by
discrete steepest descent on ``T`` (robust: it cannot loop). In 2D the
descent pointers form a :class:`~segloop.tools.path_tree.PathTree`, so
:class:`GeodesicSession` has the interface of the livewire session and
answers mouse moves as fast.

References
----------
.. [1] L. D. Cohen and R. Kimmel, "Global minimum for active contour models:
       a minimal path approach", IJCV 24(1), 57-78, 1997.

Examples
--------
>>> import numpy as np
>>> from segloop.data.phantoms import disk
>>> truth = disk((40, 40), (20, 20), 12)
>>> mask = geodesic_mask(truth * 1.0, [(8, 20), (20, 32), (32, 20), (20, 8)])
>>> bool(2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.9)
True
"""

from __future__ import annotations

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.tools.contour import check_point
from segloop.tools.fast_marching import (
    SpeedModel,
    descend,
    descent_pointers,
    line_time,
    travel_time,
)
from segloop.tools.path_tree import (
    AnchorSession,
    PathTree,
    check_anchors,
    check_bool,
    paint_anchors,
    trace_anchors,
    write_label,
)
from segloop.tools.spec import ToolSpec

__all__ = ["SPEC", "GeodesicSession", "geodesic_contour", "geodesic_mask", "geodesic_path_3d"]


class GeodesicSession(AnchorSession):
    """Anchors joined by geodesic minimal paths on a 2D image (the livewire interface).

    Parameters
    ----------
    image : array_like, 2D (or 3D with ``channel_axis``)
        The image ``(y, x)``.
    metric : {'edge', 'intensity'}
        Follow edges (outlines) or regions of the anchors' intensity (centrelines).
    reference : float, optional
        Intensity followed by ``metric="intensity"`` (default: the smoothed
        intensity at the first anchor, forgotten with that anchor by
        :meth:`clear` or :meth:`remove_last_anchor`).
    window : float or None
        The front from a new anchor first stops after (at least) this many
        pixels, and goes further only when the cursor leaves the region
        reached; None propagates it over the whole image at once.
    spacing, channel_axis, intensity_window, sigma, eps, tolerance
        As in :func:`segloop.tools.fast_marching.speed_map`.

    Examples
    --------
    >>> image = np.full((20, 30), 0.2); image[10, :] = 1.0       # a bright line
    >>> s = GeodesicSession(image, metric="intensity")
    >>> _ = s.add_anchor((10, 2))
    >>> path = s.path_to((10, 27))                               # a mouse move
    >>> len(path), sorted(set(path[:, 0].tolist()))              # along the line
    (26, [10])
    """

    def __init__(self, image, *, spacing=None, channel_axis=None, intensity_window=None,
                 sigma=1.0, metric="edge", eps=0.05, tolerance=None, reference=None,
                 window: float | None = 48.0):
        super().__init__(window=window)
        self._metric = SpeedModel(image, spacing=spacing, channel_axis=channel_axis,
                               intensity_window=intensity_window, sigma=sigma, metric=metric,
                               eps=eps, tolerance=tolerance)
        costs = self._metric.costs
        if costs.local.ndim != 2:
            raise InvalidArgumentError(
                f"GeodesicSession takes a 2D image, got shape {np.shape(image)}; "
                "use geodesic_path_3d for volumes")
        self.shape, self.spacing, self.strength = costs.local.shape, costs.spacing, costs.magnitude
        if reference is not None and metric == "intensity":
            reference = self._metric.check_reference(reference)
        self.reference = reference
        self._own_reference = metric == "intensity" and reference is None  # from anchors[0]
        self._speed = None if self._own_reference else self._metric.speed(reference)

    def speed(self) -> np.ndarray:
        """The speed map (for ``metric="intensity"``, known once the first anchor is placed)."""
        if self._speed is None:
            if not self.anchors:
                raise InvalidArgumentError("metric='intensity' needs an anchor or a reference")
            self.reference = float(self._metric.smooth[self.anchors[0]])
            self._speed = self._metric.speed(self.reference)
        return self._speed

    def _forget_reference(self) -> None:
        """Drop a reference taken from the first anchor (it goes with that anchor)."""
        if self._own_reference and not self.anchors:
            self.reference, self._speed, self._trees = None, None, {}

    def remove_last_anchor(self) -> None:
        """Undo as in :class:`AnchorSession`; removing the first anchor forgets its reference."""
        super().remove_last_anchor()
        self._forget_reference()

    def clear(self) -> None:
        """Remove every anchor, and the reference taken from the first one."""
        super().clear()
        self._forget_reference()

    def _window_reach(self) -> float:
        # the front is at most (1 + eps) slow per unit length: this time covers `window` pixels
        return self.window * self.spacing.min() * (1.0 + self._metric.eps)

    def _line_reach(self, anchor, target) -> float:
        return line_time(self.speed(), anchor, target, self.spacing)

    def _detour(self, i, target, avoid) -> np.ndarray | None:
        """A front from ``anchors[i]`` that does not enter ``avoid``; descent from ``target``."""
        t = travel_time(self.speed(), [self.anchors[i]], spacing=self.spacing, obstacles=avoid)
        if not np.isfinite(t[target]):
            return None
        pred = descent_pointers(t, spacing=self.spacing)
        return PathTree(pred, self.shape).path(target)

    def _grow(self, anchor, reach, tree=None) -> PathTree:
        # scikit-fmm cannot resume a front: every growth starts again from the anchor
        t = travel_time(self.speed(), [anchor], spacing=self.spacing, narrow=reach)
        pred = descent_pointers(t, spacing=self.spacing)
        return PathTree(pred, self.shape, reach=reach, complete=bool(np.isfinite(t).all()),
                        root=anchor)


def geodesic_contour(image, anchors, *, closed=True, snap_radius=0.0, **options) -> np.ndarray:
    """The geodesic minimal path through ``anchors`` in order (closed by default).

    Parameters
    ----------
    image : array_like, 2D (or 3D with ``channel_axis``)
        The image ``(y, x)``.
    anchors : sequence of (y, x)
        The points the contour passes through.
    closed : bool
        Join the last anchor back to the first.
    snap_radius : float
        Move every anchor to the strongest edge within this radius first.
    **options
        ``spacing, channel_axis, intensity_window, sigma, metric, eps,
        tolerance, reference`` as in :class:`GeodesicSession`.

    Returns
    -------
    ndarray of int, shape (n, 2)
        8-connected ``(y, x)`` pixels; a closed contour does not repeat its start.

    Examples
    --------
    >>> image = np.full((20, 30), 0.2); image[10, :] = 1.0      # a bright line
    >>> path = geodesic_contour(image, [(10, 2), (10, 27)], closed=False, metric="intensity")
    >>> sorted(set(path[:, 0].tolist()))
    [10]
    """
    session = GeodesicSession(image, **options)
    return trace_anchors(session, anchors, closed=closed, snap_radius=snap_radius)


def geodesic_mask(image, anchors, *, snap_radius=0.0, **options) -> np.ndarray:
    """The closed geodesic contour through ``anchors`` filled into a boolean mask.

    Takes the options of :func:`geodesic_contour` (except ``closed``).

    Examples
    --------
    >>> image = np.zeros((20, 20)); image[5:15, 5:15] = 1.0
    >>> m = geodesic_mask(image, [(5, 5), (5, 14), (14, 14), (14, 5)])
    >>> bool(m[5:15, 5:15].all()), int(m.sum()) <= 144
    (True, True)
    """
    session = GeodesicSession(image, **options)
    trace_anchors(session, anchors, closed=True, snap_radius=snap_radius)
    return session.mask()


def geodesic_path_3d(volume, start, end, *, spacing=None, metric="intensity", sigma=1.0,
                     intensity_window=None, eps=0.05, tolerance=None,
                     reference=None) -> np.ndarray:
    """Minimal path between two voxels of a volume (e.g. a vessel or cord centreline).

    Parameters
    ----------
    volume : array_like, 3D
        The volume ``(z, y, x)``.
    start, end : sequence of 3 numbers
        End points, voxel indices.
    spacing : sequence of 3 float, optional
        Voxel size per axis.
    metric, sigma, intensity_window, eps, tolerance, reference
        As in :class:`GeodesicSession`; with ``metric="intensity"`` the
        reference defaults to the mean smoothed intensity at both ends.

    Returns
    -------
    ndarray of int, shape (n, 3)
        26-connected voxels from ``start`` to ``end``.

    Examples
    --------
    >>> vol = np.full((8, 8, 20), 0.1); vol[4, 4, :] = 1.0     # a bright tube along x
    >>> path = geodesic_path_3d(vol, (4, 4, 1), (4, 4, 18))
    >>> len(path), bool((path[:, :2] == 4).all())
    (18, True)
    """
    arr = np.asarray(volume)
    if arr.ndim != 3:
        raise InvalidArgumentError(f"volume must be 3D (z, y, x), got shape {arr.shape}")
    a, b = check_point(start, arr.shape, "start"), check_point(end, arr.shape, "end")
    if a == b:
        raise InvalidArgumentError(f"start and end are the same voxel {list(a)}; a path needs two")
    m = SpeedModel(arr, spacing=spacing, channel_axis=None, intensity_window=intensity_window,
                sigma=sigma, metric=metric, eps=eps, tolerance=tolerance, edges=False)
    if metric == "intensity" and reference is None:
        reference = 0.5 * (m.smooth[a] + m.smooth[b])
    speed, sp = m.speed(reference), m.spacing
    t = travel_time(speed, [a], spacing=sp, narrow=line_time(speed, a, b, sp))
    if not np.isfinite(t[b]):
        t = travel_time(speed, [a], spacing=sp)
    path = descend(t, b, sp)
    if tuple(path[0]) != a:  # cannot happen with valid speeds; never return a cut path
        raise InvalidArgumentError(
            f"no path from start={list(a)} to end={list(b)} (end not reached by the front)")
    return path


def _apply(image, label, *, spacing=None, anchors, snap_radius=0.0, intensity_window=None,
           value=1, sigma=1.0, channel_axis=None, closed=None, metric=None, eps=0.05,
           tolerance=None):
    if closed is not None:
        check_bool(closed, "closed")
    ndim = np.ndim(image) - (channel_axis is not None)
    if ndim == 3:  # a centreline through the anchors, painted into the volume
        if closed:
            raise InvalidArgumentError("closed contours are 2D only; got a 3D image")
        pts = check_anchors(anchors, np.shape(image), closed=False)
        mask = np.zeros(np.shape(image), dtype=bool)
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            path = geodesic_path_3d(image, a, b, spacing=spacing, metric=metric or "intensity",
                                    sigma=sigma, intensity_window=intensity_window, eps=eps,
                                    tolerance=tolerance)
            mask[tuple(path.T)] = True
        return write_label(mask, label, value)
    session = GeodesicSession(image, spacing=spacing, channel_axis=channel_axis,
                              intensity_window=intensity_window, sigma=sigma,
                              metric=metric or "edge", eps=eps, tolerance=tolerance)
    return paint_anchors(session, anchors, label, value=value,
                         closed=True if closed is None else closed, snap_radius=snap_radius)


SPEC = ToolSpec(
    "geodesic",
    "minimal paths by fast marching: a contour through anchors (2D) or a centreline (3D)",
    _apply,
    params={
        "anchors": "list of [y, x] (2D) or [z, y, x] (3D) points the path passes through, in order",
        "metric": "'edge' (follow edges; 2D default) or 'intensity' (follow the anchors' "
                  "intensity; 3D default)",
        "snap_radius": "2D: move each anchor to the strongest edge within this radius (mm)",
        "intensity_window": "[lo, hi]: clip intensities to this window first",
        "value": "label value written (default 1)",
        "sigma": "scale of the image features in pixels (default 1)",
        "tolerance": "intensity scale of metric 'intensity' (default: 1/10 of the 1-99 "
                     "percentile range)",
        "eps": "speed regularisation, speed = 1 / (eps + cost) (default 0.05)",
        "closed": "2D: true (default) fills the closed contour, false draws the open path",
    },
    ndims=(2, 3),
    required=("anchors",),
)
