"""``read_image`` / ``write_image``: one entry point for every file format.

A format is chosen from the file name (``.nii.gz``, ``.nrrd``, ``.png``...),
or from the content when the extension is unknown (DICOM files often have
none), or named explicitly with ``format=``. Each reader checks the file
before parsing and the header before allocating; every failure is a
:class:`~segloop.errors.SegloopError` naming the file.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io.image import Image
>>> p = pathlib.Path(tempfile.mkdtemp()) / "t.nrrd"
>>> write_image(Image(np.zeros((3, 4), np.int16)), p)
>>> read_image(p).shape
(3, 4)
>>> format_of("scan.nii.gz")
'nifti'
"""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segloop.errors import (
    InvalidArgumentError,
    InvalidImageError,
    OutputExistsError,
    SegloopError,
    UnsupportedFormatError,
)
from segloop.io.files import (
    apply_default_mode,
    atomic_output,
    check_input_file,
    compound_suffix,
    keep_version,
    write_errors,
)
from segloop.io.geometry import check_same_grid
from segloop.io.image import KINDS, Image

__all__ = ["FORMATS", "format_of", "read_image", "read_labelled", "write_image"]


@dataclass(frozen=True)
class Format:
    """A file format: its suffixes and the dotted names of its reader/writer."""

    name: str
    suffixes: tuple[str, ...]
    reader: str
    writer: str | None
    folder: bool = False  # reads a folder (DICOM series)
    detached: tuple[str, ...] = ()  # suffixes whose pixel data sit in a second file

    def load(self, which: str):
        """Import the reader or writer function lazily (keeps imports light)."""
        dotted = self.reader if which == "reader" else self.writer
        if dotted is None:
            raise UnsupportedFormatError(f"segloop cannot write {self.name} files (lossy or "
                                         "read-only); use .nii.gz, .nrrd, .png or .tif")
        module, func = dotted.rsplit(":", 1)
        return getattr(importlib.import_module(module), func)


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("nifti", (".nii", ".nii.gz"), "segloop.io.nifti:read_nifti",
           "segloop.io.nifti:write_nifti"),
    Format("mgh", (".mgz", ".mgh"), "segloop.io.nifti:read_nifti", "segloop.io.nifti:write_nifti"),
    Format("nrrd", (".nrrd", ".nhdr"), "segloop.io.itk_formats:read_itk",
           "segloop.io.itk_formats:write_itk", detached=(".nhdr",)),
    Format("metaimage", (".mha", ".mhd"), "segloop.io.itk_formats:read_itk",
           "segloop.io.itk_formats:write_itk", detached=(".mhd",)),
    Format("png", (".png",), "segloop.io.raster:read_raster", "segloop.io.raster:write_raster"),
    Format("tiff", (".tif", ".tiff"), "segloop.io.raster:read_raster",
           "segloop.io.raster:write_raster"),
    Format("jpeg", (".jpg", ".jpeg", ".gif", ".bmp"), "segloop.io.raster:read_raster", None),
    Format("hdf5", (".h5", ".hdf5"), "segloop.io.hdf5:read_hdf5", "segloop.io.hdf5:write_hdf5"),
    Format("dicom", (".dcm", ".dicom", ".ima"), "segloop.io.dicom:read_dicom",
           "segloop.io.dicom:write_dicom", folder=True),
)}

_MAGIC = (
    (128, b"DICM", "dicom"),
    (0, b"\x89PNG", "png"),
    (0, b"II*\x00", "tiff"),
    (0, b"MM\x00*", "tiff"),
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"\x89HDF", "hdf5"),
    (0, b"NRRD", "nrrd"),
    (344, b"n+1\x00", "nifti"),
    (344, b"ni1\x00", "nifti"),
)


def format_of(path: str | os.PathLike, *, sniff: bool = False) -> str:
    """Name of the format of ``path``, from its extension or (``sniff``) its bytes.

    Raises
    ------
    UnsupportedFormatError
        The extension is unknown and the content is not recognised.
    """
    p = Path(path)
    suffix = compound_suffix(p)
    for fmt in FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt.name
    if p.is_dir():
        return "dicom"
    if sniff and p.is_file():
        with open(p, "rb") as fh:
            head = fh.read(352)
        for offset, magic, name in _MAGIC:
            if head[offset:offset + len(magic)] == magic:
                return name
    known = sorted({s for f in FORMATS.values() for s in f.suffixes})
    raise UnsupportedFormatError(
        f"unknown file type {suffix or '(no extension)'!r}; segloop reads {', '.join(known)} "
        "and DICOM folders", path=p)


def _check_options(func, options: dict, fmt: Format) -> None:
    accepted = [n for n, prm in inspect.signature(func).parameters.items()
                if prm.kind == inspect.Parameter.KEYWORD_ONLY]
    for key in options:
        if key not in accepted:
            raise InvalidArgumentError(
                f"option {key!r} does not apply to {fmt.name} files "
                f"(accepted: {', '.join(accepted) or 'none'})")


