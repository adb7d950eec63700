"""Island tools: keep the largest component, remove small ones, keep one, fill holes.

Every operation works on each label value of a label map separately (or on
the one given by ``value``), inside the bounding box of that label, so a
small structure in a large volume costs little. Components are connected
sets of voxels of one label (``connectivity`` 1 = faces, up to ``ndim`` =
corners). Removing a component sets it to 0; filling a hole writes the label
into the enclosed background voxels only (other labels inside are kept).
A hole is a background region that does not reach the image border: in 3D
(``axis=None``) or in every slice across ``axis`` (2D hole filling of a volume).

Examples
--------
>>> import numpy as np
>>> lab = np.array([[1, 1, 0, 1],
...                 [1, 1, 0, 0],
...                 [0, 0, 0, 2]], np.uint8)
>>> keep_largest(lab)
array([[1, 1, 0, 0],
       [1, 1, 0, 0],
       [0, 0, 0, 2]], dtype=uint8)
>>> ring = np.ones((3, 3), np.uint8); ring[1, 1] = 0
>>> int(fill_holes(ring)[1, 1])
1
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import ndimage as ndi

from segloop.errors import InvalidArgumentError
from segloop.tools._edit_checks import as_axis, as_label, as_number, as_points, as_spacing
from segloop.tools._label_edit import bounding_box, edit_per_label
from segloop.tools.spec import ToolSpec

__all__ = ["OPERATIONS", "SPEC", "fill_holes", "keep_at_point", "keep_largest", "remove_small"]

#: Operations of the ``islands`` tool.
OPERATIONS = ("keep_largest", "remove_small", "keep_at_point", "fill_holes")


def _structure(ndim: int, connectivity) -> np.ndarray:
    if (not isinstance(connectivity, numbers.Integral) or isinstance(connectivity, bool)
            or not 1 <= connectivity <= ndim):
        raise InvalidArgumentError(f"connectivity must be an integer in 1..{ndim}, "
                                   f"got connectivity={connectivity!r}")
    return ndi.generate_binary_structure(ndim, int(connectivity))


def _components(mask: np.ndarray, structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Component ids, their sizes, and the ids of the mask's voxels (in mask order)."""
    parts, n = ndi.label(mask, structure)
    ids = parts[mask]  # counting only the mask's voxels is ~3x cheaper than all of parts
    return parts, np.bincount(ids, minlength=n + 1), ids


def keep_largest(label, *, connectivity=1, value=None) -> np.ndarray:
    """Keep only the largest connected component of each label (ties: the first found).

    Parameters
    ----------
    label : array_like
        2D or 3D label map.
    connectivity : int
        1 = face neighbours ... ``ndim`` = corner neighbours.
    value : int, optional
        Only edit this label (default: every label).

    Returns
    -------
    ndarray
        The edited label map (a new array).

    Examples
    --------
    >>> import numpy as np
    >>> keep_largest(np.array([[1, 0, 1, 1]]))
    array([[0, 0, 1, 1]])
    """
    lab = as_label(label)
    structure = _structure(lab.ndim, connectivity)

    def edit(mask):
        parts, counts, _ = _components(mask, structure)
        counts[0] = 0
        return parts == int(np.argmax(counts))

    return edit_per_label(lab, edit, value=value)


def remove_small(label, *, min_voxels=None, min_mm3=None, spacing=None, connectivity=1,
                 value=None) -> np.ndarray:
    """Remove the components smaller than ``min_voxels`` voxels or ``min_mm3`` mm³.

    Give exactly one of ``min_voxels`` and ``min_mm3`` (the latter uses
    ``spacing``: a voxel's volume is the product of its sizes). A component
    of exactly the minimum size is kept.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.array([[1, 0, 1, 1, 0, 2]])
    >>> remove_small(lab, min_voxels=2)
    array([[0, 0, 1, 1, 0, 0]])
    >>> remove_small(lab, min_mm3=2.0, spacing=(1.0, 2.0))
    array([[1, 0, 1, 1, 0, 2]])
    """
    lab = as_label(label)
    if (min_voxels is None) == (min_mm3 is None):
        raise InvalidArgumentError(f"give exactly one of min_voxels and min_mm3, got "
                                   f"min_voxels={min_voxels!r}, min_mm3={min_mm3!r}")
    if min_voxels is not None:
        limit = as_number(min_voxels, "min_voxels")
    else:
        limit = as_number(min_mm3, "min_mm3") / float(np.prod(as_spacing(spacing, lab.ndim)))
    structure = _structure(lab.ndim, connectivity)

    def edit(mask):
        _, counts, ids = _components(mask, structure)
        keep = counts >= limit - 1e-9 * max(limit, 1)
        new = np.zeros(mask.shape, bool)
        new[mask] = keep[ids]
        return new

    return edit_per_label(lab, edit, value=value)


