"""Region growing: flood from seed points over voxels of similar intensity.

The accepted intensity range comes from the seeds: with an absolute
``tolerance`` it is ``[min(seed) - tolerance, max(seed) + tolerance]``; with
``relative=True`` it is ``mean ± tolerance · std`` of the seeds' neighbourhoods
(the 3 × 3 (× 3) voxels around each seed), as in ITK's confidence-connected
filter, and always holds the seeds' own values. Colour images
(``channel_axis=-1``) use that range on every channel. The region is then the
voxels in range that are connected to a seed (face connectivity by default),
optionally no farther than ``max_radius_mm`` from the nearest seed, and inside
``mask``. Works on 2D images and 3D volumes; spacing-aware for the radius.

Examples
--------
>>> import numpy as np
>>> img = np.zeros((5, 7)); img[1:4, 1:3] = 10; img[1:4, 5] = 10
>>> region_grow(img, [2, 1], tolerance=1).astype(int)
array([[0, 0, 0, 0, 0, 0, 0],
       [0, 1, 1, 0, 0, 0, 0],
       [0, 1, 1, 0, 0, 0, 0],
       [0, 1, 1, 0, 0, 0, 0],
       [0, 0, 0, 0, 0, 0, 0]])
"""

from __future__ import annotations

import numbers

import edt
import numpy as np
from scipy import ndimage as ndi

from segloop.errors import InvalidArgumentError
from segloop.tools._edit_checks import (
    as_bool,
    as_channel_axis,
    as_image,
    as_mask,
    as_number,
    as_points,
    as_spacing,
)
from segloop.tools._label_edit import write_into
from segloop.tools.spec import ToolSpec

__all__ = ["DEFAULT_RELATIVE_TOLERANCE", "SPEC", "intensity_range", "region_grow"]

#: Multiple of the seeds' standard deviation used when no tolerance is given.
DEFAULT_RELATIVE_TOLERANCE = 2.5


def _channels_last(image, channel_axis) -> np.ndarray:
    arr = np.asarray(image)
    if channel_axis is None:
        return as_image(arr)[..., None]
    arr = np.moveaxis(arr, as_channel_axis(channel_axis, arr.ndim), -1)
    return as_image(arr, ndims=(3, 4))


