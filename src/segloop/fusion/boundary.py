"""Boundary bias: the mean signed distance of a mask's surface from a reference's.

Does a rater draw outside the consensus (too big) or inside it (too small), and
by how many mm?  :func:`signed_surface_distance` answers with one number,
positive outside, negative inside, measured so that it has no bias at the voxel
level: identical masks give exactly 0, a flat boundary normal to an axis moved
by ``k`` voxels gives exactly ``k`` voxel sizes, a disc or sphere of radius
``R + r`` against one of radius ``R`` gives ``r`` to about 0.1 voxel for ``|r|``
up to 2 voxels, and a shifted copy gives about 0 (see
``tests/fusion/test_agreement.py``).

How it is measured
------------------
A binary mask says only which voxel centres are inside, so its surface is
placed where a voxel inside meets a voxel outside: on the *faces* between them.
Between the last layer of reference voxels (the inner boundary layer) and the
first layer outside it (the outer boundary layer, face-neighbours of the
reference) lies the reference's surface; its signed distance at a voxel centre
``p`` is estimated as the mean of the distances to the two layers::

    phi(p) = + (d(p, reference) + d(p, outer layer)) / 2     p outside the reference
    phi(p) = - (d(p, inner layer) + d(p, non-reference)) / 2  p inside it

(Euclidean distances in mm, :func:`scipy.ndimage.distance_transform_edt` with
``sampling=spacing``).  For a surface normal to an axis the layers are one
voxel apart and ``phi`` is exactly the distance to the midway plane.  Each face
of the mask's surface, between a voxel ``a`` inside the mask and its
face-neighbour ``b`` outside, is then at
signed distance ``(phi(a) + phi(b)) / 2`` from the reference, or exactly 0 when
the face is also a face of the reference (``a`` and ``b`` on different sides of
it).  The result is the mean over the mask's faces weighted by their area in
mm^2 (the product of the spacing of the other axes), so thick slices weigh what
they cover.

The outside of the array is background: a mask touching the array border has
faces there (as in :mod:`segloop.metrics.surface`).

Accuracy: on oblique boundaries the nearest voxel is rarely straight across, so
single offsets are off by up to ~0.2 voxel (a 45-degree staircase moved by one
diagonal step, 0.71 voxel, gives 0.85), and large offsets come out a few per
cent short (about 0.15 voxel at 4 voxels: seen from afar, the nearest voxel of
a jagged digital surface sits on its outermost bumps).  Over a closed surface
the orientations average out (the disc and sphere figures above).  Two other
estimates were tried and measured worse on discs and spheres: the distance to
the nearest voxel across minus half a voxel step in its direction, averaged
over the mask's inner and outer boundary voxels (0.1-0.4 voxel short at 1-2
voxels, and not exactly 0 for identical masks with anisotropic voxels), and the
distance between face centres (0.1-0.2 voxel off at 1-2 voxels).

Empty masks
-----------
Both masks empty: 0.0 (nothing is misplaced, as in :mod:`segloop.metrics`).
Exactly one empty: NaN -- there is no surface on one side to measure from or
to, and no sign to give (an unsigned distance would be ``inf``).  With a
``region``, the mask counts as empty when it has no voxel in the region, the
reference when it has none at all (it is never cut by the region), and both
as empty when neither has a voxel in the region.

Examples
--------
>>> import numpy as np
>>> reference = np.zeros((12, 12), bool); reference[3:9, 3:9] = True
>>> signed_surface_distance(reference, reference)
0.0
>>> shrunk = np.zeros_like(reference); shrunk[4:8, 4:8] = True
>>> signed_surface_distance(shrunk, reference, spacing=(0.5, 0.5))
-0.5
"""

from __future__ import annotations

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.io.checks import check_spacing
from segloop.metrics.surface import surface_field

__all__ = ["as_binary", "signed_surface_distance", "surface_field"]


