"""Fill a polygon given by its vertices into a label map (2D, or one slice of a volume).

A pixel belongs to the polygon when its centre lies inside the closed
polygon, boundary included (even-odd rule, so a self-crossing outline leaves
its doubly covered parts out). Vertices are array indices ``(y, x)``, need not
be integers, and are joined in order, the last back to the first. The fill
runs as vectorised scanlines: every row's crossings with every edge at once,
then the spans between pairs of crossings, plus the pixel centres lying
exactly on an edge, all written through one difference array.

Examples
--------
>>> import numpy as np
>>> polygon_mask((6, 6), [[1, 1], [1, 4], [4, 4], [4, 1]]).astype(int)
array([[0, 0, 0, 0, 0, 0],
       [0, 1, 1, 1, 1, 0],
       [0, 1, 1, 1, 1, 0],
       [0, 1, 1, 1, 1, 0],
       [0, 1, 1, 1, 1, 0],
       [0, 0, 0, 0, 0, 0]])
"""

from __future__ import annotations

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.tools._edit_checks import as_label, as_points, on_one_slice
from segloop.tools._label_edit import new_label, write_into
from segloop.tools.spec import ToolSpec

__all__ = ["SPEC", "polygon", "polygon_mask"]

_EPS = 1e-9


def _fill(shape, ys, xs) -> np.ndarray:
    """Scanlines over every row at once: interior spans plus the pixel centres on an edge."""
    h, w = shape
    rows = np.arange(max(int(np.ceil(ys.min() - _EPS)), 0),
                     min(int(np.floor(ys.max() + _EPS)), h - 1) + 1)
    y0, y1, x0, x1 = ys, np.roll(ys, -1), xs, np.roll(xs, -1)
    steep = y0 != y1
    flat = ~steep & (np.abs(y0 - np.rint(y0)) < _EPS)  # horizontal edges on a pixel row
    y0, y1, x0, x1 = y0[steep], y1[steep], x0[steep], x1[steep]
    r = rows[:, None].astype(float)
    x = x0 + (r - y0) * (x1 - x0) / (y1 - y0)  # (rows, edges): where each edge meets each row
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    # interior: even-odd pairs of crossings, each edge counted on the half-open range [low, high)
    inner = np.sort(np.where((low <= r) & (r < high), x, np.inf), axis=1)
    if inner.shape[1] % 2:
        inner = np.pad(inner, ((0, 0), (0, 1)), constant_values=np.inf)
    left, right = inner[:, 0::2], inner[:, 1::2]
    valid = np.isfinite(right)
    span_rows = [np.broadcast_to(rows[:, None], left.shape)[valid]]
    starts, stops = [np.ceil(left[valid] - _EPS)], [np.floor(right[valid] + _EPS)]
    # boundary: a crossing (closed range) that falls on a pixel centre, and horizontal edges
    on = (low - _EPS <= r) & (r <= high + _EPS) & (np.abs(x - np.rint(x)) < 1e-6)
    span_rows += [np.broadcast_to(rows[:, None], x.shape)[on], np.rint(ys[flat]).astype(int)]
    starts += [np.rint(x[on]), np.ceil(np.minimum(xs, np.roll(xs, -1))[flat] - _EPS)]
    stops += [np.rint(x[on]), np.floor(np.maximum(xs, np.roll(xs, -1))[flat] + _EPS)]
    row_of = np.concatenate(span_rows)
    first = np.clip(np.concatenate(starts), 0, w).astype(int)
    last = np.clip(np.concatenate(stops), -1, w - 1).astype(int)
    keep = (first <= last) & (row_of >= 0) & (row_of < h)
    diff = np.zeros((h, w + 1), np.int32)
    np.add.at(diff, (row_of[keep], first[keep]), 1)
    np.add.at(diff, (row_of[keep], last[keep] + 1), -1)
    return np.cumsum(diff[:, :-1], axis=1) > 0


