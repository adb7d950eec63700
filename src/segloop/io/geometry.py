"""Geometry of :class:`~segloop.io.image.Image`: orientation, grids, resampling.

Reorientation is a pure permutation/flip of the array (no interpolation);
resampling uses SimpleITK with linear interpolation for intensity images and
soft labels and nearest-neighbour for label maps, so label values never mix.

Examples
--------
>>> import numpy as np
>>> from segloop.io.image import Image
>>> img = Image(np.arange(8.0).reshape(2, 2, 2))
>>> reorient(img, "RAS").orientation
'RAS'
"""

from __future__ import annotations

import numpy as np

from segloop.errors import GeometryMismatchError, InvalidArgumentError
from segloop.io.files import check_pixel_budget
from segloop.io.image import Image

__all__ = [
    "check_same_grid",
    "orientation_code",
    "reorient",
    "resample",
    "same_grid",
]

# Letters for the positive and negative direction of each LPS world axis.
_POS = "LPS"
_NEG = "RAI"


def orientation_code(direction: np.ndarray) -> str:
    """Axis codes (``"RAS"``, ``"LPS"``...) of a direction matrix.

    Letter ``k`` is where file axis ``k`` (array axis ``d - 1 - k``) points.

    Parameters
    ----------
    direction : numpy.ndarray
        ``(d, d)`` direction matrix in the :class:`Image` convention.

    Returns
    -------
    str
        ``d`` letters, one per file axis.

    Examples
    --------
    >>> import numpy as np
    >>> orientation_code(np.eye(3)[:, ::-1])
    'LPS'
    """
    d = direction.shape[0]
    letters = []
    for k in range(d):
        v = direction[:, d - 1 - k]
        c = int(np.argmax(np.abs(v)))
        letters.append(_POS[c] if v[c] > 0 else _NEG[c])
    return "".join(letters)


def _parse_code(code: str, d: int) -> list[tuple[int, int]]:
    """Turn ``"RAS"`` into ``[(world_axis, sign), ...]`` per file axis."""
    code = code.upper()
    if len(code) != d:
        raise InvalidArgumentError(f"orientation must have {d} letters, got {code!r}")
    parsed = []
    for ch in code:
        if ch in _POS[:d]:
            parsed.append((_POS.index(ch), 1))
        elif ch in _NEG[:d]:
            parsed.append((_NEG.index(ch), -1))
        else:
            raise InvalidArgumentError(f"orientation letter {ch!r} not in {_POS[:d] + _NEG[:d]}")
    if len({axis for axis, _ in parsed}) != d:
        raise InvalidArgumentError(f"orientation {code!r} names a world axis twice")
    return parsed


def reorient(image: Image, orientation: str = "RAS") -> Image:
    """Permute and flip array axes so that the image has ``orientation``.

    Parameters
    ----------
    image : Image
        Any image or label map.
    orientation : str
        Target axis codes in the NIfTI convention; ``"RAS"`` (default) is the
        canonical orientation of nibabel and most neuroimaging tools.

    Returns
    -------
    Image
        Same voxels, same world positions, new array order. The geometry is
        updated so that every voxel keeps its world position.

    Examples
    --------
    >>> import numpy as np
    >>> from segloop.io.image import Image
    >>> img = Image(np.arange(6.0).reshape(2, 3), spacing=(2.0, 1.0))
    >>> out = reorient(img, "RA")
    >>> out.shape, out.spacing, out.orientation
    ((2, 3), (2.0, 1.0), 'RA')
    """
    d = image.spatial_ndim
    target = _parse_code(orientation, d)
    # target world axis/sign for each *array* axis (array axis a = file axis d-1-a)
    want = [target[d - 1 - a] for a in range(d)]
    current = []
    for a in range(d):
        v = image.direction[:, a]
        c = int(np.argmax(np.abs(v)))
        current.append((c, 1 if v[c] > 0 else -1))
    if len({c for c, _ in current}) != d:
        raise InvalidArgumentError("direction matrix is too oblique to reorient")
    # new array axis a takes the old axis whose world axis is want[a][0]
    perm = [next(j for j, (c, _) in enumerate(current) if c == want[a][0]) for a in range(d)]
    array = image.array
    axes = perm + list(range(d, array.ndim))
    array = np.transpose(array, axes)
    direction = image.direction[:, perm].copy()
    spacing = tuple(image.spacing[p] for p in perm)
    origin = np.asarray(image.origin, dtype=float)
    for a in range(d):
        if current[perm[a]][1] != want[a][1]:
            n = array.shape[a]
            origin = origin + direction[:, a] * spacing[a] * (n - 1)
            direction[:, a] = -direction[:, a]
            array = np.flip(array, axis=a)
    out = Image(np.ascontiguousarray(array), spacing=spacing, origin=origin,
                direction=direction, kind=image.kind, channels=image.channels,
                metadata=dict(image.metadata))
    return out


