"""Crop boxes of a cascade in physical units: region box, margin, clamping, crop and paste back.

A box is a list of ``[lo, hi]`` index pairs, one per array axis ``(z, y, x)``
(``hi`` exclusive), as :func:`segloop.learn.preprocess.preprocess_image` records
its foreground crop. A cascade (:mod:`segloop.learn.cascade`) goes

1. :func:`region_box`: the bounding box of the region stage 1 found, on the
   input's native grid;
2. :func:`expand_box`: grown by ``margin_mm`` on each side (``ceil(mm /
   spacing)`` voxels per axis, so an anisotropic volume gets fewer voxels along
   its thick axis), grown to ``min_size_mm`` about its centre, and clamped to
   the image. A box that still does not overlap the image is an error
   (:class:`segloop.errors.InvalidArgumentError` naming the box and the image);
3. :func:`crop_image`: the crop as a :class:`segloop.io.Image` with the same
   spacing and direction and the origin of its first voxel,
   ``origin + direction @ (lo * spacing)``, so every voxel keeps its world
   position;
4. :func:`paste_image` / :func:`paste_array`: the crop's output put back at
   ``lo`` on the full grid, ``fill`` outside (0 for labels; per channel for
   probabilities: 1 for the softmax background).

Examples
--------
>>> import numpy as np
>>> from segloop.io import Image
>>> mask = np.zeros((4, 20, 20), bool); mask[1:3, 8:11, 5:9] = True
>>> box = expand_box(region_box(mask), shape=mask.shape, spacing=(4.0, 0.8, 0.8),
...                  margin_mm=2.0)
>>> box  # 1 voxel more along z (4 mm), 3 in-plane (0.8 mm), clamped at 0
[[0, 4], [5, 14], [2, 12]]
>>> image = Image(np.arange(1600.0).reshape(4, 20, 20), spacing=(4.0, 0.8, 0.8))
>>> crop = crop_image(image, box)
>>> crop.shape, tuple(float(v) for v in crop.origin)  # world order (x, y, z)
((4, 9, 10), (1.6, 4.0, 0.0))
>>> back = paste_image(crop.with_array(crop.array > 800, kind="label"), box, image)
>>> back.shape, int(back.array.sum()) == int((crop.array > 800).sum())
((4, 20, 20), True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.io import Image
from segloop.tools._label_edit import bounding_box

__all__ = ["box_shape", "crop_image", "expand_box", "paste_array", "paste_image", "per_axis",
           "region_box"]


def region_box(mask) -> list[list[int]] | None:
    """The bounding box ``[[lo, hi], ...]`` of the nonzero voxels of ``mask`` (None: empty).

    Examples
    --------
    >>> region_box(np.array([[0, 0, 0], [0, 1, 1]])), region_box(np.zeros((2, 2)))
    ([[1, 2], [1, 3]], None)
    """
    box = bounding_box(np.asarray(mask) != 0)  # the editing tools' box, as [lo, hi] pairs
    return None if box is None else [[s.start, s.stop] for s in box]


def box_shape(box) -> tuple[int, ...]:
    """The extent of ``box`` per axis."""
    return tuple(int(hi - lo) for lo, hi in box)


def per_axis(value, ndim: int, *, keep_axis: int | None = None,
             name: str = "value") -> list[float | None]:
    """One value per axis from one for all, one per axis, or (``keep_axis``) the in-plane ones.

    Two values on a volume (``ndim`` 3) with ``keep_axis`` set are the in-plane
    values of a 2D model; the kept axis gets None (it is not cropped).

    Examples
    --------
    >>> per_axis(5.0, 3), per_axis([1, 2], 3, keep_axis=0)
    ([5.0, 5.0, 5.0], [None, 1.0, 2.0])
    """
    if not isinstance(value, Sequence):
        return [float(value)] * ndim
    values = [float(v) for v in value]
    if len(values) == ndim:
        return values
    if ndim == 3 and len(values) == 2 and keep_axis is not None:
        values.insert(keep_axis, None)
        return values
    plane = " (or 2 in-plane values for a 2D model)" if ndim == 3 else ""
    raise InvalidArgumentError(f"{name}: {len(values)} values do not fit a {ndim}D image; "
                               f"give one, or {ndim}{plane}")


def _voxels(mm: float | None, spacing: float) -> int | None:
    return None if mm is None else int(math.ceil(mm / spacing - 1e-9))


def expand_box(box, *, shape, spacing, margin_mm=0.0, min_size_mm=None,
               keep_axis: int | None = None, where: str | None = None) -> list[list[int]]:
    """``box`` grown by a margin in mm, to a minimal size in mm, and clamped to the image.

    Parameters
    ----------
    box : sequence of (int, int)
        ``[lo, hi]`` per axis; it may reach outside the image.
    shape : sequence of int
        The image's spatial shape.
    spacing : sequence of float
        Voxel size per axis (mm).
    margin_mm : float or sequence of float
        Added on both sides: ``ceil(margin / spacing)`` voxels per axis
        (:func:`per_axis`: one value, one per axis, or 2 in-plane values of a
        2D model with ``keep_axis``, whose axis is then kept whole).
    min_size_mm : float or sequence of float, optional
        Smallest extent, grown about the box's centre (shifted inward at the
        image's border when the image is large enough).
    keep_axis : int, optional
        The slice axis of a 2D model (see ``margin_mm``).
    where : str, optional
        Named in the error (the image's file).

    Returns
    -------
    list of [int, int]
        Inside the image, non-empty.

    Raises
    ------
    InvalidArgumentError
        A box that does not overlap the image even with its margin, or sizes
        that do not fit the image's dimensions.

    Examples
    --------
    >>> expand_box([[2, 4], [10, 12]], shape=(10, 12), spacing=(1.0, 1.0), margin_mm=1,
    ...            min_size_mm=[1, 6])
    [[1, 5], [6, 12]]
    >>> expand_box([[20, 30], [0, 5]], shape=(10, 12), spacing=(1.0, 1.0))
    Traceback (most recent call last):
    ...
    segloop.errors.InvalidArgumentError: crop box [[20, 30], [0, 5]] lies outside the image \
of shape (10, 12)
    """
    shape = [int(s) for s in shape]
    nd = len(shape)
    if len(box) != nd or len(spacing) != nd:
        raise InvalidArgumentError(f"a box of {len(box)} axes and {len(spacing)} spacings for "
                                   f"a {nd}D image", path=where)
    margins = per_axis(margin_mm, nd, keep_axis=keep_axis, name="cascade.margin_mm")
    sizes = ([None] * nd if min_size_mm is None else
             per_axis(min_size_mm, nd, keep_axis=keep_axis, name="cascade.min_size_mm"))
    out = []
    for (lo, hi), n, sp, mm, size_mm in zip(box, shape, spacing, margins, sizes, strict=True):
        if mm is None:  # the slice axis of a 2D model: kept whole
            out.append([0, n])
            continue
        m = _voxels(mm, float(sp))
        lo, hi = int(lo) - m, int(hi) + m
        need = _voxels(size_mm, float(sp)) or 0
        if hi - lo < need:
            extra = need - (hi - lo)
            lo, hi = lo - extra // 2, hi + extra - extra // 2
            shift = max(0, -lo) - max(0, hi - n)  # inward, when the box touches a border
            lo, hi = lo + shift, hi + shift
        out.append([lo, hi])
    if any(hi <= 0 or lo >= n or hi <= lo for (lo, hi), n in zip(out, shape, strict=True)):
        raise InvalidArgumentError(f"crop box {[list(b) for b in box]} lies outside the image "
                                   f"of shape {tuple(shape)}", path=where)
    return [[max(0, lo), min(n, hi)] for (lo, hi), n in zip(out, shape, strict=True)]


def _slices(box) -> tuple[slice, ...]:
    return tuple(slice(int(lo), int(hi)) for lo, hi in box)


def crop_image(image: Image, box) -> Image:
    """The voxels of ``image`` inside ``box``, with the origin of the box's first voxel.

    Spacing, direction, kind, channels and metadata are kept (the metadata
    gains ``crop``: the box).
    """
    if len(box) != image.spatial_ndim:
        raise InvalidArgumentError(f"a box of {len(box)} axes for a {image.spatial_ndim}D "
                                   "image", path=image.metadata.get("path"))
    lo = np.asarray([b[0] for b in box], dtype=float)
    origin = np.asarray(image.origin) + image.direction @ (lo * np.asarray(image.spacing))
    return Image(np.ascontiguousarray(image.array[_slices(box)]), spacing=image.spacing,
                 origin=tuple(origin.tolist()), direction=image.direction.copy(),
                 kind=image.kind, channels=image.channels,
                 metadata={**image.metadata, "crop": [list(map(int, b)) for b in box]})


def paste_array(array, box, shape, *, fill: float | Sequence[float] = 0.0,
                channel_axis: int | None = None) -> np.ndarray:
    """``array`` (the crop's values) placed at ``box`` in a full array of spatial ``shape``.

    ``channel_axis`` (0 or -1) holds channels, ``fill`` may then give one
    value per channel (e.g. 1 for the softmax background).

    Examples
    --------
    >>> paste_array(np.ones((1, 2), np.uint8), [[1, 2], [0, 2]], (2, 3)).tolist()
    [[0, 0, 0], [1, 1, 0]]
    """
    a = np.asarray(array)
    spatial = a.shape if channel_axis is None else np.delete(a.shape, channel_axis)
    if tuple(spatial) != box_shape(box):
        raise InvalidArgumentError(f"an array of spatial shape {tuple(spatial)} does not fit "
                                   f"the box {box} ({box_shape(box)})")
    if channel_axis is None:
        out = np.full(tuple(shape), fill, dtype=a.dtype)
        out[_slices(box)] = a
        return out
    moved = np.moveaxis(a, channel_axis, 0)
    fills = np.broadcast_to(np.asarray(fill, dtype=np.float64), (moved.shape[0],))
    out = np.empty((moved.shape[0], *shape), dtype=a.dtype)
    out[...] = fills.reshape(-1, *([1] * len(shape))).astype(a.dtype)
    out[(slice(None), *_slices(box))] = moved
    return np.moveaxis(out, 0, channel_axis)


def paste_image(crop: Image, box, like: Image, *,
                fill: float | Sequence[float] = 0.0) -> Image:
    """``crop`` (an output on the crop's grid) as an image on ``like``'s grid.

    Kind and channels are ``crop``'s; spacing, origin, direction and metadata
    ``like``'s (a channel axis is last, as in :class:`segloop.io.Image`).
    """
    array = paste_array(crop.array, box, like.shape, fill=fill,
                        channel_axis=-1 if crop.channels else None)
    return Image(array, spacing=like.spacing, origin=like.origin,
                 direction=like.direction.copy(), kind=crop.kind, channels=crop.channels,
                 metadata=dict(crop.metadata) | {"crop": [list(map(int, b)) for b in box]})