def keep_at_point(label, point, *, connectivity=1) -> np.ndarray:
    """Keep, of the label under ``point``, only the component holding it; others untouched.

    Examples
    --------
    >>> import numpy as np
    >>> keep_at_point(np.array([[1, 0, 1, 2]]), [0, 2])
    array([[0, 0, 1, 2]])
    """
    lab = as_label(label)
    idx = tuple(int(i) for i in np.rint(as_points(point, lab.shape, name="point")[0]))
    v = int(lab[idx])
    if v == 0:
        raise InvalidArgumentError(f"point={list(idx)} lies on background (label 0)")
    structure = _structure(lab.ndim, connectivity)
    mine = lab == v
    box = bounding_box(mine)
    parts, _ = ndi.label(mine[box], structure)
    out = lab.copy()
    drop = parts != parts[tuple(i - s.start for i, s in zip(idx, box, strict=True))]
    drop &= mine[box]
    out[box][drop] = 0
    return out


def fill_holes(label, *, axis=None, connectivity=1, value=None) -> np.ndarray:
    """Fill the background holes enclosed by each label, in 3D or slice by slice.

    Parameters
    ----------
    label : array_like
        2D or 3D label map.
    axis : int, optional
        On a volume, fill the 2D holes of every slice across this axis
        (default: 3D holes).
    connectivity : int
        Connectivity of the background (1 = faces: a diagonal gap does not
        open a hole).
    value : int, optional
        Only edit this label (default: every label).

    Examples
    --------
    >>> import numpy as np
    >>> tube = np.zeros((3, 5, 5), np.uint8); tube[:, 1:4, 1:4] = 1; tube[:, 2, 2] = 0
    >>> int(fill_holes(tube).sum()), int(fill_holes(tube, axis=0).sum())
    (24, 27)
    """
    lab = as_label(label)
    if axis is None:
        structure, faces = _structure(lab.ndim, connectivity), tuple(range(lab.ndim))
    else:
        axis = as_axis(axis, lab.ndim)
        structure = np.zeros((3, 3, 3), bool)
        structure[tuple(1 if i == axis else slice(None) for i in range(3))] = _structure(
            2, connectivity)
        faces = tuple(i for i in range(3) if i != axis)

    def edit(mask):
        background = ~mask
        parts, n = ndi.label(background, structure)
        open_ = np.zeros(n + 1, bool)  # background components that reach the border
        for f in faces:
            for end in (0, -1):
                open_[parts[tuple(end if i == f else slice(None) for i in range(mask.ndim))]] = True
        new = mask.copy()
        new[background] = ~open_[parts[background]]
        return new

    return edit_per_label(lab, edit, value=value, pad=1)


def _apply(image, label, *, spacing=None, operation, connectivity=1, value=None, min_voxels=None,
           min_mm3=None, point=None, axis=None, channel_axis=None):
    """The tool: edits ``label`` only, so ``image`` and ``channel_axis`` (colour) are ignored."""
    if label is None:
        raise InvalidArgumentError("islands edits a label map: give label")
    if operation == "keep_largest":
        return keep_largest(label, connectivity=connectivity, value=value)
    if operation == "remove_small":
        return remove_small(label, min_voxels=min_voxels, min_mm3=min_mm3, spacing=spacing,
                            connectivity=connectivity, value=value)
    if operation == "keep_at_point":
        if point is None:
            raise InvalidArgumentError("operation 'keep_at_point' needs point")
        return keep_at_point(label, point, connectivity=connectivity)
    if operation == "fill_holes":
        return fill_holes(label, axis=axis, connectivity=connectivity, value=value)
    raise InvalidArgumentError(f"operation must be one of {', '.join(OPERATIONS)}, "
                               f"got operation={operation!r}")


SPEC = ToolSpec(
    "islands",
    "keep the largest component, remove small ones, keep the one under a point, fill holes",
    _apply,
    params={
        "operation": "keep_largest | remove_small | keep_at_point | fill_holes",
        "connectivity": "1 = face neighbours (default) ... ndim = corner neighbours",
        "value": "only edit this label value (default: every label)",
        "min_voxels": "remove_small: smallest component kept, in voxels",
        "min_mm3": "remove_small: smallest component kept, in mm³ (uses the spacing)",
        "point": "keep_at_point: [z, y, x] / [y, x] on the component to keep",
        "axis": "fill_holes: fill 2D holes slice by slice across this axis (default 3D)",
    },
    needs_label=True,
    required=("operation",),
)