def intensity_range(image: np.ndarray, seeds: np.ndarray, *, tolerance: float,
                    relative: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(low, high)`` accepted around ``seeds`` (channels-last image).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 2.0, 9.0]])[..., None]
    >>> intensity_range(img, np.array([[0, 0], [0, 1]]), tolerance=0.5, relative=False)
    (array([0.5]), array([2.5]))
    """
    idx = tuple(np.rint(seeds).astype(int).T)
    values = image[idx]  # (n, C)
    lo, hi = values.min(axis=0), values.max(axis=0)
    if not relative:
        return lo - tolerance, hi + tolerance
    around = []
    for point in np.rint(seeds).astype(int):
        box = tuple(slice(max(p - 1, 0), p + 2) for p in point)
        around.append(image[box].reshape(-1, image.shape[-1]))
    samples = np.concatenate(around).astype(np.float64)
    mean, std = samples.mean(axis=0), samples.std(axis=0)
    return np.minimum(lo, mean - tolerance * std), np.maximum(hi, mean + tolerance * std)


def _near_seeds(shape, seeds, radius, spacing) -> tuple[tuple[slice, ...], np.ndarray]:
    """Box around the seeds' balls and the ball union inside it."""
    sp = np.asarray(spacing)
    # no voxel is farther from a seed than the image's diagonal: a larger radius changes nothing
    radius = min(radius, float(np.linalg.norm(np.asarray(shape) * sp)))
    reach = np.ceil(radius / sp).astype(int)
    lo = np.maximum(np.rint(seeds).min(axis=0).astype(int) - reach, 0)
    hi = np.minimum(np.rint(seeds).max(axis=0).astype(int) + reach + 1, shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    sub_shape = tuple(hi - lo)
    if len(seeds) <= 16:
        near = np.zeros(sub_shape, bool)
        grids = np.ogrid[tuple(slice(0, n) for n in sub_shape)]
        for point in seeds - lo:
            d2 = sum(((g - p) * s) ** 2 for g, p, s in zip(grids, point, sp, strict=True))
            near |= d2 <= radius**2
        return box, near
    marks = np.ones(sub_shape, bool)
    marks[tuple(np.rint(seeds - lo).astype(int).T)] = False
    return box, edt.edt(marks, anisotropy=tuple(sp)) <= radius


def region_grow(image, seeds, *, tolerance=None, relative=False, connectivity=1,
                max_radius_mm=None, spacing=None, mask=None, channel_axis=None) -> np.ndarray:
    """Grow a region from seed points over voxels within an intensity tolerance.

    Parameters
    ----------
    image : array_like
        2D ``(y, x)`` or 3D ``(z, y, x)`` image, finite (plus a colour axis
        when ``channel_axis`` is given).
    seeds : array_like
        One point ``[y, x]`` / ``[z, y, x]`` or a list of points, array indices.
    tolerance : float, optional
        Absolute intensity tolerance around the seeds' values, or with
        ``relative=True`` a multiple of their neighbourhood's standard
        deviation. Default: relative, :data:`DEFAULT_RELATIVE_TOLERANCE`.
    relative : bool
        Interpret ``tolerance`` relative to the seeds' statistics (a real
        bool: strings such as ``"no"`` are refused).
    connectivity : int
        Neighbours: 1 = faces, up to the number of axes = corners too.
    max_radius_mm : float, optional
        Keep voxels no farther than this (physical units) from the nearest seed.
    spacing : sequence of float, optional
        Voxel size in array order (default 1).
    mask : array_like of bool, optional
        The region stays inside it; every seed must lie in it.
    channel_axis : int, optional
        Axis of colour channels (e.g. -1 for RGB).

    Returns
    -------
    ndarray of bool
        The grown region, seeds included.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        No seed, a seed outside the image or the mask, a negative tolerance,
        a bad connectivity or radius, a NaN image.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[0, 1, 2, 3, 9, 9]], float)
    >>> region_grow(img, [0, 0], tolerance=2).astype(int)
    array([[1, 1, 1, 0, 0, 0]])
    """
    arr = _channels_last(image, channel_axis)
    shape, ndim = arr.shape[:-1], arr.ndim - 1
    pts = as_points(seeds, shape, name="seeds")
    sp = as_spacing(spacing, ndim)
    relative = as_bool(relative, "relative")
    if tolerance is None:
        tolerance, relative = DEFAULT_RELATIVE_TOLERANCE, True
    tol = as_number(tolerance, "tolerance")
    if (not isinstance(connectivity, numbers.Integral) or isinstance(connectivity, bool)
            or not 1 <= connectivity <= ndim):
        raise InvalidArgumentError(f"connectivity must be an integer in 1..{ndim}, "
                                   f"got connectivity={connectivity!r}")
    m = as_mask(mask, shape)
    idx = tuple(np.rint(pts).astype(int).T)
    if m is not None and not m[idx].all():
        bad = pts[np.argmin(m[idx])].tolist()
        raise InvalidArgumentError(f"seeds has a point {bad} outside mask")
    lo, hi = intensity_range(arr, pts, tolerance=tol, relative=relative)

    box, near = tuple(slice(None) for _ in shape), None
    if max_radius_mm is not None:
        radius = as_number(max_radius_mm, "max_radius_mm", lo_open=True)
        box, near = _near_seeds(shape, pts, radius, sp)
    sub = arr[box]
    if sub.shape[-1] == 1:
        ok = sub[..., 0] >= lo[0]
        ok &= sub[..., 0] <= hi[0]
    else:
        ok = np.all((sub >= lo) & (sub <= hi), axis=-1)
    if near is not None:
        ok &= near
    if m is not None:
        ok &= m[box]
    parts, _ = ndi.label(ok, ndi.generate_binary_structure(ndim, int(connectivity)))
    origin = np.array([s.start or 0 for s in box])
    keep = np.unique(parts[tuple((np.rint(pts).astype(int) - origin).T)])
    if parts.max() < 256:  # a lookup table on a small dtype is the cheapest selection
        parts = parts.astype(np.uint8)
    lut = np.zeros(int(parts.max()) + 1, bool)
    lut[keep[keep > 0]] = True
    out = np.zeros(shape, bool)
    out[box] = lut[parts]
    return out


def _apply(image, label, *, spacing=None, seeds, tolerance=None, relative=False,
           connectivity=1, max_radius_mm=None, value=1, channel_axis=None):
    region = region_grow(image, seeds, tolerance=tolerance, relative=relative,
                         connectivity=connectivity, max_radius_mm=max_radius_mm,
                         spacing=spacing, channel_axis=channel_axis)
    return write_into(region, label, value)


SPEC = ToolSpec(
    "regiongrow",
    "flood from seed points over voxels within an intensity tolerance",
    _apply,
    params={
        "seeds": "point [z, y, x] / [y, x] or list of points (array indices)",
        "tolerance": "intensity tolerance (absolute), or a multiple of the seeds' std with "
                     f"relative=true (default: relative {DEFAULT_RELATIVE_TOLERANCE})",
        "relative": "true: tolerance is relative to the seeds' mean and std (default false)",
        "connectivity": "1 = face neighbours (default) ... ndim = corner neighbours",
        "max_radius_mm": "keep voxels within this distance of a seed (mm; default unlimited)",
        "value": "label value written (default 1); other voxels of --label kept",
    },
    required=("seeds",),
)
