"""Slice interpolation: fill the slices between the drawn ones (shape-based, signed distances).

A user draws a label on some slices of a volume across ``axis`` (every 5th,
say); :func:`interpolate_slices` fills the slices in between. Each drawn
slice of each label becomes a signed distance map (negative inside, positive
outside, in physical units of the in-plane ``spacing``, computed by the
``edt`` package); a slice between two drawn slices ``a < s < b`` takes the
linear blend ``(1 - w) d_a + w d_b`` with ``w = (s - a) / (b - a)`` and is
inside where the blend is <= 0 (Raya & Udupa's shape-based interpolation).

* Objects that split or merge between drawn slices need nothing special: the
  zero level of the blended distance splits or merges on its own.
* Several labels are interpolated separately; where they compete for a
  voxel, the label with the most negative blend (deepest inside) wins.
* A label drawn on slice ``a`` but absent from the next drawn slice ``b``
  ends between them: slice ``b``'s map is the constant ``+D``, ``D`` the
  label's maximum depth on ``a``, so its deepest point vanishes halfway.
* No extrapolation: slices before the first and after the last drawn slice
  are left as they are. Slices strictly between drawn slices are replaced.
* Objects that do not overlap at all between two drawn slices (a large jump)
  shrink towards the middle rather than slide: draw more slices there.

All the work happens in the box around each label on each pair of slices,
so the cost is a few small 2D distance transforms and one blend per slice.

Examples
--------
>>> import numpy as np
>>> vol = np.zeros((5, 7, 7), np.uint8)
>>> vol[0, 2:5, 1:4] = 1; vol[4, 2:5, 3:6] = 1      # a square moving right
>>> out = interpolate_slices(vol)
>>> out[2, 2:5]
array([[0, 0, 1, 1, 1, 0, 0],
       [0, 0, 1, 1, 1, 0, 0],
       [0, 0, 1, 1, 1, 0, 0]], dtype=uint8)

References
----------
.. [1] S.P. Raya, J.K. Udupa, "Shape-based interpolation of multidimensional
   objects", IEEE Trans. Med. Imaging 9(1), 1990.
.. [2] G.T. Herman, J. Zheng, C.A. Bucholtz, "Shape-based interpolation",
   IEEE Computer Graphics and Applications 12(3), 1992.
"""

from __future__ import annotations

import numbers

import edt
import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.tools._edit_checks import as_axis, as_label, as_spacing
from segloop.tools._label_edit import bounding_box
from segloop.tools.spec import ToolSpec

__all__ = ["SPEC", "drawn_slices", "interpolate_slices", "signed_distance"]


def signed_distance(mask: np.ndarray, spacing=(1.0, 1.0)) -> np.ndarray:
    """Signed distance of a 2D mask: ``-`` distance to the outside inside, ``+`` outside.

    Voxels inside are at most ``-spacing`` (the nearest outside voxel's
    centre), voxels outside at least ``+spacing``; the boundary lies halfway.

    Examples
    --------
    >>> import numpy as np
    >>> signed_distance(np.array([[0, 1, 1, 1, 0]], bool))
    array([[ 1., -1., -2., -1.,  1.]], dtype=float32)
    """
    m = np.ascontiguousarray(mask, dtype=bool)
    sp = tuple(float(s) for s in spacing)
    # edt's multi-label mode: every voxel's distance to the nearest voxel of the other
    # region, inside and outside in one pass (half the cost of two binary transforms)
    dist = edt.edt(m.view(np.uint8) + np.uint8(1), anisotropy=sp, black_border=False)
    dist = dist.astype(np.float32, copy=False)
    np.negative(dist, out=dist, where=m)
    return dist


def drawn_slices(label, *, axis: int = 0) -> np.ndarray:
    """Indices of the slices across ``axis`` that hold any label.

    Examples
    --------
    >>> import numpy as np
    >>> vol = np.zeros((6, 2, 2), np.uint8); vol[[1, 4], 0, 0] = 3
    >>> drawn_slices(vol).tolist(), drawn_slices(vol, axis=1).tolist()
    ([1, 4], [0])
    """
    lab = as_label(label, ndims=(3,))
    axis = as_axis(axis, lab.ndim)
    other = tuple(a for a in range(3) if a != axis)
    return np.flatnonzero(lab.any(axis=other))


def _check_slices(slices, n: int, axis: int) -> np.ndarray:
    try:
        arr = np.asarray(slices)
        ok = arr.ndim == 1 and arr.dtype.kind in "iu"
    except (TypeError, ValueError):
        ok = False
    if not ok or np.any((arr < 0) | (arr >= n)) or len(np.unique(arr)) != len(arr):
        raise InvalidArgumentError(f"slices must be distinct slice indices in 0..{n - 1} along "
                                   f"axis {axis}, got slices={slices!r}")
    return np.sort(arr)


