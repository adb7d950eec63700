"""NIfTI (``.nii``, ``.nii.gz``) and FreeSurfer MGH (``.mgz``) through nibabel.

nibabel reads the header without touching pixel data (so absurd or truncated
headers are refused before allocation), applies ``scl_slope``/``scl_inter``
and keeps 4D series.

Which geometry: a NIfTI file may carry two transforms (qform and sform) that
disagree. segloop places the grid exactly where ITK puts it, because 3D Slicer
and ITK-SNAP are built on ITK and a label must overlay its image there; when
nibabel's choice (the sform) differs by more than 0.01 mm, the difference is
recorded in ``metadata["geometry_note"]``. Files written here carry identical
qform and sform (code 1, scanner), so every reader agrees on them.

A file whose intent code is NIFTI_INTENT_LABEL (1002; segloop writes it for
label maps) is read as a label map unless another kind is asked for.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io.image import Image
>>> p = pathlib.Path(tempfile.mkdtemp()) / "lab.nii.gz"
>>> write_nifti(Image(np.eye(3, dtype=np.uint8)[None], kind="label", spacing=(2, 1, 1)), p)
>>> lab = read_nifti(p)
>>> lab.kind, lab.spacing
('label', (2.0, 1.0, 1.0))
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from segloop.errors import CorruptFileError, SegloopError
from segloop.io._quiet import captured_logs, itk_quiet
from segloop.io.convert import from_nibabel, to_nibabel
from segloop.io.files import check_pixel_budget, compound_suffix
from segloop.io.image import Image

__all__ = ["read_nifti", "write_nifti"]

_NIFTI_INTENT_LABEL = 1002
_STANDARD = (".nii", ".nii.gz", ".mgz", ".mgh")


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _load_header(path: Path):
    import nibabel as nib

    try:
        if compound_suffix(path) not in _STANDARD:
            # a kept version (NAME.nii.gz.~1~) or a renamed file: parse from the bytes
            raw = path.read_bytes()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            return nib.Nifti1Image.from_bytes(raw)
        return nib.load(str(path))
    except Exception as exc:  # any parser failure means the header is unusable
        raise CorruptFileError(f"cannot read NIfTI/MGH header ({_first_line(exc)})",
                               path=path) from exc


def _itk_geometry(path: Path, nd: int):
    """Spacing, origin, direction (Image convention) as ITK reads them, or None."""
    import SimpleITK as sitk

    if compound_suffix(path) not in (".nii", ".nii.gz"):
        return None
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with itk_quiet():
            reader.ReadImageInformation()
    except RuntimeError:
        return None
    dim = reader.GetDimension()
    if dim < nd:
        return None
    spacing = np.asarray(reader.GetSpacing()[:nd])[::-1]
    origin = np.asarray(reader.GetOrigin()[:nd])
    direction = np.asarray(reader.GetDirection()).reshape(dim, dim)[:nd, :nd][:, ::-1]
    return spacing, origin, direction


def _use_itk_geometry(image: Image, path: Path) -> None:
    itk = _itk_geometry(path, image.spatial_ndim)
    if itk is None:
        return
    spacing, origin, direction = itk
    corner = np.asarray(image.shape, dtype=float) - 1
    ours = [image.index_to_world(np.zeros(image.spatial_ndim)), image.index_to_world(corner)]
    theirs = [origin, origin + direction @ (spacing * corner)]
    gap = max(float(np.linalg.norm(a - b)) for a, b in zip(ours, theirs, strict=True))
    if gap > 0.01:
        image.metadata["geometry_note"] = (
            f"qform and sform disagree (corners up to {gap:.3g} mm apart); using ITK's choice, "
            "as 3D Slicer and ITK-SNAP do")
    image.spacing = tuple(float(s) for s in spacing)
    image.origin = tuple(float(o) for o in origin)
    image.direction = direction


def read_nifti(path: Path, *, kind: str | None = None) -> Image:
    """Read a NIfTI-1/2 or MGH file.

    Parameters
    ----------
    path : pathlib.Path
        ``.nii``, ``.nii.gz`` or ``.mgz`` file.
    kind : {"image", "label", "soft"}, optional
        What the values mean; default: ``"label"`` for files with the NIfTI
        label intent, else ``"image"``.

    Returns
    -------
    Image
        ``metadata`` holds ``format``, the NIfTI ``qform_code``/``sform_code``,
        the description and any ``header_notes`` nibabel raised.
    """
    import nibabel as nib

    with captured_logs("nibabel") as notes:
        nii = _load_header(path)
    header = nii.header
    try:
        shape = header.get_data_shape()
        dtype = header.get_data_dtype()
        offset = int(header.get_data_offset())
    except Exception as exc:
        raise CorruptFileError(f"invalid header ({_first_line(exc)})", path=path) from exc
    on_disk = None
    if compound_suffix(path) == ".nii" and isinstance(nii, nib.Nifti1Image):
        on_disk = path.stat().st_size - offset
    check_pixel_budget(shape, dtype, path, data_bytes_on_disk=on_disk)
    meta = {"format": "mgh" if compound_suffix(path) in (".mgz", ".mgh") else "nifti"}
    if "sform_code" in header:
        meta["qform_code"] = int(header["qform_code"])
        meta["sform_code"] = int(header["sform_code"])
        descrip = header["descrip"].tobytes().rstrip(b"\0").decode("latin-1").strip()
        if descrip:
            meta["description"] = descrip
        if kind is None and int(header["intent_code"]) == _NIFTI_INTENT_LABEL:
            kind = "label"
    try:
        with captured_logs("nibabel") as read_notes:
            image = from_nibabel(nii, kind=kind or "image", metadata=meta)
    except SegloopError as exc:
        raise type(exc)(exc.message, path=path) from exc
    except MemoryError:
        raise
    except Exception as exc:  # decompression/decoding failures of a damaged file
        raise CorruptFileError(f"pixel data cannot be read, file truncated or corrupt "
                               f"({_first_line(exc)})", path=path) from exc
    if notes or read_notes:
        image.metadata["header_notes"] = "; ".join(notes + read_notes)
    _use_itk_geometry(image, path)
    return image


def write_nifti(image: Image, path: Path) -> None:
    """Write ``image`` to ``path`` (NIfTI-1, or MGH for ``.mgz``).

    Label maps are stored with an integer type and the NIfTI label intent.
    """
    import nibabel as nib

    nii = to_nibabel(image)
    if compound_suffix(path) in (".mgz", ".mgh"):
        data = np.asanyarray(nii.dataobj)
        if data.dtype not in (np.uint8, np.int16, np.int32, np.float32):
            data = data.astype(np.float32 if image.kind != "label" else np.int32)
        nii = nib.MGHImage(data, nii.affine)
    nib.save(nii, str(path))