def polygon_mask(shape, vertices) -> np.ndarray:
    """Pixels whose centre lies in the closed polygon through ``vertices``.

    Parameters
    ----------
    shape : tuple of 2 int
        Image shape ``(y, x)``.
    vertices : array_like, shape (n, 2)
        Polygon vertices in array order ``(y, x)``, inside the image; n >= 3.

    Returns
    -------
    ndarray of bool
        The filled polygon.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        Fewer than 3 vertices, a vertex outside the image, a polygon of zero
        area, or one so thin or small that it holds no pixel centre.

    Examples
    --------
    >>> polygon_mask((4, 5), [[0, 0], [0, 4], [3, 0]]).astype(int)
    array([[1, 1, 1, 1, 1],
           [1, 1, 1, 0, 0],
           [1, 1, 0, 0, 0],
           [1, 0, 0, 0, 0]])
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 2:
        raise InvalidArgumentError(f"polygon_mask fills 2D images, got shape {shape}")
    pts = as_points(vertices, shape, name="vertices")
    if len(pts) < 3:
        raise InvalidArgumentError(f"vertices must hold at least 3 points, got {len(pts)}")
    ys, xs = pts[:, 0], pts[:, 1]
    area = 0.5 * abs(float(np.dot(ys, np.roll(xs, -1)) - np.dot(xs, np.roll(ys, -1))))
    if area == 0:
        raise InvalidArgumentError(f"vertices enclose no area (all on one line): {pts.tolist()}")
    out = _fill(shape, ys, xs)
    if not out.any():
        raise InvalidArgumentError(f"vertices={pts.tolist()} enclose no pixel centre: the "
                                   "polygon is too small or thin to fill any pixel")
    return out


def polygon(label, vertices, *, value=1, axis=None) -> np.ndarray:
    """Fill a polygon into a copy of a label map.

    Parameters
    ----------
    label : array_like
        Label map ``(y, x)``, or ``(z, y, x)`` with ``axis``.
    vertices : array_like
        ``(n, 2)`` vertices ``(y, x)``; on a volume ``(n, 3)`` vertices that all
        lie on one slice across ``axis`` (same rounded index).
    value : int
        Label value written (0 erases the polygon).
    axis : int, optional
        On a volume, the axis across which the slice is taken (required there).

    Returns
    -------
    ndarray
        The edited label map (a new array).

    Raises
    ------
    segloop.errors.InvalidArgumentError
        Bad vertices (see :func:`polygon_mask`), a volume without ``axis``,
        vertices on several slices.

    Examples
    --------
    >>> import numpy as np
    >>> vol = polygon(np.zeros((3, 5, 5), np.uint8), [[1, 0, 0], [1, 0, 2], [1, 2, 2], [1, 2, 0]],
    ...               axis=0, value=4)
    >>> vol[1, :4, :4]
    array([[4, 4, 4, 0],
           [4, 4, 4, 0],
           [4, 4, 4, 0],
           [0, 0, 0, 0]], dtype=uint8)
    """
    lab = as_label(label)
    if lab.ndim == 2:
        if axis is not None:
            raise InvalidArgumentError(f"axis={axis!r} applies to volumes; label is 2D")
        return write_into(polygon_mask(lab.shape, vertices), lab, value)
    take, plane_pts, _ = on_one_slice(lab.shape, vertices, axis, name="vertices")
    return write_into(polygon_mask(lab[take].shape, plane_pts), lab, value, box=take)


def _apply(image, label, *, spacing=None, vertices, value=1, axis=None, channel_axis=None):
    """The tool: fills into ``label``; the image's intensities are not used.

    Without ``label`` it fills a new map of the image's shape, less its colour
    axis ``channel_axis`` (which is otherwise ignored).
    """
    lab = new_label(image, label, channel_axis)
    return polygon(lab, vertices, value=value, axis=axis)


SPEC = ToolSpec(
    "polygon",
    "fill a polygon given by its vertices (2D, or one slice of a volume with axis)",
    _apply,
    params={
        "vertices": "list of [y, x] vertices (on a volume [z, y, x], all on one slice)",
        "value": "label value written (default 1; 0 erases)",
        "axis": "on a volume, the axis across which the slice is taken (0, 1 or 2)",
    },
    required=("vertices",),
)
