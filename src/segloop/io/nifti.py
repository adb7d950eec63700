"""NIfTI (``.nii``, ``.nii.gz``) and FreeSurfer MGH (``.mgz``) through nibabel.

nibabel is used rather than SimpleITK for these because it reads the header
without touching pixel data (so absurd or truncated headers are refused
before allocation), applies ``scl_slope``/``scl_inter`` and keeps 4D series.
The affine is nibabel's best estimate (sform if set, else qform); files
written here carry identical qform and sform (code 1, scanner) so 3D Slicer,
ITK-SNAP and FSL agree on where the label lies.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io.image import Image
>>> p = pathlib.Path(tempfile.mkdtemp()) / "lab.nii.gz"
>>> write_nifti(Image(np.eye(3, dtype=np.uint8)[None], kind="label", spacing=(2, 1, 1)), p)
>>> read_nifti(p, kind="label").spacing
(2.0, 1.0, 1.0)
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from segloop.errors import CorruptFileError, SegloopError
from segloop.io.convert import from_nibabel, to_nibabel
from segloop.io.files import check_pixel_budget, compound_suffix
from segloop.io.image import Image

__all__ = ["read_nifti", "write_nifti"]


def _load_header(path: Path):
    import nibabel as nib

    try:
        if compound_suffix(path) not in (".nii", ".nii.gz", ".mgz", ".mgh"):
            # a kept version (NAME.nii.gz.~1~) or a renamed file: parse from the bytes
            raw = path.read_bytes()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            return nib.Nifti1Image.from_bytes(raw)
        return nib.load(str(path))
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError,
            zlib.error, gzip.BadGzipFile) as exc:
        raise CorruptFileError(f"cannot read NIfTI/MGH header ({exc})", path=path) from exc


def read_nifti(path: Path, *, kind: str = "image") -> Image:
    """Read a NIfTI-1/2 or MGH file.

    Parameters
    ----------
    path : pathlib.Path
        ``.nii``, ``.nii.gz`` or ``.mgz`` file.
    kind : {"image", "label", "soft"}
        What the values mean.

    Returns
    -------
    Image
        ``metadata`` holds ``format`` and the NIfTI ``qform_code``/``sform_code``
        and description.
    """
    import nibabel as nib

    nii = _load_header(path)
    header = nii.header
    shape = header.get_data_shape()
    dtype = header.get_data_dtype()
    on_disk = None
    if compound_suffix(path) == ".nii" and isinstance(nii, nib.Nifti1Image):
        on_disk = path.stat().st_size - int(header.get_data_offset())
    check_pixel_budget(shape, dtype, path, data_bytes_on_disk=on_disk)
    meta = {"format": "mgh" if compound_suffix(path) == ".mgz" else "nifti"}
    if hasattr(header, "get_qform") and "sform_code" in header:
        meta["qform_code"] = int(header["qform_code"])
        meta["sform_code"] = int(header["sform_code"])
        descrip = header["descrip"].tobytes().rstrip(b"\0").decode("latin-1").strip()
        if descrip:
            meta["description"] = descrip
    try:
        return from_nibabel(nii, kind=kind, metadata=meta)
    except SegloopError as exc:
        raise type(exc)(exc.message, path=path) from exc
    except (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile) as exc:
        raise CorruptFileError(f"pixel data cannot be read, file truncated or corrupt ({exc})",
                               path=path) from exc


def write_nifti(image: Image, path: Path) -> None:
    """Write ``image`` to ``path`` (NIfTI-1, or MGH for ``.mgz``).

    Label maps are stored with an integer type and the NIfTI label intent.
    """
    import nibabel as nib

    nii = to_nibabel(image)
    if compound_suffix(path) == ".mgz":
        data = np.asanyarray(nii.dataobj)
        if data.dtype not in (np.uint8, np.int16, np.int32, np.float32):
            data = data.astype(np.float32 if image.kind != "label" else np.int32)
        nii = nib.MGHImage(data, nii.affine)
    nib.save(nii, str(path))
