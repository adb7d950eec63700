"""DICOM Segmentation (SEG) objects, written and read with highdicom.

Writing: a label map drawn on a DICOM series becomes a BINARY SEG that
references that series, one segment per non-zero label value.  The label
must lie on the series grid exactly (checked with the series read from
its headers).  Every slice is stored (empty frames are kept), so the SEG
carries the full grid of its source.  Segment numbers run 1..K in the
order of the label values; when the values are not 1..K already, each
segment also records its value (``TrackingID`` ``"segloop label N"``) so
that reading gives the same values back.

Reading: frames are placed by their plane positions on the grid of the
SEG (``highdicom.seg.Segmentation.get_volume``), then turned to the
segloop convention (slice axis = row × column cosine, as for a series), so
a SEG and its source series read onto the same grid.  Voxels hold segment
numbers; overlapping segments are an error unless ``overlap="highest"``
(the highest segment number wins).

Examples
--------
>>> from pydicom.data import get_testdata_file
>>> liver = read_dicom_seg(get_testdata_file("liver.dcm"))
>>> liver.shape, liver.metadata["segments"]
((3, 512, 512), {1: 'Liver'})
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from segloop.errors import (
    CorruptFileError,
    InvalidArgumentError,
    InvalidImageError,
    UnsupportedFormatError,
)
from segloop.io.dicom_series import check_budget, file_series, one_line, series_info
from segloop.io.files import atomic_output, check_input_file, check_pixel_budget
from segloop.io.geometry import check_same_grid
from segloop.io.image import Image

__all__ = ["read_dicom_seg", "save_dicom_seg", "write_dicom_seg"]

_TRACKING = re.compile(r"^segloop label (-?\d+)$")


def _source_plan(source):
    """Plan of the source series: a folder/file path or a list of pydicom datasets."""
    from segloop.io.dicom_plan import DicomPlan, plan_dicom

    if isinstance(source, str | os.PathLike):
        return plan_dicom(source)
    datasets = list(source)
    if not datasets:
        raise InvalidArgumentError("source must be a DICOM folder or a list of datasets")
    entries = [
        (Path(getattr(ds, "filename", None) or f"dataset {i}"), ds, None)
        for i, ds in enumerate(datasets)
    ]
    return DicomPlan(
        series_info(str(datasets[0].get("SeriesInstanceUID", "")), entries), Path("<datasets>")
    )


def save_dicom_seg(
    label: Image,
    path: str | os.PathLike,
    *,
    source,
    segment_names: dict | None = None,
    series_description: str | None = None,
) -> None:
    """Save the SEG of ``label`` at ``path``, not atomically (see :func:`write_dicom_seg`)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    import segloop

    if not isinstance(label, Image) or label.kind != "label":
        raise InvalidArgumentError(
            "a DICOM-SEG is written from a label map (kind='label', CLI: --kind label)"
        )
    plan = _source_plan(source)
    check_same_grid(label, plan.grid())
    values = [int(v) for v in np.unique(label.array) if v != 0]
    if not values:
        raise InvalidImageError("label map is empty: a DICOM-SEG needs at least one segment")
    if values[0] < 0:
        raise InvalidImageError(f"label map has a negative value {values[0]}")
    names = dict(segment_names or {})
    relabel = values != list(range(1, len(values) + 1))
    descriptions = []
    for number, value in enumerate(values, start=1):
        extra = (
            {"tracking_id": f"segloop label {value}", "tracking_uid": generate_uid()}
            if relabel
            else {}
        )
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=str(names.get(value, f"Label {value}"))[:64],
                segmented_property_category=codes.SCT.Tissue,
                segmented_property_type=codes.SCT.Tissue,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
                **extra,
            )
        )
    lut = np.zeros(values[-1] + 1, np.uint16 if len(values) > 255 else np.uint8)
    lut[values] = np.arange(1, len(values) + 1)
    array = lut[label.array]
    if len(plan.info.headers) == 1 and plan.refs[0][1] is not None:  # one multi-frame file
        frames = np.empty_like(array)
        frames[[frame for _, frame in plan.refs]] = array  # back to file frame order
        sources, array = list(plan.info.headers), frames
    else:
        sources = [plan.info.headers[i] for i, _ in plan.refs]
    try:
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=array,
            segmentation_type="BINARY",
            segment_descriptions=descriptions,
            series_instance_uid=generate_uid(),
            series_number=1001,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer="segloop",
            manufacturer_model_name="segloop",
            software_versions=segloop.__version__,
            device_serial_number="0",
            omit_empty_frames=False,
            series_description=series_description or "segloop SEG",
        )
    except (ValueError, AttributeError, KeyError) as exc:
        raise UnsupportedFormatError(
            f"cannot build a DICOM-SEG on this series ({one_line(exc)})", path=plan.where
        ) from exc
    seg.save_as(Path(path))