def as_binary(values, name: str, *, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``values`` as a boolean mask of a 2D or 3D 0/1 (or boolean) array.

    Raises
    ------
    InvalidArgumentError
        Not an array of numbers, not 2D/3D, NaN, values other than 0 and 1, or
        a shape other than ``shape`` (when given).
    """
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"{name} must be an array, got {type(values).__name__}"
        ) from None
    if arr.dtype == object or not (arr.dtype == bool or np.issubdtype(arr.dtype, np.number)):
        raise InvalidArgumentError(f"{name} must be a 0/1 or boolean mask, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise InvalidArgumentError(f"{name} must be a 2D or 3D array, got shape {arr.shape}")
    if shape is not None and arr.shape != tuple(shape):
        raise InvalidArgumentError(f"{name} has shape {arr.shape}, expected {tuple(shape)}")
    if arr.dtype == bool:
        return arr
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        found = np.unique(arr[bad])[:5].tolist()
        raise InvalidArgumentError(
            f"{name} must be a 0/1 mask, found values {found}: threshold it first "
            f"(e.g. {name} > 0, or {name} >= 0.5 for a soft map)"
        )
    return arr == 1


def _crop(mask, reference, region):
    """Pad by one voxel (background; region: its edge) and crop to both masks plus one voxel.

    The distances inside the crop are those of the padded array: every voxel of
    ``reference`` is inside it and a layer of background surrounds it.
    """
    mask = np.pad(mask, 1)
    reference = np.pad(reference, 1)
    region = None if region is None else np.pad(region, 1, mode="edge")
    hits = np.nonzero(mask | reference)
    box = tuple(slice(int(h.min()) - 1, int(h.max()) + 2) for h in hits)
    return mask[box], reference[box], None if region is None else region[box]


def signed_surface_distance(mask, reference, *, spacing=None, region=None) -> float:
    """Mean signed distance (mm) of the surface of ``mask`` from that of ``reference``.

    Parameters
    ----------
    mask : array_like
        A rater's 0/1 (or boolean) mask, 2D ``(y, x)`` or 3D ``(z, y, x)``.
    reference : array_like
        The reference (consensus) mask of the same shape.
    spacing : sequence of float, optional
        Voxel size per axis in array order (default 1: distances in voxels).
    region : array_like of bool, optional
        Where to measure: only the faces of the mask between two voxels of the
        region count (so where the region cuts the mask is not a boundary);
        their distance is to the whole reference's surface (not cut, so the
        region's edge is not taken for the reference's boundary either).
        Default: everywhere.

    Returns
    -------
    float
        Positive when the mask lies outside the reference (drawn too big),
        negative inside (too small), 0 for identical masks.  Both masks empty
        (in the region): 0.0; the mask empty in the region or the reference
        empty: NaN; NaN too when no face of the mask lies inside the region.

    Raises
    ------
    InvalidArgumentError
        Shapes differ, values other than 0/1, a bad spacing or region.

    Notes
    -----
    A shifted copy of a mask gives about 0 (its surface is as much outside as
    inside); a mask that cuts in on one side and bulges on the other has a
    mean near 0 too -- read it with the Dice and volume bias.  The distance is
    signed to the reference's surface, not to its nearest voxel: see the module
    docstring for why it is exact on flat boundaries.

    Examples
    --------
    >>> import numpy as np
    >>> reference = np.zeros((9, 9), bool); reference[2:7, 2:7] = True
    >>> shrunk = np.zeros_like(reference); shrunk[3:6, 3:6] = True
    >>> float(signed_surface_distance(shrunk, reference, spacing=(2.0, 2.0)))
    -2.0
    """
    m = as_binary(mask, "mask")
    r = as_binary(reference, "reference", shape=m.shape)
    spacing = check_spacing(spacing, m.ndim)
    if region is not None:
        region = as_binary(region, "region", shape=m.shape)
        m = m & region  # the faces outside the region do not count anyway
        if not (m.any() or (r & region).any()):
            return 0.0
    if not (m.any() and r.any()):
        return 0.0 if not (m.any() or r.any()) else float("nan")
    m, r, region = _crop(m, r, region)
    phi = surface_field(r, spacing)
    total = weight = 0.0
    for axis in range(m.ndim):
        lo = tuple(slice(None, -1) if k == axis else slice(None) for k in range(m.ndim))
        hi = tuple(slice(1, None) if k == axis else slice(None) for k in range(m.ndim))
        faces = m[lo] != m[hi]
        if region is not None:
            faces &= region[lo] & region[hi]
        shared = r[lo] != r[hi]
        values = np.where(shared, 0.0, (phi[lo] + phi[hi]) / 2)[faces]
        area = float(np.prod([s for k, s in enumerate(spacing) if k != axis]))
        total += area * float(values.sum())
        weight += area * values.size
    if weight == 0:  # every face of the mask lies on the region's edge
        return float("nan")
    return total / weight
