"""Label-map helpers shared by the editing tools: boxes, writing a value, per-label edits.

Editing a label map is done on a copy, and where it can inside the bounding
box of what changes, so that a small edit of a large volume stays cheap.

Examples
--------
>>> import numpy as np
>>> lab = np.zeros((4, 5), np.uint8); lab[1:3, 2] = 1
>>> bounding_box(lab > 0, pad=1)
(slice(0, 4, None), slice(1, 4, None))
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import ndimage as ndi

from segloop.errors import InvalidArgumentError
from segloop.tools._edit_checks import as_channel_axis, as_label

__all__ = ["bounding_box", "edit_per_label", "label_dtype", "new_label", "pad_box", "write_into"]


def bounding_box(mask: np.ndarray, *, pad=0) -> tuple[slice, ...] | None:
    """Slices of the smallest box holding ``mask``'s non-zero voxels, grown by ``pad`` (clipped).

    ``pad`` is one number of voxels or one per axis; None when ``mask`` is empty.
    """
    # two cheap projections: along the first axis, and of the first axis
    plane = mask.any(axis=0)
    spans = [np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))]
    for axis in range(plane.ndim):
        other = tuple(a for a in range(plane.ndim) if a != axis)
        spans.append(np.flatnonzero(plane.any(axis=other) if other else plane))
    if spans[0].size == 0:
        return None
    box = tuple(slice(int(h[0]), int(h[-1]) + 1) for h in spans)
    return pad_box(box, pad, mask.shape)


def pad_box(box, pad, shape) -> tuple[slice, ...]:
    """``box`` (slices) grown by ``pad`` voxels (one number or one per axis), clipped to ``shape``.

    Examples
    --------
    >>> pad_box((slice(1, 3), slice(0, 2)), 2, (4, 9))
    (slice(0, 4, None), slice(0, 4, None))
    """
    pads = np.broadcast_to(np.asarray(pad, dtype=int), (len(shape),))
    return tuple(slice(max(s.start - int(p), 0), min(s.stop + int(p), n))
                 for s, p, n in zip(box, pads, shape, strict=True))


def label_dtype(label: np.ndarray | None, value: int):
    """A dtype that holds ``label``'s values and ``value`` (uint8 when it can)."""
    if label is not None and label.dtype.kind in "iu" and value <= np.iinfo(label.dtype).max:
        return label.dtype
    return np.uint8 if value < 256 else np.int32


def write_into(selection: np.ndarray, label, value, *, box=None) -> np.ndarray:
    """A copy of ``label`` (or a new zero map) with ``value`` written where ``selection`` is set.

    ``box`` (slices or an index tuple) places a ``selection`` smaller than the
    label map; without it ``selection`` has the label map's shape.

    Examples
    --------
    >>> import numpy as np
    >>> write_into(np.array([[True, False]]), None, 2)
    array([[2, 0]], dtype=uint8)
    >>> write_into(np.array([True]), np.zeros((2, 3), np.uint8), 5, box=(1, slice(2, 3)))
    array([[0, 0, 0],
           [0, 0, 5]], dtype=uint8)
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise InvalidArgumentError(f"value must be a non-negative integer, got value={value!r}")
    if label is None:
        out = np.zeros(selection.shape, label_dtype(None, int(value)))
    else:
        lab = as_label(label, shape=None if box is not None else selection.shape)
        out = lab.astype(label_dtype(lab, int(value)), copy=True)
    region = out if box is None else out[tuple(box)]
    region[selection] = value
    return out


def new_label(image, label, channel_axis=None) -> np.ndarray:
    """``label``, or a zero ``uint8`` map of ``image``'s spatial shape when it is None."""
    if label is not None:
        return label
    shape = np.shape(image)
    axis = as_channel_axis(channel_axis, len(shape))
    if axis is not None:
        shape = tuple(n for i, n in enumerate(shape) if i != axis)
    return np.zeros(shape, np.uint8)


def _label_boxes(lab: np.ndarray, value):
    """``(value, bounding box)`` of each label present (or of ``value`` alone)."""
    if value is not None:
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise InvalidArgumentError(f"value must be a positive integer, got value={value!r}")
        box = bounding_box(lab == value)
        return [] if box is None else [(int(value), box)]
    top = int(lab.max())
    if top <= 1:  # a binary mask: no need to visit every label
        box = bounding_box(lab)
        return [] if box is None else [(1, box)]
    return [(v, box) for v, box in enumerate(ndi.find_objects(lab), 1) if box is not None]


def edit_per_label(label, edit, *, value=None, pad=0) -> np.ndarray:
    """Apply ``edit(mask) -> mask`` to each label inside its bounding box grown by ``pad``.

    Labels are edited one after the other, in ascending order, on a copy:
    voxels the edit drops become 0, voxels it adds take the label only where
    they are background (other labels are never overwritten).

    Parameters
    ----------
    label : array_like
        2D or 3D label map.
    edit : callable
        ``edit(mask)`` gets the boolean mask of one label in its box and
        returns the new mask of the same shape.
    value : int, optional
        Edit only this label (default: every label present).
    pad : int or sequence of int
        Voxels added around each label's box (per axis), clipped to the image.

    Examples
    --------
    >>> import numpy as np
    >>> edit_per_label(np.array([[0, 1, 0, 0, 2]]), np.ones_like, pad=1)
    array([[1, 1, 1, 2, 2]])
    """
    lab = as_label(label)
    out = lab.copy()
    for v, box in _label_boxes(lab, value):
        box = pad_box(box, pad, lab.shape)
        region = out[box]
        mask = region == v
        new = edit(mask)
        region[mask & ~new] = 0
        region[new & ~mask & (region == 0)] = v
    return out
