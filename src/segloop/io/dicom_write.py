"""Write an :class:`~segloop.io.Image` as DICOM: a series folder or one file.

Each slice becomes one file with its own ``ImagePositionPatient``
(``origin + k · spacing_z · direction[:, 0]``), the shared
``ImageOrientationPatient`` (row cosine ``direction[:, 2]``, column cosine
``direction[:, 1]``), ``PixelSpacing``, ``SliceThickness`` and
``SpacingBetweenSlices``.  Pixels are 16-bit integers: integer data are
stored exactly (slope 1), other data with a rescale slope/intercept chosen
so that the error is at most half a quantisation step
(``(max - min) / 65535 / 2``).  A folder is written into a temporary sibling
and renamed, so a crash never leaves a half-written series.

Examples
--------
>>> import numpy as np
>>> stored, slope, intercept = encode_pixels(np.array([0.0, 0.5, 1.0]))
>>> stored.dtype.name, np.allclose(stored * slope + intercept, [0, 0.5, 1], atol=1e-5)
('uint16', True)
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from segloop.errors import (
    InvalidImageError,
    OutputExistsError,
    UnsupportedFormatError,
    WriteError,
)
from segloop.io.files import apply_default_mode, keep_version
from segloop.io.image import Image

__all__ = ["encode_pixels", "write_dicom_file", "write_dicom_series"]

_SOP_CLASS = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_STUDY_KEYS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
    "FrameOfReferenceUID",
)


def _write_error(exc: OSError, path: Path) -> WriteError:
    """A :class:`WriteError` naming ``path`` and the system's reason."""
    return WriteError(f"cannot write: {exc.strerror or type(exc).__name__}", path=path)


def _ds(value: float) -> str:
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(value))


