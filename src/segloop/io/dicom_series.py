"""Find the DICOM series in a folder, from headers only (no pixel data read).

Every file below the folder is opened with ``stop_before_pixels``; files
that are not DICOM (README, thumbnails, ``DICOMDIR``...) and DICOM objects
without pixels (reports, RT structures) are skipped quietly.  Images are
grouped by ``SeriesInstanceUID``; :func:`select_series` picks one, by UID,
0-based index in the listed order, or ``SeriesDescription``.

Examples
--------
>>> import pathlib, tempfile
>>> scan_folder(pathlib.Path(tempfile.mkdtemp()))
[]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from segloop.errors import (
    CorruptFileError,
    InvalidArgumentError,
    UnsupportedFormatError,
)

__all__ = [
    "SEG_SOP_CLASSES",
    "SeriesInfo",
    "check_budget",
    "file_series",
    "one_line",
    "read_header",
    "scan_folder",
    "select_series",
    "series_info",
]

#: Segmentation Storage and Label Map Segmentation Storage.
SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")


@dataclass(frozen=True)
class SeriesInfo:
    """One DICOM series found in a folder (what ``segloop`` lists to choose from).

    Attributes
    ----------
    uid, description, modality : str
        ``SeriesInstanceUID``, ``SeriesDescription``, ``Modality``.
    n_slices : int
        Number of 2D planes (files, or frames of multi-frame files).
    rows, columns : int
        Plane size.
    number : int or None
        ``SeriesNumber``.
    sop_class : str
        ``SOPClassUID`` of the first file.
    files : tuple of pathlib.Path
        The files of the series, sorted by name (not yet in slice order).
    """

    uid: str
    description: str
    modality: str
    n_slices: int
    rows: int
    columns: int
    number: int | None
    sop_class: str
    files: tuple[Path, ...]
    headers: tuple = field(default=(), repr=False, compare=False)
    pixel_bytes: tuple = field(default=(), repr=False, compare=False)

    @property
    def is_segmentation(self) -> bool:
        """Whether the series is a DICOM Segmentation (SEG) object."""
        return self.sop_class in SEG_SOP_CLASSES

    def summary(self) -> str:
        """One line: UID, description, modality, slices and plane size."""
        return (
            f"{self.uid}  {self.description!r}  {self.modality or '?'}  "
            f"{self.n_slices} slice{'s' if self.n_slices != 1 else ''} of "
            f"{self.rows}x{self.columns}"
        )

    def __str__(self) -> str:
        return self.summary()


def one_line(text) -> str:
    r"""``text`` (or an exception, with its type) on one line, for error messages.

    Examples
    --------
    >>> one_line(ValueError("bad\n  value"))
    'ValueError: bad value'
    """
    if isinstance(text, BaseException):
        text = f"{type(text).__name__}: {text}"
    return " ".join(str(text).split())


def read_header(path: Path):
    """Read a header without pixel data; also measure the pixel bytes on disk.

    Returns
    -------
    tuple
        ``(dataset, bytes)``; ``bytes`` is the size available for
        uncompressed pixel data (``None`` when compressed or unknown).

    Raises
    ------
    pydicom.errors.InvalidDicomError
        Not a DICOM file (no ``DICM`` marker): the caller decides.
    CorruptFileError
        A DICOM file whose header cannot be parsed.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with open(path, "rb") as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True)
            tell = fh.tell()
    except InvalidDicomError:
        raise
    except Exception as exc:  # pydicom raises many types on damaged headers
        raise CorruptFileError(f"cannot read DICOM header ({one_line(exc)})", path=path) from exc
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    available = None
    if (
        syntax is not None
        and syntax.is_transfer_syntax
        and not (syntax.is_encapsulated or syntax.is_deflated)
    ):
        available = os.path.getsize(path) - tell - (8 if syntax.is_implicit_VR else 12)
    return ds, available


def _int(value) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def series_info(uid: str, entries: list) -> SeriesInfo:
    """A :class:`SeriesInfo` from ``(path, header, pixel bytes)`` entries of one series."""
    entries.sort(key=lambda e: str(e[0]))
    first = entries[0][1]
    return SeriesInfo(
        uid=uid,
        description=str(first.get("SeriesDescription", "") or ""),
        modality=str(first.get("Modality", "") or ""),
        n_slices=sum(max(_int(ds.get("NumberOfFrames")) or 1, 1) for _, ds, _ in entries),
        rows=int(first.Rows),
        columns=int(first.Columns),
        number=_int(first.get("SeriesNumber")),
        sop_class=str(first.get("SOPClassUID", "")),
        files=tuple(p for p, _, _ in entries),
        headers=tuple(ds for _, ds, _ in entries),
        pixel_bytes=tuple(n for _, _, n in entries),
    )