def read_image(path: str | os.PathLike, *, kind: str | None = None, format: str | None = None,
               nonfinite: str = "error", **options) -> Image:
    """Read any supported medical image file (or DICOM folder).

    Parameters
    ----------
    path : str or os.PathLike
        The file, or a folder holding a DICOM series.
    kind : {"image", "label", "soft"}, optional
        What the values mean. Default: what the file says (DICOM-SEG and
        HDF5 ``label`` datasets are labels), else ``"image"``.
    format : str, optional
        Force a format (a key of :data:`FORMATS`) instead of guessing.
    nonfinite : {"error", "zero", "keep"}
        What to do with NaN/Inf voxels in an intensity image.
    **options
        Format-specific options (``series=`` for DICOM, ``dataset=`` /
        ``axes=`` / ``spacing=`` for HDF5); an option the format does not
        take is an error.

    Returns
    -------
    Image
        ``metadata["path"]`` holds the source path.

    Raises
    ------
    SegloopError
        Any problem with the file, named with the file.
    """
    if kind is not None and kind not in KINDS:
        raise InvalidArgumentError(f"kind must be one of {KINDS}, got {kind!r}")
    if nonfinite not in ("error", "zero", "keep"):
        raise InvalidArgumentError(f"nonfinite must be error, zero or keep, got {nonfinite!r}")
    p = check_input_file(path, allow_dir=True)
    if format is not None and format not in FORMATS:
        raise InvalidArgumentError(f"unknown format {format!r}; one of {', '.join(FORMATS)}")
    fmt = FORMATS[format or format_of(p, sniff=True)]
    if p.is_dir() and not fmt.folder:
        raise UnsupportedFormatError(f"is a folder; {fmt.name} is read from a file", path=p)
    reader = fmt.load("reader")
    _check_options(reader, options, fmt)
    params = inspect.signature(reader).parameters
    if "kind" in params:
        options["kind"] = kind if kind is not None else params["kind"].default
    try:
        image = reader(p, **options)
    except SegloopError as exc:
        if exc.path is None:
            raise type(exc)(exc.message, path=p) from exc
        raise
    image.metadata["path"] = str(p)
    image.metadata.setdefault("format", fmt.name)
    bad = image.nonfinite_count()
    if bad and image.kind != "label":
        if nonfinite == "error":
            raise InvalidImageError(
                f"{bad} of {image.array.size} voxels are NaN or infinite "
                "(--nonfinite zero, or nonfinite='zero', replaces them by 0)", path=p)
        if nonfinite == "zero":
            image.array = np.nan_to_num(image.array, nan=0.0, posinf=0.0, neginf=0.0)
    return image


def write_image(image: Image, path: str | os.PathLike, *, format: str | None = None,
                overwrite: bool = False, **options) -> None:
    """Write ``image`` with its geometry, atomically.

    Parameters
    ----------
    image : Image
        What to write.
    path : str or os.PathLike
        Destination; the extension picks the format unless ``format`` is given.
    format : str, optional
        Force a format (a key of :data:`FORMATS`).
    overwrite : bool
        Replace an existing file; the old one is kept as ``NAME.~N~``.
    **options
        Format-specific writer options.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is false.
    UnsupportedFormatError
        The format cannot hold this image.
    """
    if not isinstance(image, Image):
        raise InvalidArgumentError(f"write_image needs an Image, got {type(image).__name__}")
    if format is not None and format not in FORMATS:
        raise InvalidArgumentError(f"unknown format {format!r}; one of {', '.join(FORMATS)}")
    p = Path(path)
    try:
        _write(image, p, format, overwrite, options)
    except SegloopError as exc:
        # name the user's path, not a temporary file, in the message
        if exc.path is None or Path(exc.path).name.startswith(f".{p.name}."):
            raise type(exc)(exc.message, path=p) from exc
        raise


def _write(image: Image, p: Path, format: str | None, overwrite: bool, options: dict) -> None:
    # a path without an extension names a folder: a DICOM series
    fmt = FORMATS[format or ("dicom" if compound_suffix(p) == "" else format_of(p))]
    writer = fmt.load("writer")
    _check_options(writer, options, fmt)
    if fmt.folder:  # folder-or-file writers handle atomicity and versions themselves
        writer(image, p, overwrite=overwrite, **options)
        return
    if compound_suffix(p) in fmt.detached:
        _write_detached(writer, image, p, overwrite, options)
        return
    if "name_as" in inspect.signature(writer).parameters:
        options["name_as"] = p
    with atomic_output(p, overwrite=overwrite) as tmp:
        writer(image, tmp, **options)


def _write_detached(writer, image: Image, path: Path, overwrite: bool, options: dict) -> None:
    """Header + data formats (``.mhd``, ``.nhdr``): write both, then move both."""
    if path.exists() and not overwrite:
        raise OutputExistsError("exists; pass --overwrite (overwrite=True) to replace it",
                                path=path)
    with write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        with write_errors(path):
            writer(image, staging / path.name, **options)
            for produced in sorted(staging.iterdir()):
                target = path.parent / produced.name
                if target.exists():
                    keep_version(target)
                apply_default_mode(produced)
                os.replace(produced, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_labelled(image_path, label_path, *, label_kind: str = "label",
                  **options) -> tuple[Image, Image]:
    """Read an image and its label, checking that they share a grid.

    Raises
    ------
    GeometryMismatchError
        Shape, spacing, origin or orientation differ; both files are named.
    """
    image = read_image(image_path, **options)
    label = read_image(label_path, kind=label_kind)
    check_same_grid(image, label)
    return image, label
