"""Data model and file formats: the bottom layer of segloop.

:class:`Image` carries an array ``(z, y, x)`` / ``(y, x)`` with spacing,
origin, direction, kind and metadata; :func:`read_image` and
:func:`write_image` handle NIfTI, NRRD, MetaImage, DICOM series and
DICOM-SEG, PNG/JPEG/TIFF and HDF5 while keeping geometry.
"""

from segloop.io.convert import from_nibabel, from_sitk, to_nibabel, to_sitk
from segloop.io.geometry import check_same_grid, reorient, resample, same_grid
from segloop.io.image import KINDS, Image
from segloop.io.registry import FORMATS, format_of, read_image, read_labelled, write_image

__all__ = [
    "FORMATS",
    "KINDS",
    "Image",
    "check_same_grid",
    "format_of",
    "from_nibabel",
    "from_sitk",
    "read_image",
    "read_labelled",
    "reorient",
    "resample",
    "same_grid",
    "to_nibabel",
    "to_sitk",
    "write_image",
]