def write_dicom_seg(
    label: Image,
    path: str | os.PathLike,
    *,
    source,
    segment_names: dict | None = None,
    series_description: str | None = None,
    overwrite: bool = False,
) -> None:
    """Write a label map as a DICOM Segmentation of the series it was drawn on.

    Parameters
    ----------
    label : Image
        Integer label map (``kind="label"``), 0 = background.
    path : str or os.PathLike
        The ``.dcm`` file to write (atomically; an old file is kept as
        ``NAME.~N~`` when ``overwrite``).
    source : str, os.PathLike or list of pydicom.Dataset
        The DICOM series (folder) the label was drawn on, or its datasets
        (headers are enough).
    segment_names : dict, optional
        Label value -> segment name; default ``"Label N"``.
    series_description : str, optional
        Of the SEG series; default ``"segloop SEG"``.
    overwrite : bool
        Replace an existing file.

    Raises
    ------
    GeometryMismatchError
        The label is not on the grid of ``source`` (both are named).
    InvalidImageError
        The label map is empty or has negative values.
    """
    with atomic_output(path, overwrite=overwrite) as tmp:
        save_dicom_seg(
            label,
            tmp,
            source=source,
            segment_names=segment_names,
            series_description=series_description,
        )


def _to_segloop_grid(array: np.ndarray, affine: np.ndarray):
    """Highdicom volume (right-handed index axes) to the series convention."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = affine[:3, :3] / spacing
    origin = affine[:3, 3].copy()
    if direction[:, 0] @ np.cross(direction[:, 2], direction[:, 1]) < 0:
        origin = origin + direction[:, 0] * spacing[0] * (array.shape[0] - 1)
        direction[:, 0] = -direction[:, 0]
        array = array[::-1]
    return np.ascontiguousarray(array), spacing, origin, direction


def read_dicom_seg(
    path: str | os.PathLike, *, kind: str | None = None, overlap: str = "error"
) -> Image:
    """Read a DICOM Segmentation as a label map on its own grid.

    Parameters
    ----------
    path : str or os.PathLike
        The SEG file.
    kind : {"label", "soft", "image"}, optional
        Default ``"label"`` (``"soft"`` for a one-segment FRACTIONAL SEG).
    overlap : {"error", "highest"}
        What to do where segments overlap: raise, or keep the highest
        segment number.

    Returns
    -------
    Image
        Voxels hold segment numbers (or the original label values written
        by segloop); ``metadata["segments"]`` maps each value to its segment
        label.

    Raises
    ------
    UnsupportedFormatError
        Not a SEG, a FRACTIONAL SEG with several segments, or frames that
        do not form a regular 3D grid.
    InvalidImageError
        Segments overlap and ``overlap="error"``.
    """
    import highdicom as hd

    if overlap not in ("error", "highest"):
        raise InvalidArgumentError(f"overlap must be 'error' or 'highest', got {overlap!r}")
    p = check_input_file(path)
    info = file_series(p)
    if not info.is_segmentation:
        raise UnsupportedFormatError(
            f"not a DICOM Segmentation (SOP class {info.sop_class})", path=p
        )
    check_budget(info, np.uint8, p)
    try:
        seg = hd.seg.segread(p)
        fractional = seg.segmentation_type == hd.seg.SegmentationTypeValues.FRACTIONAL
        if fractional and len(seg.segment_numbers) != 1:
            raise UnsupportedFormatError(
                "FRACTIONAL SEG with several segments is not supported", path=p
            )
        geometry = seg.get_volume_geometry()
        if geometry is None:
            raise UnsupportedFormatError("SEG frames do not form a regular 3D grid", path=p)
        check_pixel_budget(geometry.spatial_shape, np.uint8, p)
        volume = seg.get_volume(
            combine_segments=not fractional, skip_overlap_checks=overlap == "highest"
        )
    except RuntimeError as exc:
        if "overlap" in str(exc):
            raise InvalidImageError(
                "segments overlap; read it with read_dicom_seg(path, overlap='highest') "
                "(Python only; the CLI has no option for it) to keep the highest segment "
                "number",
                path=p,
            ) from exc
        raise UnsupportedFormatError(
            f"SEG frames do not form a 3D grid ({one_line(str(exc))})", path=p
        ) from exc
    except (ValueError, AttributeError, KeyError, TypeError) as exc:
        raise CorruptFileError(f"cannot read the SEG ({one_line(exc)})", path=p) from exc
    array = volume.array[..., 0] if fractional else volume.array
    array, spacing, origin, direction = _to_segloop_grid(array, volume.affine)
    segments = {n: seg.get_segment_description(n) for n in seg.segment_numbers}
    values = {n: _TRACKING.match(str(d.tracking_id or "")) for n, d in segments.items()}
    if not fractional and all(values.values()) and values:
        original = {n: int(match.group(1)) for n, match in values.items()}
        lut = np.zeros(max(segments) + 1, np.min_scalar_type(max(original.values())))
        for n, value in original.items():
            lut[n] = value
        array = lut[array]
        labels = {int(values[n].group(1)): d.segment_label for n, d in segments.items()}
    else:
        labels = {n: d.segment_label for n, d in segments.items()}
    meta = {
        "format": "dicom",
        "modality": "SEG",
        "series_uid": info.uid,
        "series_description": info.description,
        "segments": labels,
        "segmentation_type": seg.segmentation_type.value,
        "sop_instance_uid": str(seg.SOPInstanceUID),
        "frame_of_reference_uid": str(seg.get("FrameOfReferenceUID", "")),
        "referenced_series_uid": str(
            (seg.get("ReferencedSeriesSequence") or [{}])[0].get("SeriesInstanceUID", "")
        ),
    }
    return Image(
        array,
        spacing=spacing,
        origin=origin,
        direction=direction,
        kind=kind or ("soft" if fractional else "label"),
        metadata=meta,
    )
