"""DICOM series and files: :func:`read_dicom` and :func:`write_dicom`.

A folder is scanned header-first (:mod:`segloop.io.dicom_series`): series
are grouped by UID, one is chosen, its planes are sorted along the slice
normal and the grid is checked (:mod:`segloop.io.dicom_geometry`) and the
pixel budget enforced *before* any pixel data is decoded.  Rescale slope and
intercept are applied per slice: the result keeps an integer type when every
slope is 1 and every intercept an integer (CT in HU), else it is float32.
Enhanced multi-frame files are stacked by their per-frame plane positions;
a DICOM Segmentation is read by :func:`segloop.io.dicom_seg.read_dicom_seg`.

Examples
--------
>>> from pydicom.data import get_testdata_file
>>> ct = read_dicom(get_testdata_file("CT_small.dcm"))
>>> ct.shape, ct.array.dtype.name, ct.metadata["modality"]
((1, 128, 128), 'int16', 'CT')
"""

from __future__ import annotations

import os
from pathlib import Path

from segloop.errors import InvalidArgumentError, UnsupportedFormatError
from segloop.io.dicom_plan import DicomPlan, find_series
from segloop.io.dicom_series import SeriesInfo, scan_folder
from segloop.io.dicom_write import write_dicom_file, write_dicom_series
from segloop.io.files import atomic_output, check_input_file, compound_suffix
from segloop.io.image import Image

__all__ = ["SeriesInfo", "list_dicom_series", "read_dicom", "write_dicom"]


def list_dicom_series(folder: str | os.PathLike) -> list[SeriesInfo]:
    """List the image series below a folder, in the order ``series=`` indexes.

    Parameters
    ----------
    folder : str or os.PathLike
        A folder of DICOM files (searched recursively).

    Returns
    -------
    list of SeriesInfo
        Sorted by ``SeriesNumber``, then by the path of the first file; SEG
        objects are included.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> list_dicom_series(pathlib.Path(tempfile.mkdtemp()))
    []
    """
    return scan_folder(check_input_file(folder, allow_dir=True))


def read_dicom(path: str | os.PathLike, *, kind: str | None = None, series=None) -> Image:
    """Read a DICOM series (a folder) or a DICOM file.

    Parameters
    ----------
    path : str or os.PathLike
        A folder (searched recursively; non-DICOM files are skipped) or one
        file. A single-frame file gives a volume of one slice.
    kind : {"image", "label", "soft"}, optional
        Default ``"image"``, or ``"label"`` for a DICOM Segmentation.
    series : str or int, optional
        Which series of a folder holding several: its ``SeriesInstanceUID``,
        its 0-based index in :func:`list_dicom_series` order, or its
        ``SeriesDescription``.

    Returns
    -------
    Image
        ``(slices, rows, columns)`` (plus a channel axis for colour);
        ``metadata`` holds modality, series UID/description, patient position
        and the ``sop_instance_uids`` of the slices in slice order.

    Raises
    ------
    InvalidArgumentError
        Several series and ``series`` not given (the message lists them).
    DatasetError
        Missing slices, duplicate positions, irregular spacing, mixed
        orientations (the message names the folder and files).
    CorruptFileError
        A damaged or truncated file (named).
    UnsupportedFormatError
        No DICOM image in the folder, or compressed pixel data without a
        decoder (the file and transfer syntax are named).

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> mr = read_dicom(get_testdata_file("MR_small.dcm"))
    >>> mr.spacing, mr.array.dtype.name
    ((0.8, 0.3125, 0.3125), 'int16')
    """
    info, where = find_series(path, series=series)
    if info.is_segmentation:
        from segloop.io.dicom_seg import read_dicom_seg

        if len(info.files) != 1:
            raise UnsupportedFormatError(
                "a SEG series of several files: read each file", path=where
            )
        return read_dicom_seg(info.files[0], kind=kind)
    plan = DicomPlan(info, where)
    geo = plan.geometry
    return Image(
        plan.load(),
        spacing=geo.spacing,
        origin=geo.origin,
        direction=geo.direction,
        kind=kind or "image",
        channels=plan.samples > 1,
        metadata=plan.metadata(),
    )


def write_dicom(
    image: Image,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    modality: str | None = None,
    series_description: str | None = None,
    reference: str | os.PathLike | None = None,
    segment_names: dict | None = None,
) -> None:
    """Write a DICOM series (a folder), one DICOM file, or a DICOM-SEG.

    Parameters
    ----------
    image : Image
        What to write.
    path : str or os.PathLike
        A folder path (not ending in ``.dcm``, ``.dicom`` or ``.ima``): one
        file per slice ``IM0001.dcm``...,
        written into a temporary sibling then renamed. A ``.dcm`` path: one
        file (a 2D image or one slice), or a SEG (see ``reference``).
    overwrite : bool
        Replace an existing output; the old one is kept as ``NAME.~N~``.
    modality : str, optional
        ``"CT"``, ``"MR"``, ``"OT"``...; default: ``metadata["modality"]`` or OT.
    series_description : str, optional
        Default: ``metadata["series_description"]`` or ``"segloop"``.
    reference : str or os.PathLike, optional
        A DICOM series folder. A label map (``kind="label"``) is then written
        as a DICOM Segmentation of that series (``path`` must be a ``.dcm``
        file, see :func:`segloop.io.dicom_seg.write_dicom_seg`); any other
        image joins the reference's patient, study and frame of reference.
    segment_names : dict, optional
        For a SEG: label value -> segment name.
    """
    p = Path(path)
    folder = p.is_dir() or compound_suffix(p) not in (".dcm", ".dicom", ".ima")
    if image.kind == "label" and reference is not None:
        if folder:
            raise InvalidArgumentError(
                "a DICOM-SEG is one file: give a path ending in .dcm", path=p
            )
        from segloop.io.dicom_seg import save_dicom_seg

        with _file_output(p, overwrite) as target:
            save_dicom_seg(
                image,
                target,
                source=reference,
                segment_names=segment_names,
                series_description=series_description,
            )
        return
    if segment_names is not None:
        raise InvalidArgumentError(
            "segment_names applies to a label map written with reference= (a DICOM-SEG)"
        )
    options = {
        "modality": modality,
        "series_description": series_description,
        "reference": reference,
    }
    if folder:
        write_dicom_series(image, p, overwrite=overwrite, **options)
        return
    with _file_output(p, overwrite) as target:
        write_dicom_file(image, target, **options)


def _file_output(path: Path, overwrite: bool):
    """Atomic output of one file (an existing file is kept as a version)."""
    return atomic_output(path, overwrite=overwrite)
