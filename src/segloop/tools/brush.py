"""Brush and eraser: paint a stroke of discs (2D) or spheres (3D) of a radius in mm.

A stroke is a list of points (array indices) sampled from the mouse. The
painted region is every voxel whose centre lies within ``radius_mm`` of the
polyline through the points, measured in physical units (``spacing=``), so
the brush is round on anisotropic images and a fast stroke whose samples are
far apart leaves no gaps: each segment paints the swept disc/sphere (a
capsule), computed exactly in the small box around it. On a volume, ``axis``
paints discs on one slice instead of spheres.

Examples
--------
>>> import numpy as np
>>> lab = brush(np.zeros((5, 9), np.uint8), [[2, 2], [2, 6]], radius_mm=1)
>>> lab
array([[0, 0, 0, 0, 0, 0, 0, 0, 0],
       [0, 0, 1, 1, 1, 1, 1, 0, 0],
       [0, 1, 1, 1, 1, 1, 1, 1, 0],
       [0, 0, 1, 1, 1, 1, 1, 0, 0],
       [0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=uint8)
>>> brush(lab, [2, 4], radius_mm=1, erase=True)[1:4, 3:6]
array([[1, 0, 1],
       [0, 0, 0],
       [1, 0, 1]], dtype=uint8)
"""

from __future__ import annotations

import numpy as np

from segloop.tools._edit_checks import (
    as_bool,
    as_label,
    as_number,
    as_points,
    as_shape,
    as_spacing,
    on_one_slice,
)
from segloop.tools._label_edit import new_label, write_into
from segloop.tools.spec import ToolSpec

__all__ = ["SPEC", "brush", "stroke_mask"]


def _segment(p0: np.ndarray, p1: np.ndarray, radius: float, sp: np.ndarray, lo, hi):
    """Within the box ``lo:hi``: voxels whose centre is within ``radius`` of segment p0-p1."""
    grids = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    offsets = [(g - a) * s for g, a, s in zip(grids, p0, sp, strict=True)]  # physical, from p0
    direction = (p1 - p0) * sp
    length2 = float(direction @ direction)
    if length2 > 0:
        t = np.clip(sum(o * d for o, d in zip(offsets, direction, strict=True)) / length2, 0, 1)
        d2 = sum((o - t * d) ** 2 for o, d in zip(offsets, direction, strict=True))
    else:
        d2 = sum(o**2 for o in offsets)
    return d2 <= radius**2