def _fill_gap(stack: np.ndarray, a: int, b: int, values, sp) -> None:
    """Replace slices ``a+1 .. b-1`` of ``stack`` (slices first) by the blended labels."""
    stack[a + 1:b] = 0
    first, last = stack[a], stack[b]
    w = (np.arange(a + 1, b, dtype=np.float32) - a)[:, None, None] / (b - a)
    best, winner, box_all = None, None, None
    for v in values:
        in_a, in_b = first == v, last == v
        box = bounding_box(in_a | in_b, pad=1)
        if box is None:
            continue
        da = signed_distance(in_a[box], sp) if in_a[box].any() else None
        db = signed_distance(in_b[box], sp) if in_b[box].any() else None
        if da is None:  # the label starts between a and b
            da = np.full_like(db, -db.min())
        if db is None:  # the label ends between a and b
            db = np.full_like(da, -da.min())
        blend = (1 - w) * da + w * db
        if len(values) == 1:
            stack[(slice(a + 1, b), *box)][blend <= 0] = v
            return
        if best is None:
            best = np.full(stack[a + 1:b].shape, np.inf, np.float32)
            winner = np.zeros(best.shape, stack.dtype)
            box_all = box
        else:
            box_all = tuple(slice(min(p.start, q.start), max(p.stop, q.stop))
                            for p, q in zip(box_all, box, strict=True))
        region, who = best[(slice(None), *box)], winner[(slice(None), *box)]
        better = (blend <= 0) & (blend < region)
        region[better] = blend[better]
        who[better] = v
    if box_all is not None:
        stack[(slice(a + 1, b), *box_all)] = winner[(slice(None), *box_all)]


def interpolate_slices(label, *, axis: int = 0, slices=None, spacing=None) -> np.ndarray:
    """Fill the slices between drawn slices of a label volume by shape-based interpolation.

    Parameters
    ----------
    label : array_like
        3D label map ``(z, y, x)`` holding the drawn slices (0 = background).
    axis : int
        The axis across which the slices were drawn (0 = axial for ``(z, y, x)``).
    slices : sequence of int, optional
        Indices of the drawn slices along ``axis``; slices that are given but
        hold nothing say "no object here". Default: every slice holding any label.
    spacing : sequence of 3 float, optional
        Voxel size in array order; the two in-plane sizes shape the distance
        maps (the slice spacing does not matter to a linear blend).

    Returns
    -------
    ndarray
        A new label map: drawn slices unchanged, the slices between them
        interpolated, the slices outside the first..last drawn one unchanged.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A label map that is not 3D, a bad axis or spacing, slice indices out
        of range or repeated, or fewer than two drawn slices.

    Examples
    --------
    >>> import numpy as np
    >>> vol = np.zeros((3, 6, 6), np.uint8); vol[0, 1:3, 1:3] = 1; vol[2, 1:5, 1:5] = 1
    >>> interpolate_slices(vol)[1]
    array([[0, 0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0, 0],
           [0, 1, 1, 1, 0, 0],
           [0, 1, 1, 1, 0, 0],
           [0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0]], dtype=uint8)
    """
    lab = as_label(label, ndims=(3,))
    axis = as_axis(axis, lab.ndim)
    sp = as_spacing(spacing, 3)
    plane_sp = tuple(s for i, s in enumerate(sp) if i != axis)
    given = drawn_slices(lab, axis=axis) if slices is None else _check_slices(
        slices, lab.shape[axis], axis)
    if len(given) < 2:
        raise InvalidArgumentError(f"interpolation needs labels drawn on at least 2 slices "
                                   f"across axis {axis}, got slices {given.tolist()}")
    out = lab.copy()
    stack = np.moveaxis(out, axis, 0)  # a view: writing into it writes into out
    for a, b in zip(given[:-1], given[1:], strict=True):
        if b - a < 2:
            continue
        present = np.union1d(np.unique(stack[a]), np.unique(stack[b]))
        _fill_gap(stack, int(a), int(b), present[present > 0], plane_sp)
    return out


def _apply(image, label, *, spacing=None, axis=0, slices=None, channel_axis=None):
    """The tool: edits ``label`` only, so ``image`` and ``channel_axis`` (colour) are ignored."""
    if label is None:
        raise InvalidArgumentError("interpolate edits a label map: give label")
    if isinstance(axis, str) and axis in ("z", "y", "x"):
        axis = "zyx".index(axis)
    if not isinstance(axis, numbers.Integral):
        raise InvalidArgumentError(f"axis must be 0, 1, 2 or z, y, x, got axis={axis!r}")
    return interpolate_slices(label, axis=axis, slices=slices, spacing=spacing)


SPEC = ToolSpec(
    "interpolate",
    "fill the slices between drawn slices (shape-based, signed-distance interpolation)",
    _apply,
    params={
        "axis": "axis across which slices were drawn: 0/z (default), 1/y, 2/x",
        "slices": "indices of the drawn slices (default: every slice holding a label)",
    },
    ndims=(3,),
    needs_label=True,
)
