"""Plan the reading of a DICOM series from its headers: planes, order, grid, rescale.

:class:`DicomPlan` turns the headers of one series (single-frame files, or
one enhanced multi-frame file with per-frame functional groups, or an RT
dose grid) into planes, sorts them with
:func:`~segloop.io.dicom_geometry.stack_planes` and only then, in
:meth:`DicomPlan.load`, decodes the pixels and applies rescale slope and
intercept per slice.

Examples
--------
>>> from pydicom.data import get_testdata_file
>>> plan = plan_dicom(get_testdata_file("CT_small.dcm"))
>>> plan.shape, plan.integer, plan.geometry.spacing
((1, 128, 128), True, (5.0, 0.661468, 0.661468))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from segloop.errors import (
    CorruptFileError,
    DatasetError,
    InvalidArgumentError,
    SegloopError,
    UnsupportedFormatError,
)
from segloop.io.dicom_geometry import Plane, StackGeometry, stack_planes
from segloop.io.dicom_series import (
    SeriesInfo,
    check_budget,
    file_series,
    one_line,
    scan_folder,
    select_series,
)
from segloop.io.files import check_input_file
from segloop.io.image import Image

__all__ = ["DicomPlan", "find_series", "plan_dicom"]


def _pixel_error(exc: Exception, path: Path) -> SegloopError:
    """Name ``path`` in a pixel-decoding failure (truncated data, missing decoder)."""
    msg = one_line(exc)
    if isinstance(exc, RuntimeError | NotImplementedError) and "plugin" in str(exc):
        return UnsupportedFormatError(f"cannot decode the pixel data ({msg})", path=path)
    return CorruptFileError(f"cannot read the pixel data ({msg})", path=path)


def _floats(ds, keyword: str, n: int | None = None) -> tuple[float, ...] | None:
    """``n`` numbers (any count if ``None``) of a header value, or ``None``."""
    value = None if ds is None else ds.get(keyword)
    if value is None or value == "":
        return None
    items = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    try:
        values = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        return None
    return values if n is None or len(values) == n else None


def _group(ds, frame: int, keyword: str):
    """Functional-group item ``keyword`` of one frame (per-frame first, then shared)."""
    per = ds.get("PerFrameFunctionalGroupsSequence")
    if per is not None and frame < len(per) and len(per[frame].get(keyword) or ()):
        return per[frame][keyword][0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and len(shared[0].get(keyword) or ()):
        return shared[0][keyword][0]
    return None


def _n_frames(ds) -> int:
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def _frame_position(ds, frame: int) -> tuple[float, ...] | None:
    """ImagePositionPatient of one frame: functional groups, RT dose offsets, or frame 0."""
    position = _floats(_group(ds, frame, "PlanePositionSequence"), "ImagePositionPatient", 3)
    first = _floats(ds, "ImagePositionPatient", 3)
    offsets = _floats(ds, "GridFrameOffsetVector")
    orientation = _floats(ds, "ImageOrientationPatient", 6)
    if position is None and first and orientation and offsets and len(offsets) > frame:
        normal = np.cross(orientation[:3], orientation[3:])  # RT dose: offsets along normal
        return tuple(np.asarray(first) + (offsets[frame] - offsets[0]) * normal)
    return position if position is not None or frame else first


def _plane(name: str, ds, frame: int | None) -> tuple[Plane, float, float]:
    """Plane and (slope, intercept) of a single-frame file or of one frame."""
    if frame is None:
        position = _floats(ds, "ImagePositionPatient", 3)
        orientation, measures, rescale = ds, ds, ds
    else:
        position = _frame_position(ds, frame)
        orientation = _group(ds, frame, "PlaneOrientationSequence") or ds
        measures = _group(ds, frame, "PixelMeasuresSequence") or ds
        rescale = _group(ds, frame, "PixelValueTransformationSequence") or ds
        name = f"{name} frame {frame + 1}"
    spacing = _floats(measures, "PixelSpacing", 2) or _floats(ds, "ImagerPixelSpacing", 2)
    thickness = _floats(measures, "SliceThickness", 1)
    between = _floats(measures, "SpacingBetweenSlices", 1)
    instance = _floats(ds, "InstanceNumber", 1) if frame is None else None
    plane = Plane(
        name,
        position=position,
        orientation=_floats(orientation, "ImageOrientationPatient", 6),
        pixel_spacing=spacing,
        thickness=thickness and thickness[0],
        between=between and between[0],
        instance=instance and int(instance[0]),
    )
    slope = (_floats(rescale, "RescaleSlope", 1) or _floats(ds, "DoseGridScaling", 1) or (1.0,))[0]
    intercept = (_floats(rescale, "RescaleIntercept", 1) or (0.0,))[0]
    return plane, slope, intercept


class DicomPlan:
    """A series ready to load: planes in slice order and their grid (no pixels yet)."""

    def __init__(self, info: SeriesInfo, where: Path):
        if info.is_segmentation:
            raise UnsupportedFormatError(
                "is a DICOM Segmentation, not an image series (read_image / read_dicom_seg, "
                "or segloop info / convert, read it as a label map)",
                path=info.files[0],
            )
        self.info, self.where = info, where
        first = info.headers[0]
        for path, ds in zip(info.files, info.headers, strict=True):
            for key in ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated"):
                if ds.get(key) != first.get(key):
                    raise DatasetError(
                        f"{path.name} has {key} {ds.get(key)} but {info.files[0].name} has "
                        f"{first.get(key)}: not one 3D stack",
                        path=where,
                    )
        multi = [
            _n_frames(ds) > 1 or "PerFrameFunctionalGroupsSequence" in ds for ds in info.headers
        ]
        if any(multi) and len(info.files) > 1:
            raise UnsupportedFormatError(
                "series of several multi-frame files: read each file on its own", path=where
            )
        refs, planes, self.slopes, self.intercepts = [], [], [], []
        for i, (path, ds) in enumerate(zip(info.files, info.headers, strict=True)):
            name = str(path.relative_to(where)) if where.is_dir() else path.name
            frames = range(_n_frames(ds)) if multi[i] else [None]
            for frame in frames:
                plane, slope, intercept = _plane(name, ds, frame)
                refs.append((i, frame))
                planes.append(plane)
                self.slopes.append(slope)
                self.intercepts.append(intercept)
        self.geometry: StackGeometry = stack_planes(planes, where=str(where))
        order = self.geometry.order
        self.refs = [refs[k] for k in order]
        self.slopes = np.asarray([self.slopes[k] for k in order], dtype=float)
        self.intercepts = np.asarray([self.intercepts[k] for k in order], dtype=float)
        self.samples = int(first.get("SamplesPerPixel") or 1)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape ``(slices, rows, columns)``."""
        return (len(self.refs), self.info.rows, self.info.columns)

    @property
    def integer(self) -> bool:
        """Whether rescaled values stay integers (slope 1, integral intercepts)."""
        return bool(
            np.all(self.slopes == 1) and np.all(self.intercepts == np.rint(self.intercepts))
        )

    def grid(self) -> Image:
        """An all-zero label map on the series grid (for grid checks)."""
        geo = self.geometry
        return Image(
            np.zeros(self.shape, np.uint8),
            spacing=geo.spacing,
            origin=geo.origin,
            direction=geo.direction,
            kind="label",
            metadata={"path": str(self.where)},
        )

    def sop_instance_uids(self) -> list[str]:
        """``SOPInstanceUID`` of the source of each slice, in slice order."""
        return [str(self.info.headers[i].get("SOPInstanceUID", "")) for i, _ in self.refs]

    def check_decodable(self) -> None:
        """Refuse compressed pixel data whose decoder is not installed (before decoding)."""
        from pydicom.pixels import get_decoder

        for path, ds in zip(self.info.files, self.info.headers, strict=True):
            syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
            if syntax is None or not syntax.is_encapsulated:
                continue
            try:
                decoder = get_decoder(syntax)
                missing = "" if decoder.is_available else "; ".join(decoder.missing_dependencies)
            except NotImplementedError:
                missing = "no pydicom decoder exists for it"
            if missing:
                raise UnsupportedFormatError(
                    f"pixel data compressed as {syntax.name} ({syntax}) and no decoder is "
                    f"installed ({missing}); install one (e.g. pip install pylibjpeg "
                    "pylibjpeg-libjpeg pylibjpeg-openjpeg) or decompress the file with "
                    "gdcmconv --raw / dcmdjpeg",
                    path=path,
                )

    def load(self) -> np.ndarray:
        """Decode the pixels and apply rescale; ``(slices, rows, cols[, samples])``."""
        import pydicom

        self.check_decodable()
        check_budget(self.info, np.int16 if self.integer else np.float32, self.where)
        cache: dict[int, np.ndarray] = {}
        frames = []
        for i, frame in self.refs:
            if i not in cache:
                path = self.info.files[i]
                try:
                    pixels = pydicom.dcmread(path).pixel_array
                except Exception as exc:  # truncated data, decoder failures
                    raise _pixel_error(exc, path) from exc
                single = _n_frames(self.info.headers[i]) == 1
                cache = {i: pixels[None] if single else pixels}
            frames.append(cache[i][frame or 0])
        raw = np.stack(frames)
        if self.samples > 1 or (np.all(self.slopes == 1) and np.all(self.intercepts == 0)):
            return raw
        if self.integer and np.issubdtype(raw.dtype, np.integer):
            out = raw.astype(np.int64) + self.intercepts.astype(np.int64)[:, None, None]
            small = np.int16 if out.min() >= -32768 and out.max() <= 32767 else np.int32
            return out.astype(small)
        out = np.empty(raw.shape, np.float32)
        for k in range(raw.shape[0]):
            out[k] = raw[k] * self.slopes[k] + self.intercepts[k]
        return out

    def metadata(self) -> dict:
        """What the image keeps of the DICOM headers."""
        first = self.info.headers[0]
        photometric = str(first.get("PhotometricInterpretation", ""))
        if self.samples == 3:
            photometric = "RGB"  # pydicom converts YBR to RGB when decoding
        meta = {
            "format": "dicom",
            "modality": self.info.modality,
            "series_uid": self.info.uid,
            "series_description": self.info.description,
            "study_uid": str(first.get("StudyInstanceUID", "")),
            "frame_of_reference_uid": str(first.get("FrameOfReferenceUID", "")),
            "patient_id": str(first.get("PatientID", "")),
            "patient_position": str(first.get("PatientPosition", "")),
            "sop_class_uid": self.info.sop_class,
            "photometric": photometric,
            "sop_instance_uids": self.sop_instance_uids(),
        }
        if len(set(self.slopes)) == 1 and len(set(self.intercepts)) == 1:
            meta["rescale_slope"] = float(self.slopes[0])
            meta["rescale_intercept"] = float(self.intercepts[0])
        if self.geometry.note:
            meta["geometry_note"] = self.geometry.note
        return meta


def find_series(path: str | os.PathLike, *, series=None) -> tuple[SeriesInfo, Path]:
    """The chosen series of a folder (or the one-file series of a file), and the path.

    Raises
    ------
    SegloopError
        Any problem found in the headers (see :func:`~segloop.io.dicom.read_dicom`).
    """
    p = check_input_file(path, allow_dir=True)
    if p.is_dir():
        return select_series(scan_folder(p), series, p), p
    if series is not None:
        raise InvalidArgumentError(
            f"series= (CLI: --series) chooses among the series of a folder; "
            f"{p.name} is a single file"
        )
    return file_series(p), p


def plan_dicom(path: str | os.PathLike, *, series=None) -> DicomPlan:
    """Scan headers and plan the reading of one image series (a folder or one file)."""
    return DicomPlan(*find_series(path, series=series))