def same_grid(a: Image, b: Image, *, atol: float = 1e-3) -> tuple[bool, str]:
    """Whether two images share shape, spacing, origin and direction.

    Parameters
    ----------
    a, b : Image
        The images to compare.
    atol : float
        Tolerance in mm for spacing and origin, and for direction cosines.

    Returns
    -------
    tuple of (bool, str)
        The answer and, when false, what differs.

    Examples
    --------
    >>> import numpy as np
    >>> from segloop.io.image import Image
    >>> same_grid(Image(np.zeros((2, 2))), Image(np.zeros((2, 3))))
    (False, 'shape (2, 2) vs (2, 3)')
    """
    if a.shape != b.shape:
        return False, f"shape {a.shape} vs {b.shape}"
    if not np.allclose(a.spacing, b.spacing, atol=atol):
        return False, f"spacing {_fmt(a.spacing)} vs {_fmt(b.spacing)} mm"
    if not np.allclose(a.direction, b.direction, atol=atol):
        cosines = np.clip(np.sum(a.direction * b.direction, axis=0), -1.0, 1.0)
        angle = float(np.degrees(np.max(np.arccos(cosines))))
        return False, (f"orientation {a.orientation} vs {b.orientation} "
                       f"(axes differ by up to {angle:.3g} degrees)")
    if not np.allclose(a.origin, b.origin, atol=max(atol, 1e-3 * max(a.spacing))):
        return False, f"origin {_fmt(a.origin)} vs {_fmt(b.origin)} mm"
    return True, ""


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def check_same_grid(a: Image, b: Image, *, atol: float = 1e-3) -> None:
    """Raise :class:`GeometryMismatchError` unless ``a`` and ``b`` overlay.

    The message names both source files (``metadata["path"]``) when known.

    Examples
    --------
    >>> import numpy as np
    >>> from segloop.io.image import Image
    >>> check_same_grid(Image(np.zeros((2, 2))), Image(np.zeros((2, 2))))
    """
    ok, why = same_grid(a, b, atol=atol)
    if not ok:
        pa = a.metadata.get("path", "first image")
        pb = b.metadata.get("path", "second image")
        raise GeometryMismatchError(f"{pa} and {pb} do not share a grid: {why}")


def resample(image: Image, *, spacing=None, reference: Image | None = None,
             fill: float = 0.0) -> Image:
    """Resample onto a new spacing or onto the grid of a reference image.

    Parameters
    ----------
    image : Image
        Image, soft label or label map.
    spacing : sequence of float, optional
        New voxel size (array order, mm); the field of view is kept.
    reference : Image, optional
        Resample onto exactly this grid instead (shape, spacing, origin,
        direction). Exactly one of ``spacing`` and ``reference`` is needed.
    fill : float
        Value outside the source field of view.

    Returns
    -------
    Image
        Label maps are resampled nearest-neighbour, the rest linearly.

    Examples
    --------
    >>> import numpy as np
    >>> from segloop.io.image import Image
    >>> lab = Image(np.array([[0, 1], [2, 3]]), kind="label")
    >>> resample(lab, spacing=(0.5, 0.5)).shape
    (4, 4)
    """
    import SimpleITK as sitk

    from segloop.io.convert import from_sitk, to_sitk

    if (spacing is None) == (reference is None):
        raise InvalidArgumentError("resample needs exactly one of spacing= and reference=")
    src = to_sitk(image)
    f = sitk.ResampleImageFilter()
    if reference is not None:
        if reference.spatial_ndim != image.spatial_ndim:
            raise InvalidArgumentError("reference must have the same number of axes")
        f.SetReferenceImage(to_sitk(reference.with_array(
            np.zeros(reference.shape, np.uint8), kind="label", channels=False)))
    else:
        try:
            new = np.asarray(spacing, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            new = np.array([np.nan])
        if (new.size != image.spatial_ndim or not np.all(np.isfinite(new))
                or np.any(new <= 0)):
            raise InvalidArgumentError(f"spacing must be {image.spatial_ndim} positive finite "
                                       f"values in mm, got {spacing!r}")
        old = np.asarray(image.spacing)
        extent = np.asarray(image.shape) * old
        shape = np.maximum(1, np.round(extent / new)).astype(int)
        check_pixel_budget(tuple(shape) + ((image.n_channels,) if image.channels else ()),
                           image.array.dtype, f"spacing {_fmt(new)} mm",
                           what="resampling would need")
        # keep the field of view centred: first voxel centre moves by half a voxel change
        shift = (new - old) / 2.0
        origin = np.asarray(image.origin) + image.direction @ shift
        f.SetOutputSpacing([float(s) for s in new[::-1]])
        f.SetSize([int(n) for n in shape[::-1]])
        f.SetOutputOrigin([float(o) for o in origin])
        f.SetOutputDirection([float(v) for v in image.direction[:, ::-1].ravel()])
    f.SetInterpolator(sitk.sitkNearestNeighbor if image.kind == "label" else sitk.sitkLinear)
    f.SetDefaultPixelValue(float(fill))
    dtype = image.array.dtype
    round_back = image.kind != "label" and np.issubdtype(dtype, np.integer)
    if round_back:  # interpolate in float, then round (a cast would truncate)
        src = sitk.Cast(src, sitk.sitkVectorFloat32 if image.channels else sitk.sitkFloat32)
    f.SetOutputPixelType(src.GetPixelID())
    out = from_sitk(f.Execute(src), kind=image.kind)
    if round_back:
        info = np.iinfo(dtype)
        out.array = np.clip(np.rint(out.array), info.min, info.max).astype(dtype)
    out.metadata = dict(image.metadata)
    return out
