"""NRRD (``.nrrd``, ``.nhdr``) and MetaImage (``.mha``, ``.mhd``) via SimpleITK.

The header is read first (``ReadImageInformation``) so that absurd sizes are
refused before pixel data are allocated.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io.image import Image
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.nrrd"
>>> write_itk(Image(np.ones((2, 3, 4), np.float32), spacing=(5, 1, 1)), p)
>>> read_itk(p).spacing
(5.0, 1.0, 1.0)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segloop.errors import CorruptFileError, SegloopError
from segloop.io._quiet import itk_quiet, stderr_captured
from segloop.io.convert import from_sitk, to_sitk
from segloop.io.files import check_pixel_budget
from segloop.io.image import Image

__all__ = ["read_itk", "write_itk"]

_COMPONENT_BYTES = {
    "8-bit unsigned integer": 1, "8-bit signed integer": 1,
    "16-bit unsigned integer": 2, "16-bit signed integer": 2,
    "32-bit unsigned integer": 4, "32-bit signed integer": 4,
    "64-bit unsigned integer": 8, "64-bit signed integer": 8,
    "32-bit float": 4, "64-bit float": 8,
}


def read_itk(path: Path, *, kind: str = "image") -> Image:
    """Read an NRRD or MetaImage file with SimpleITK.

    Parameters
    ----------
    path : pathlib.Path
        ``.nrrd``, ``.nhdr``, ``.mha`` or ``.mhd`` file.
    kind : {"image", "label", "soft"}
        What the values mean.

    Returns
    -------
    Image
        The image, with ``metadata["format"]``.
    """
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with itk_quiet(), stderr_captured():
            reader.ReadImageInformation()
    except RuntimeError as exc:
        raise CorruptFileError(f"cannot read header ({_first_line(exc)})", path=path) from exc
    size = reader.GetSize()
    comp = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    ncomp = reader.GetNumberOfComponents()
    itemsize = next((b for name, b in _COMPONENT_BYTES.items() if name in comp), 8)
    check_pixel_budget(tuple(size) + (ncomp,), np.dtype(f"u{itemsize}"), path)
    try:
        with itk_quiet(), stderr_captured():
            sitk_image = reader.Execute()
    except RuntimeError as exc:
        raise CorruptFileError(f"pixel data cannot be read, file truncated or corrupt "
                               f"({_first_line(exc)})", path=path) from exc
    fmt = "nrrd" if path.suffix.lower() in (".nrrd", ".nhdr") else "metaimage"
    try:
        return from_sitk(sitk_image, kind=kind, metadata={"format": fmt})
    except SegloopError as exc:
        raise type(exc)(exc.message, path=path) from exc


def write_itk(image: Image, path: Path) -> None:
    """Write an NRRD or MetaImage file (compressed) with SimpleITK."""
    import SimpleITK as sitk

    sitk.WriteImage(to_sitk(image), str(path), useCompression=True)


def _first_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "Description:" in ln or "ERROR" in ln.upper()]
    text = (useful or lines or ["unknown error"])[-1]
    return text.split("Description:")[-1].strip()