def encode_pixels(array: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Stored 16-bit integers and ``(slope, intercept)`` representing ``array``.

    Integer-valued data that fit 16 bits (after an integer shift) are exact;
    other data are quantised over 65536 levels between their min and max.
    """
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise InvalidImageError(f"cannot store {a.dtype} pixels in DICOM")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        raise InvalidImageError("cannot store NaN/Inf pixels in DICOM")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if np.issubdtype(a.dtype, np.integer) or np.array_equal(np.rint(a), a):
        if -32768 <= lo and hi <= 32767:
            return a.astype(np.int16), 1.0, 0.0
        if 0 <= lo and hi <= 65535:
            return a.astype(np.uint16), 1.0, 0.0
        if hi - lo <= 65535:
            return (a.astype(np.int64) - int(lo)).astype(np.uint16), 1.0, lo
    intercept = float(_ds(lo))
    slope = float(_ds((hi - intercept) / 65535.0 * (1 + 1e-9))) if hi > intercept else 1.0
    stored = np.rint((a.astype(np.float64) - intercept) / slope)
    return np.clip(stored, 0, 65535).astype(np.uint16), slope, intercept


def _as_volume(image: Image):
    """Array, spacing, origin and direction of a 3D grid (a 2D image gets one slice)."""
    if image.channels:
        raise UnsupportedFormatError(
            f"segloop writes single-channel DICOM only; this image has {image.n_channels} channels"
        )
    if image.spatial_ndim == 3:
        return image.array, image.spacing, np.asarray(image.origin), image.direction
    d2 = image.direction
    row = np.array([d2[0, 1], d2[1, 1], 0.0])
    col = np.array([d2[0, 0], d2[1, 0], 0.0])
    direction = np.column_stack([np.cross(row, col), col, row])
    return (image.array[None], (1.0, *image.spacing), np.array([*image.origin, 0.0]), direction)


def _study_attributes(image: Image, reference) -> dict:
    """Patient/study/frame-of-reference attributes: the reference's, the source's or new."""
    from pydicom.uid import generate_uid

    today = datetime.date.today().strftime("%Y%m%d")
    attrs = {
        "PatientName": "",
        "PatientID": "",
        "PatientBirthDate": "",
        "PatientSex": "",
        "StudyInstanceUID": generate_uid(),
        "StudyDate": today,
        "StudyTime": "",
        "StudyID": "",
        "AccessionNumber": "",
        "ReferringPhysicianName": "",
        "FrameOfReferenceUID": generate_uid(),
    }
    meta = image.metadata
    if reference is not None:
        from segloop.io.dicom_plan import plan_dicom

        first = plan_dicom(reference).info.headers[0]
        attrs.update({k: first.get(k) for k in _STUDY_KEYS if first.get(k) not in (None, "")})
    elif meta.get("format") == "dicom":
        for key, name in (
            ("study_uid", "StudyInstanceUID"),
            ("patient_id", "PatientID"),
            ("frame_of_reference_uid", "FrameOfReferenceUID"),
        ):
            if meta.get(key):
                attrs[name] = meta[key]
    return attrs


def _slice_datasets(image: Image, *, modality, series_description, reference):
    """One pydicom dataset per slice, pixel data included."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    array, spacing, origin, direction = _as_volume(image)
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise UnsupportedFormatError(
            "DICOM needs an orthonormal direction matrix; resample the image first"
        )
    stored, slope, intercept = encode_pixels(array)
    modality = (modality or image.metadata.get("modality") or "OT").upper()
    modality = "OT" if modality == "SEG" else modality  # a label map as plain pixels
    sop_class = _SOP_CLASS.get(modality, _SECONDARY_CAPTURE)
    now = datetime.datetime.now()
    series = {
        **_study_attributes(image, reference),
        "SpecificCharacterSet": "ISO_IR 192",
        "SOPClassUID": sop_class,
        "Modality": modality,
        "SeriesInstanceUID": generate_uid(),
        "SeriesNumber": 1000,
        "SeriesDescription": series_description
        or image.metadata.get("series_description")
        or "segloop",
        "SeriesDate": now.strftime("%Y%m%d"),
        "SeriesTime": now.strftime("%H%M%S"),
        "Manufacturer": "segloop",
        "PositionReferenceIndicator": "",
        "ImageType": ["DERIVED", "SECONDARY"],
        "ConversionType": "WSD",
        "ImageOrientationPatient": [_ds(v) for v in (*direction[:, 2], *direction[:, 1])],
        "PixelSpacing": [_ds(spacing[1]), _ds(spacing[2])],
        "SliceThickness": _ds(spacing[0]),
        "SpacingBetweenSlices": _ds(spacing[0]),
        "Rows": stored.shape[1],
        "Columns": stored.shape[2],
        "SamplesPerPixel": 1,
        "PhotometricInterpretation": "MONOCHROME2",
        "BitsAllocated": 16,
        "BitsStored": 16,
        "HighBit": 15,
        "PixelRepresentation": int(stored.dtype == np.int16),
        "RescaleSlope": _ds(slope),
        "RescaleIntercept": _ds(intercept),
        "RescaleType": "HU" if modality == "CT" else "US",
    }
    if image.metadata.get("patient_position"):
        series["PatientPosition"] = image.metadata["patient_position"]
    if modality == "CT":
        series.update(KVP="", AcquisitionNumber="")
    elif modality == "MR":
        series.update(
            ScanningSequence="RM",
            SequenceVariant="NONE",
            ScanOptions="",
            MRAcquisitionType="",
            EchoTime="",
            RepetitionTime="",
            EchoTrainLength="",
            MagneticFieldStrength="",
        )
    normal = np.cross(direction[:, 2], direction[:, 1])
    for k in range(stored.shape[0]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.file_meta.MediaStorageSOPInstanceUID = uid = generate_uid()
        for key, value in series.items():
            setattr(ds, key, value)
        position = origin + direction[:, 0] * spacing[0] * k
        ds.SOPInstanceUID = uid
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.SliceLocation = _ds(position @ normal)
        ds.ContentDate, ds.ContentTime = series["SeriesDate"], series["SeriesTime"]
        ds.PixelData = np.ascontiguousarray(stored[k]).astype("<" + stored.dtype.str[1:]).tobytes()
        yield ds


def write_dicom_file(
    image: Image, path: Path, *, modality=None, series_description=None, reference=None
) -> None:
    """Write a 2D image, or a volume of one slice, as one DICOM file at ``path``."""
    n = 1 if image.spatial_ndim == 2 else image.shape[0]
    if n != 1:
        raise UnsupportedFormatError(
            f"a volume of {n} slices is written as a DICOM series: give a folder path "
            "(no extension) instead of a file",
            path=path,
        )
    for ds in _slice_datasets(
        image, modality=modality, series_description=series_description, reference=reference
    ):
        ds.save_as(path, enforce_file_format=True)


def write_dicom_series(
    image: Image,
    folder: Path,
    *,
    overwrite: bool = False,
    modality=None,
    series_description=None,
    reference=None,
) -> None:
    """Write one file per slice into ``folder``, atomically (temporary sibling, rename).

    The folder and its files get the permissions of ordinary new files
    (``0o777`` / ``0o666`` less the umask), not the private ones of the
    temporary folder.

    Raises
    ------
    OutputExistsError
        ``folder`` exists and is not empty, and ``overwrite`` is false.
    WriteError
        The folder or a file cannot be created, written or renamed (the
        message names the folder and the system's reason).
    """
    folder = Path(folder)
    try:
        exists = folder.exists() and (folder.is_file() or any(folder.iterdir()))
    except OSError as exc:
        raise _write_error(exc, folder) from exc
    if exists and not overwrite:
        raise OutputExistsError(
            "exists and is not empty; pass overwrite (CLI: --overwrite) "
            "to replace it (the old one is kept as a numbered version)",
            path=folder,
        )
    datasets = list(
        _slice_datasets(
            image, modality=modality, reference=reference, series_description=series_description
        )
    )
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent)
        )
    except OSError as exc:
        raise _write_error(exc, folder) from exc
    try:
        width = max(4, len(str(len(datasets))))
        for k, ds in enumerate(datasets, start=1):
            target = staging / f"IM{k:0{width}d}.dcm"
            ds.save_as(target, enforce_file_format=True)
            with open(target, "rb") as fh:
                os.fsync(fh.fileno())
            apply_default_mode(target)
        apply_default_mode(staging)
        if exists:
            keep_version(folder)
        elif folder.is_dir():
            folder.rmdir()  # an empty folder is simply replaced
        os.replace(staging, folder)
    except OSError as exc:
        raise _write_error(exc, folder) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
