"""Run a tool by name on an :class:`~segloop.io.Image`: the whole image, or one slice of a volume.

:func:`apply_tool` is what ``segloop segment`` and the annotation server
share: it checks the tool's parameters, passes ``channel_axis`` for colour
images, runs the tool on the whole image when the tool works in that many
dimensions, or on one 2D slice ``(axis, index)`` of a volume (the spacing of
the slice's two axes is passed on), and returns the full-size label map in
the smallest integer type holding its values.  Outside the chosen slice the
label map given is kept as it was.

Examples
--------
>>> import numpy as np
>>> from segloop.io import Image
>>> volume = Image(np.zeros((3, 5, 5), np.float32), spacing=(2.0, 1.0, 1.0))
>>> volume.array[1, 1:4, 1:4] = 1.0
>>> out = apply_tool("threshold", volume, None, {"low": 0.5}, slice=(0, 1))
>>> out.dtype, int(out.sum()), int(out[1].sum())
(dtype('uint8'), 9, 9)
>>> apply_tool("threshold", volume, None, {"low": 0.5}).shape
(3, 5, 5)
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.io import Image
from segloop.tools.registry import get_tool
from segloop.tools.spec import ToolSpec

__all__ = ["AXES", "apply_tool", "compact_labels", "slice_plane"]

#: Axis names of a volume, in array order.
AXES = "zyx"
_ALL = slice(None)  # (``apply_tool``'s keyword ``slice`` hides the builtin there)


def compact_labels(labels: np.ndarray) -> np.ndarray:
    """The label map in the smallest integer type holding its values (bool -> uint8).

    Examples
    --------
    >>> compact_labels(np.array([0, 3, 300])).dtype
    dtype('uint16')
    """
    labels = np.asarray(labels)
    if labels.dtype == bool:
        return labels.astype(np.uint8)
    lo, hi = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    for dtype in (np.uint8, np.uint16, np.int16, np.int32):
        if np.iinfo(dtype).min <= lo and hi <= np.iinfo(dtype).max:
            return labels.astype(dtype, copy=False)
    return labels


def _check_slice(image: Image, slice: Any) -> tuple[int, int]:
    try:
        axis, index = slice
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"slice must be (axis, index), got slice={slice!r}") from None
    if image.spatial_ndim != 3:
        raise InvalidArgumentError(f"slice={slice!r}: only a volume has slices; this image is "
                                   f"{image.spatial_ndim}D {list(image.shape)}")
    for name, value in (("axis", axis), ("index", index)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise InvalidArgumentError(f"slice {name} must be an integer, got {value!r}")
    axis, index = int(axis), int(index)
    if not 0 <= axis < 3:
        raise InvalidArgumentError(f"slice axis {axis}: expected 0 (z), 1 (y) or 2 (x)")
    if not 0 <= index < image.shape[axis]:
        raise InvalidArgumentError(
            f"slice index {index} on axis {axis} ({AXES[axis]}) is outside "
            f"0..{image.shape[axis] - 1}")
    return axis, index


def slice_plane(image: Image, axis: int, index: int) -> tuple[np.ndarray, tuple[float, ...]]:
    """The 2D slice ``index`` across ``axis`` of a volume, and the spacing of its two axes.

    The slice keeps the channel axis of a colour image.

    Raises
    ------
    InvalidArgumentError
        A 2D image, or an axis or index outside the volume (the message names
        the valid range).

    Examples
    --------
    >>> vol = Image(np.arange(24.0).reshape(2, 3, 4), spacing=(3.0, 2.0, 1.0))
    >>> plane, spacing = slice_plane(vol, 1, 2)
    >>> plane.shape, spacing
    ((2, 4), (3.0, 1.0))
    """
    axis, index = _check_slice(image, (axis, index))
    take = [_ALL] * image.spatial_ndim
    take[axis] = index
    spacing = tuple(s for i, s in enumerate(image.spacing) if i != axis)
    return image.array[tuple(take)], spacing


def apply_tool(name_or_spec: str | ToolSpec, image: Image, label: np.ndarray | None,
               params: Mapping[str, Any], *, slice: tuple[int, int] | None = None) -> np.ndarray:
    """Run a tool on ``image`` (or on one slice of it); the full-size label map.

    Parameters
    ----------
    name_or_spec : str or ToolSpec
        A tool name of :data:`segloop.tools.TOOL_NAMES` (or its spec).
    image : segloop.io.Image
        The intensity image; a colour image gets ``channel_axis=-1``.
    label : ndarray, optional
        The current label map, of the image's spatial shape (needed by the
        tools that edit one: ``islands``, ``smooth``, ``interpolate``).
    params : mapping
        The tool's parameters (``segloop tools TOOL`` lists them); points
        are array indices of the image, or of the slice when one is given.
    slice : (int, int), optional
        ``(axis, index)``: run a 2D tool on this slice of a volume. Needed
        when the tool does not work in the image's number of dimensions.

    Returns
    -------
    ndarray of int, the image's spatial shape
        The new label map (``label`` outside the slice), in the smallest
        integer type holding its values.

    Raises
    ------
    InvalidArgumentError
        An unknown tool or parameter, a missing one, a label of the wrong
        shape or a missing label, a bad slice, or an image the tool does not
        work on; the message says which and with which value.

    Examples
    --------
    >>> img = Image(np.array([[0, 0, 9, 9], [0, 0, 9, 9]], np.float32))
    >>> apply_tool("threshold", img, None, {"low": 5}).tolist()
    [[0, 0, 1, 1], [0, 0, 1, 1]]
    """
    spec = name_or_spec if isinstance(name_or_spec, ToolSpec) else get_tool(name_or_spec)
    params = spec.check_params(params)
    if image.channels:
        params.setdefault("channel_axis", -1)
    current = None
    if label is not None:
        current = np.asarray(label)
        if current.shape != image.shape:
            raise InvalidArgumentError(f"label has shape {list(current.shape)}, but the image's "
                                       f"spatial shape is {list(image.shape)}")
        if current.dtype.kind not in "biu":
            raise InvalidArgumentError(f"a label map holds integers, got {current.dtype}")
    elif spec.needs_label:
        raise InvalidArgumentError(f"tool {spec.name!r} edits a label map: give the label")
    dims = "/".join(f"{d}D" for d in spec.ndims)
    if slice is None:
        if image.spatial_ndim not in spec.ndims:
            raise InvalidArgumentError(
                f"tool {spec.name!r} works on {dims} images and this image is "
                f"{image.spatial_ndim}D; pick a slice (axis, index)")
        return compact_labels(spec.apply(image.array, current, spacing=image.spacing, **params))
    axis, index = _check_slice(image, slice)
    if 2 not in spec.ndims:
        raise InvalidArgumentError(f"tool {spec.name!r} does not work on a single slice "
                                   f"(it works on {dims} images)")
    plane, spacing = slice_plane(image, axis, index)
    take = [_ALL] * 3
    take[axis] = index
    plane_label = None if current is None else current[tuple(take)]
    result = np.zeros(image.shape, np.int64) if current is None else current.astype(np.int64)
    result[tuple(take)] = spec.apply(plane, plane_label, spacing=spacing, **params)
    return compact_labels(result)
