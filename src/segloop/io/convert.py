"""Conversions between :class:`~segloop.io.image.Image` and SimpleITK / nibabel.

SimpleITK indexes ``(x, y, z)`` and stores geometry in LPS; its direction
matrix has one column per index axis.  nibabel stores the array as
``(i, j, k) = (x, y, z)`` and an affine to RAS.  Both are converted once,
here, to the :class:`Image` convention (array ``(z, y, x)``, LPS world).

Examples
--------
>>> import numpy as np
>>> from segloop.io.image import Image
>>> img = Image(np.zeros((2, 3, 4), np.float32), spacing=(3.0, 2.0, 1.0))
>>> to_sitk(img).GetSpacing()
(1.0, 2.0, 3.0)
>>> from_nibabel(to_nibabel(img)).spacing
(3.0, 2.0, 1.0)
"""

from __future__ import annotations

import numpy as np

from segloop.errors import InvalidImageError
from segloop.io.image import Image

__all__ = [
    "affine_from_nibabel",
    "from_nibabel",
    "from_sitk",
    "nibabel_affine",
    "to_nibabel",
    "to_sitk",
]

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def _sitk_array(array: np.ndarray) -> np.ndarray:
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype == np.float16:
        return array.astype(np.float32)
    return np.ascontiguousarray(array)


def to_sitk(image: Image):
    """Convert to a ``SimpleITK.Image`` (vector pixels for a channel axis).

    Parameters
    ----------
    image : Image
        The image to convert.

    Returns
    -------
    SimpleITK.Image
        Same voxels and geometry; spacing and index order are ``(x, y, z)``.
    """
    import SimpleITK as sitk

    out = sitk.GetImageFromArray(_sitk_array(image.array), isVector=image.channels)
    out.SetSpacing([float(s) for s in image.spacing[::-1]])
    out.SetOrigin([float(o) for o in image.origin])
    out.SetDirection([float(v) for v in image.direction[:, ::-1].ravel()])
    return out


def from_sitk(sitk_image, *, kind: str = "image", metadata: dict | None = None) -> Image:
    """Convert a ``SimpleITK.Image`` to an :class:`Image`.

    A 4D SimpleITK image becomes a 3D image whose last (time) axis is a
    channel axis; vector pixels become a channel axis too.

    Parameters
    ----------
    sitk_image : SimpleITK.Image
        2D, 3D or 4D image.
    kind : {"image", "label", "soft"}
        What the values mean.
    metadata : dict, optional
        Stored on the result.

    Returns
    -------
    Image
        The converted image.
    """
    import SimpleITK as sitk

    dim = sitk_image.GetDimension()
    array = sitk.GetArrayFromImage(sitk_image)
    channels = sitk_image.GetNumberOfComponentsPerPixel() > 1
    if dim == 4:
        if channels:
            raise InvalidImageError("4D images with vector pixels are not supported")
        array = np.moveaxis(array, 0, -1)  # (t, z, y, x) -> (z, y, x, t)
        channels = True
    elif dim not in (2, 3):
        raise InvalidImageError(f"{dim}D images are not supported (2D, 3D or 4D only)")
    nd = min(dim, 3)
    spacing = np.asarray(sitk_image.GetSpacing()[:nd])[::-1]
    origin = np.asarray(sitk_image.GetOrigin()[:nd])
    direction = np.asarray(sitk_image.GetDirection()).reshape(dim, dim)[:nd, :nd][:, ::-1]
    return Image(array, spacing=spacing, origin=origin, direction=direction, kind=kind,
                 channels=channels, metadata=dict(metadata or {}))