def _stroke(shape, pts: np.ndarray, radius: float, sp: np.ndarray):
    """The stroke's bounding box (slices) and its mask inside that box."""
    reach = radius / sp
    lo = np.maximum(np.floor(pts.min(axis=0) - reach).astype(int), 0)
    hi = np.minimum(np.ceil(pts.max(axis=0) + reach).astype(int) + 1, shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    out = np.zeros(tuple(hi - lo), bool)
    ends = [(pts[0], pts[0])] if len(pts) == 1 else zip(pts[:-1], pts[1:], strict=True)
    for p0, p1 in ends:
        a = np.maximum(np.floor(np.minimum(p0, p1) - reach).astype(int), lo)
        b = np.minimum(np.ceil(np.maximum(p0, p1) + reach).astype(int) + 1, hi)
        if np.all(b > a):
            out[tuple(slice(i - o, j - o) for i, j, o in zip(a, b, lo, strict=True))] |= (
                _segment(p0, p1, radius, sp, a, b))
    return box, out


def _checked(shape, points, radius_mm, spacing):
    shape = as_shape(shape)
    pts = as_points(points, shape)
    radius = as_number(radius_mm, "radius_mm", lo_open=True)
    return shape, pts, radius, np.asarray(as_spacing(spacing, len(shape)))


def stroke_mask(shape, points, *, radius_mm, spacing=None) -> np.ndarray:
    """Voxels within ``radius_mm`` of the polyline through ``points``.

    Parameters
    ----------
    shape : tuple of int
        Shape of the image, 2D or 3D.
    points : array_like
        One point or a stroke of points, array indices, inside the image.
    radius_mm : float
        Brush radius in physical units (> 0).
    spacing : sequence of float, optional
        Voxel size in array order (default 1).

    Returns
    -------
    ndarray of bool
        The painted voxels.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        No point, a point outside the image, a radius <= 0, a bad spacing, a
        shape that is not 2 or 3 positive integers.

    Examples
    --------
    >>> stroke_mask((3, 5), [1, 2], radius_mm=1.5, spacing=(2.0, 1.0)).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    shape, pts, radius, sp = _checked(shape, points, radius_mm, spacing)
    box, local = _stroke(shape, pts, radius, sp)
    out = np.zeros(shape, bool)
    out[box] = local
    return out


def brush(label, points, *, radius_mm, value=1, erase=False, spacing=None,
          axis=None) -> np.ndarray:
    """Paint (or erase) a brush stroke into a copy of a label map.

    Parameters
    ----------
    label : array_like
        Label map ``(y, x)`` or ``(z, y, x)``, non-negative integers.
    points : array_like
        One point or a stroke of points, array indices, inside the image.
    radius_mm : float
        Brush radius in physical units (> 0): a disc in 2D, a sphere in 3D.
    value : int
        Label value painted (ignored when erasing).
    erase : bool
        Set the stroke's voxels to 0 (whatever label they hold) instead (a
        real bool: strings such as ``"no"`` are refused).
    spacing : sequence of float, optional
        Voxel size in array order (default 1).
    axis : int, optional
        On a volume, paint discs on one slice across this axis: every point
        must lie on the same slice (same rounded index along ``axis``).

    Returns
    -------
    ndarray
        The edited label map (a new array; ``label`` is left unchanged).

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A point outside the image, a radius <= 0, a bad value, points on
        several slices with ``axis``, or a label map that is not 2D/3D.

    Examples
    --------
    >>> import numpy as np
    >>> vol = brush(np.zeros((3, 5, 5), np.uint8), [1, 2, 2], radius_mm=1, value=2)
    >>> int((vol == 2).sum())
    7
    >>> int(brush(np.zeros((3, 5, 5), np.uint8), [1, 2, 2], radius_mm=1, axis=0).sum())
    5
    """
    lab = as_label(label)
    value = 0 if as_bool(erase, "erase") else value
    if axis is None:
        shape, pts, radius, sp = _checked(lab.shape, points, radius_mm, spacing)
        box, local = _stroke(shape, pts, radius, sp)
        return write_into(local, lab, value, box=box)
    take, plane_pts, axis = on_one_slice(lab.shape, points, axis)
    plane = [s for i, s in enumerate(as_spacing(spacing, 3)) if i != axis]
    shape, pts, radius, sp = _checked(lab[take].shape, plane_pts, radius_mm, plane)
    box, local = _stroke(shape, pts, radius, sp)
    in_plane = iter(box)
    return write_into(local, lab, value,
                      box=tuple(next(in_plane) if isinstance(t, slice) else t for t in take))


def _apply(image, label, *, spacing=None, points, radius_mm, value=1, erase=False, axis=None,
           channel_axis=None):
    """The tool: paints ``label``; the image's intensities are not used.

    Without ``label`` it paints a new map of the image's shape, less its colour
    axis ``channel_axis`` (which is otherwise ignored).
    """
    return brush(new_label(image, label, channel_axis), points, radius_mm=radius_mm, value=value,
                 erase=erase, spacing=spacing, axis=axis)


SPEC = ToolSpec(
    "brush",
    "paint or erase a stroke of discs (2D) / spheres (3D) of a radius in mm",
    _apply,
    params={
        "points": "stroke: point or list of points [z, y, x] / [y, x] (array indices)",
        "radius_mm": "brush radius in mm (physical units of the spacing)",
        "value": "label value painted (default 1)",
        "erase": "true: set the stroke to 0 (eraser) instead of painting",
        "axis": "on a volume, paint discs on one slice across this axis (0, 1 or 2)",
    },
    required=("points", "radius_mm"),
)
