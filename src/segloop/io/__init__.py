"""Data model and file formats: the bottom layer of segloop.

:class:`Image` carries an array ``(z, y, x)`` / ``(y, x)`` with spacing,
origin, direction, kind and metadata; :func:`read_image` and
:func:`write_image` handle NIfTI, NRRD, MetaImage, DICOM series and
DICOM-SEG, PNG/JPEG/TIFF and HDF5 while keeping geometry.
"""

from segloop.io.convert import from_nibabel, from_sitk, to_nibabel, to_sitk
from segloop.io.dataset import Case, Dataset, open_dataset, split_cases
from segloop.io.dicom import list_dicom_series, read_dicom, write_dicom
from segloop.io.dicom_seg import read_dicom_seg, write_dicom_seg
from segloop.io.geometry import check_same_grid, reorient, resample, same_grid
from segloop.io.image import KINDS, Image
from segloop.io.raters import rater_kinds
from segloop.io.registry import FORMATS, format_of, read_image, read_labelled, write_image

__all__ = [
    "Case",
    "Dataset",
    "FORMATS",
    "KINDS",
    "Image",
    "check_same_grid",
    "format_of",
    "list_dicom_series",
    "open_dataset",
    "read_dicom",
    "read_dicom_seg",
    "from_nibabel",
    "from_sitk",
    "read_image",
    "rater_kinds",
    "read_labelled",
    "reorient",
    "resample",
    "same_grid",
    "split_cases",
    "to_nibabel",
    "to_sitk",
    "write_dicom",
    "write_dicom_seg",
    "write_image",
]