def nibabel_affine(image: Image) -> np.ndarray:
    """The 4×4 RAS affine of the image's file axes ``(x, y, z)``, as in NIfTI.

    A 2D image is embedded as a single slice at z = 0.

    Examples
    --------
    >>> import numpy as np
    >>> from segloop.io.image import Image
    >>> nibabel_affine(Image(np.zeros((2, 2, 2)), spacing=(3, 2, 1))).diagonal().tolist()
    [-1.0, -2.0, 3.0, 1.0]
    """
    d = image.spatial_ndim
    m = np.eye(3)
    t = np.zeros(3)
    m[:d, :d] = (image.direction * np.asarray(image.spacing)[None, :])[:, ::-1]
    t[:d] = image.origin
    aff = np.eye(4)
    aff[:3, :3] = _LPS_TO_RAS @ m
    aff[:3, 3] = _LPS_TO_RAS @ t
    return aff


def affine_from_nibabel(affine: np.ndarray, ndim: int = 3):
    """Spacing, origin and direction (Image convention) from a RAS affine.

    Parameters
    ----------
    affine : numpy.ndarray
        4×4 matrix from file axes ``(x, y, z)`` to RAS millimetres.
    ndim : int
        Number of spatial axes of the array (2 or 3).

    Returns
    -------
    tuple
        ``(spacing, origin, direction)`` in array order / LPS world.
    """
    aff = np.asarray(affine, dtype=float)
    m = _LPS_TO_RAS @ aff[:3, :3]
    t = _LPS_TO_RAS @ aff[:3, 3]
    m = m[:ndim, :ndim][:, ::-1]
    spacing = np.linalg.norm(m, axis=0)
    if np.any(spacing <= 0) or not np.all(np.isfinite(spacing)):
        raise InvalidImageError(f"affine has a zero or invalid voxel size: {spacing.tolist()}")
    return spacing, t[:ndim], m / spacing[None, :]


def to_nibabel(image: Image):
    """Convert to a ``nibabel.Nifti1Image`` with qform and sform set (code 1).

    A channel axis becomes the 4th NIfTI dimension.
    """
    import nibabel as nib

    d = image.spatial_ndim
    order = tuple(range(d - 1, -1, -1)) + tuple(range(d, image.array.ndim))
    data = np.transpose(image.array, order)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    dtype = None
    if data.dtype in (np.int64, np.uint64):  # NIfTI tools rarely read 64-bit integers
        lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
        if np.iinfo(np.int32).min <= lo and hi <= np.iinfo(np.int32).max:
            data = data.astype(np.int32)
        elif hi <= np.iinfo(np.int64).max:
            data, dtype = data.astype(np.int64), np.int64  # values need it: keep them exact
        else:
            raise InvalidImageError(f"integer values up to {hi} do not fit NIfTI")
    nii = nib.Nifti1Image(data, nibabel_affine(image), dtype=dtype)
    nii.header.set_xyzt_units("mm", "sec")
    nii.set_qform(nibabel_affine(image), code=1)
    nii.set_sform(nibabel_affine(image), code=1)
    if image.kind == "label":
        nii.header["intent_code"] = 1002  # NIFTI_INTENT_LABEL
    return nii


def from_nibabel(nii, *, kind: str = "image", metadata: dict | None = None) -> Image:
    """Convert a nibabel spatial image (NIfTI, MGH...) to an :class:`Image`.

    Scaling (``scl_slope``/``scl_inter``) is applied. A 4th dimension
    becomes a channel axis; 2D files stay 2D.
    """
    shape = nii.shape
    if len(shape) == 5 and shape[3] == 1:
        shape = shape[:3] + shape[4:]
    if len(shape) not in (2, 3, 4):
        raise InvalidImageError(f"{len(shape)}D data are not supported (2D, 3D or 4D only)")
    data = np.asanyarray(nii.dataobj).reshape(shape)
    if data.dtype == np.float64 and kind != "label":
        data = data.astype(np.float32)
    nd = 2 if len(shape) == 2 else 3
    order = tuple(range(nd - 1, -1, -1)) + tuple(range(nd, data.ndim))
    array = np.transpose(data, order)
    spacing, origin, direction = affine_from_nibabel(nii.affine, nd)
    return Image(np.ascontiguousarray(array), spacing=spacing, origin=origin,
                 direction=direction, kind=kind, channels=data.ndim > nd,
                 metadata=dict(metadata or {}))