def file_series(path: Path) -> SeriesInfo:
    """The one-file :class:`SeriesInfo` of a single DICOM file.

    Raises
    ------
    CorruptFileError, UnsupportedFormatError
        Not DICOM, damaged, or a DICOM object without an image.
    """
    from pydicom.errors import InvalidDicomError

    try:
        ds, available = read_header(path)
    except InvalidDicomError as exc:
        raise CorruptFileError("not a DICOM file (no DICM marker at byte 128)", path=path) from exc
    if "Rows" not in ds:
        what = getattr(ds.get("SOPClassUID"), "name", None)
        if what and "Image" not in what and "Segmentation" not in what:
            raise UnsupportedFormatError(f"DICOM object without an image ({what})", path=path)
        raise CorruptFileError(
            "DICOM header has no image (Rows missing; truncated file?)", path=path
        )
    return series_info(str(ds.get("SeriesInstanceUID", "")), [(path, ds, available)])


def scan_folder(folder: Path) -> list[SeriesInfo]:
    """Every image series below ``folder``, headers included, in listing order.

    Raises
    ------
    CorruptFileError
        A file that is DICOM (``DICM`` marker) but whose header is damaged.
    """
    from pydicom.errors import InvalidDicomError

    groups: dict[str, list] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.stat().st_size == 0:
            continue
        try:
            ds, available = read_header(path)
        except InvalidDicomError:
            continue
        if "Rows" not in ds or "Columns" not in ds:
            continue  # DICOMDIR, structured reports, RT structures...
        groups.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((path, ds, available))
    infos = [series_info(uid, entries) for uid, entries in groups.items()]
    infos.sort(key=lambda s: (s.number is None, s.number or 0, str(s.files[0])))
    return infos


def _listing(infos: list[SeriesInfo]) -> str:
    """The series on one line: ``[0] UID 'description' MR 2 slices of 6x6; [1] ...``."""
    return "; ".join(f"[{i}] {s.summary()}" for i, s in enumerate(infos))


def select_series(infos: list[SeriesInfo], series, folder: Path) -> SeriesInfo:
    """Pick the series named by ``series`` (UID, index or description).

    With ``series=None`` the only image series is chosen (a SEG object only
    when there is nothing else); several raise an error listing them all.

    Raises
    ------
    UnsupportedFormatError
        The folder holds no DICOM image.
    InvalidArgumentError
        Several series and none chosen, or ``series`` matches none or several.
    """
    if not infos:
        raise UnsupportedFormatError("no DICOM image files found in this folder", path=folder)
    how = "choose one with series= (CLI: --series): a UID, a 0-based index or a SeriesDescription"
    if series is None:
        images = [s for s in infos if not s.is_segmentation] or infos
        if len(images) == 1:
            return images[0]
        raise InvalidArgumentError(
            f"{len(infos)} DICOM series in this folder; {how}: {_listing(infos)}", path=folder
        )
    if isinstance(series, bool) or not isinstance(series, int | str):
        raise InvalidArgumentError(
            f"series must be a UID, an index or a description, got {series!r}"
        )
    text = str(series).strip()
    matches = [s for s in infos if s.uid == text]
    if not matches and text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(infos):
            raise InvalidArgumentError(
                f"series index {index} out of range 0..{len(infos) - 1}: {_listing(infos)}",
                path=folder,
            )
        matches = [infos[index]]
    if not matches:
        matches = [s for s in infos if s.description.strip().casefold() == text.casefold()]
    if len(matches) == 1:
        return matches[0]
    why = "matches no" if not matches else f"matches {len(matches)}"
    raise InvalidArgumentError(
        f"series={series!r} {why} series; {how}: {_listing(infos)}", path=folder
    )


def check_budget(info: SeriesInfo, dtype, where: Path) -> None:
    """Refuse a series too large to allocate, or with a truncated file, before reading."""
    from segloop.io.files import check_pixel_budget

    first = info.headers[0]
    samples = _int(first.get("SamplesPerPixel")) or 1
    shape = (info.n_slices, info.rows, info.columns) + ((samples,) if samples > 1 else ())
    check_pixel_budget(shape, dtype, where)
    for path, ds, available in zip(info.files, info.headers, info.pixel_bytes, strict=True):
        bits = _int(ds.get("BitsAllocated")) or 16
        if available is None or bits % 8:
            continue
        n = (
            max(_int(ds.get("NumberOfFrames")) or 1, 1)
            * int(ds.Rows)
            * int(ds.Columns)
            * (_int(ds.get("SamplesPerPixel")) or 1)
        )
        need = n * bits // 8
        if str(ds.get("PhotometricInterpretation", "")) == "YBR_FULL_422":
            need = need * 2 // 3  # chroma subsampled 2:1 horizontally
        if available < need:
            raise CorruptFileError(
                f"file is truncated: header promises {need} bytes of pixel "
                f"data, only {max(available, 0)} present",
                path=path,
            )
