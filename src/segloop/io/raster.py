"""PNG, JPEG and TIFF images (microscopy, X-ray, endoscopy, slices).

* 8- and 16-bit gray, RGB and RGBA are read; colour becomes a trailing
  channel axis. Multi-page TIFF stacks are read as volumes ``(z, y, x)``.
* A label map stored in colour is accepted when all colour channels are
  equal (a gray mask saved as RGB); palette PNG/GIF labels keep their indices.
* Physical pixel size comes from a BIDS sidecar JSON beside the file
  (``PixelSize`` listed ``[x, y(, z)]``, ``PixelSizeUnits`` in mm/um/nm),
  otherwise the spacing is 1 and ``metadata["spacing_known"]`` is false.
* Writing PNG/TIFF keeps integer data; when the spacing is known a BIDS
  sidecar with ``PixelSize`` in micrometres is written beside the image.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io.image import Image
>>> p = pathlib.Path(tempfile.mkdtemp()) / "m.png"
>>> write_raster(Image(np.array([[0, 255]], np.uint8), kind="label"), p)
>>> read_raster(p, kind="label").array.tolist()
[[0, 255]]
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from segloop.errors import (
    CorruptFileError,
    InvalidImageError,
    SegloopError,
    UnsupportedFormatError,
)
from segloop.io._quiet import captured_logs
from segloop.io.files import atomic_output, check_pixel_budget
from segloop.io.image import Image, default_direction

__all__ = ["read_raster", "sidecar_spacing", "write_raster"]

_UNIT_TO_MM = {"mm": 1.0, "um": 1e-3, "µm": 1e-3, "μm": 1e-3, "nm": 1e-6, "cm": 10.0, "m": 1e3}


def sidecar_spacing(path: Path, ndim: int) -> tuple[float, ...] | None:
    """Pixel size in mm (array order) from the BIDS sidecar JSON of ``path``, if any.

    Parameters
    ----------
    path : pathlib.Path
        The image file; the sidecar is the same name with ``.json``.
    ndim : int
        Spatial dimensions of the image.

    Returns
    -------
    tuple of float or None
        ``None`` without a sidecar or without ``PixelSize``.
    """
    sidecar = path.with_name(path.name.split(".")[0] + ".json")
    if not sidecar.is_file():
        return None
    try:
        info = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"sidecar is not valid JSON ({exc})", path=sidecar) from exc
    size = info.get("PixelSize") if isinstance(info, dict) else None
    if size is None:
        return None
    unit = str(info.get("PixelSizeUnits", "um"))
    if unit not in _UNIT_TO_MM:
        raise CorruptFileError(f"unknown PixelSizeUnits {unit!r}", path=sidecar)
    try:
        values = [float(v) * _UNIT_TO_MM[unit] for v in size]
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(f"PixelSize must be a list of numbers, got {size!r}",
                               path=sidecar) from exc
    if len(values) < ndim or any(v <= 0 for v in values[:ndim]):
        raise CorruptFileError(f"PixelSize {size!r} does not fit a {ndim}D image", path=sidecar)
    return tuple(values[:ndim][::-1])


def _read_pillow(path: Path, kind: str) -> tuple[np.ndarray, dict]:
    from PIL import Image as PILImage

    saved = PILImage.MAX_IMAGE_PIXELS
    PILImage.MAX_IMAGE_PIXELS = None  # our budget check below replaces Pillow's bomb guard
    try:
        with PILImage.open(path) as im:
            check_pixel_budget((im.height, im.width, len(im.getbands())), np.uint16, path)
            mode = im.mode
            if mode == "P" and kind != "label":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            elif mode == "1":
                im = im.convert("L")
            array = np.asarray(im)
    except SegloopError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # any decoder failure: the file is damaged or not an image
        raise CorruptFileError(f"cannot decode image ({_one_line(exc)})", path=path) from exc
    finally:
        PILImage.MAX_IMAGE_PIXELS = saved
    return array, {"mode": mode}


def _read_tiff(path: Path) -> tuple[np.ndarray, dict]:
    import tifffile

    try:
        with captured_logs("tifffile"), tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            check_pixel_budget(series.shape, series.dtype, path)
            array = series.asarray()
            axes = series.axes
    except SegloopError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # tifffile/imagecodecs raise many types for damaged files
        raise CorruptFileError(f"cannot decode TIFF ({_one_line(exc)})", path=path) from exc
    return array, {"tiff_axes": axes}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_raster(path: Path, *, kind: str = "image") -> Image:
    """Read a PNG, JPEG, GIF, BMP or TIFF file.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    kind : {"image", "label", "soft"}
        What the values mean. Labels must be single-channel (or gray saved
        as colour).

    Returns
    -------
    Image
        2D ``(y, x)`` (plus channels) or, for multi-page TIFF, 3D.
    """
    suffix = path.suffix.lower()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's DecompressionBomb warning is handled above
        if suffix in (".tif", ".tiff"):
            array, meta = _read_tiff(path)
        else:
            array, meta = _read_pillow(path, kind)
    channels = False
    if array.ndim == 3 and array.shape[-1] in (3, 4) and meta.get("tiff_axes", "YXS")[-1] in "SC":
        channels = True
    if kind == "label" and channels:
        if not all(np.array_equal(array[..., 0], array[..., c]) for c in range(1, 3)):
            raise InvalidImageError("label image is in colour (channels differ); "
                                    "expected a gray or palette mask", path=path)
        array, channels = array[..., 0], False
    if array.ndim - channels not in (2, 3):
        raise InvalidImageError(f"unexpected image shape {array.shape}", path=path)
    nd = array.ndim - channels
    spacing = sidecar_spacing(path, nd)
    meta.update(format="tiff" if suffix in (".tif", ".tiff") else suffix.lstrip("."),
                spacing_known=spacing is not None, bits=array.dtype.itemsize * 8)
    return Image(array, spacing=spacing, kind=kind, channels=channels, metadata=meta)


def _check_geometry_kept(image: Image, path: Path, drop_geometry: bool) -> None:
    """PNG and TIFF keep spacing (in a sidecar) but no origin or orientation."""
    placed = (np.any(np.abs(image.origin) > 1e-6)
              or not np.allclose(image.direction, default_direction(image.spatial_ndim)))
    if placed and not drop_geometry:
        fmt = "PNG" if path.suffix.lower() == ".png" else "TIFF"
        origin = ", ".join(f"{o + 0.0:.4g}" for o in image.origin)
        raise UnsupportedFormatError(
            f"{fmt} keeps no origin or orientation, and this image is placed in space "
            f"(origin {origin} mm, orientation {image.orientation}); write NIfTI or NRRD to "
            "keep it, or pass --drop-geometry (drop_geometry=True) to write pixels only",
            path=path)


def _write_sidecar(image: Image, final: Path) -> None:
    """Merge ``PixelSize`` into the BIDS sidecar beside ``final`` (old one kept as a version)."""
    sidecar = final.with_name(final.name.split(".")[0] + ".json")
    pixel_um = [round(s * 1000.0, 6) for s in image.spacing[::-1]]
    info: dict = {}
    if sidecar.is_file():
        try:
            info = json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:
            raise CorruptFileError(f"existing sidecar is not valid JSON ({exc}); not touching "
                                   "it", path=sidecar) from exc
        if not isinstance(info, dict):
            raise CorruptFileError("existing sidecar is not a JSON object", path=sidecar)
        unit = _UNIT_TO_MM.get(str(info.get("PixelSizeUnits", "um")))
        old = info.get("PixelSize")
        if unit and isinstance(old, list) and len(old) >= len(pixel_um) and np.allclose(
                [float(v) * unit for v in old[: len(pixel_um)]],
                [p / 1000.0 for p in pixel_um], rtol=1e-6):
            return  # already right
    info.update(PixelSize=pixel_um, PixelSizeUnits="um")
    with atomic_output(sidecar, overwrite=True) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")


def write_raster(image: Image, path: Path, *, name_as: Path | None = None,
                 drop_geometry: bool = False) -> None:
    """Write a PNG or TIFF file (integer data; TIFF also float).

    Parameters
    ----------
    image : Image
        2D image or label (PNG); 2D or 3D (TIFF).
    path : pathlib.Path
        Where to write the pixels.
    name_as : pathlib.Path, optional
        The file's final name, when ``path`` is a temporary file; the BIDS
        sidecar is named after it.
    drop_geometry : bool
        Write an image that is placed in space (non-zero origin, rotated or
        flipped axes) although the format cannot record where.

    Raises
    ------
    UnsupportedFormatError
        For data the format cannot hold (float PNG, 3D PNG, JPEG output, or
        an image placed in space without ``drop_geometry``).
    """
    suffix = path.suffix.lower()
    final = path if name_as is None else name_as
    array = image.array
    if suffix not in (".png", ".tif", ".tiff"):
        raise UnsupportedFormatError(f"cannot write {suffix} (lossy or read-only); "
                                     "use .png, .tif or .nii.gz", path=final)
    _check_geometry_kept(image, final, drop_geometry)
    if suffix == ".png":
        if image.spatial_ndim != 2:
            raise UnsupportedFormatError("PNG holds 2D images; write a volume as NIfTI or TIFF",
                                         path=final)
        if not np.issubdtype(array.dtype, np.integer) and array.dtype != bool:
            raise UnsupportedFormatError(
                f"PNG holds 8/16-bit integers, not {array.dtype}; use TIFF or NIfTI", path=final)
        lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise UnsupportedFormatError(f"values [{lo}, {hi}] do not fit 16-bit PNG",
                                         path=final)
        from PIL import Image as PILImage

        dtype = np.uint8 if hi <= 255 else np.uint16
        PILImage.fromarray(np.ascontiguousarray(array.astype(dtype))).save(path, format="PNG")
    else:
        import tifffile

        tifffile.imwrite(path, np.ascontiguousarray(array),
                         photometric="rgb" if image.channels else "minisblack")
    if image.metadata.get("spacing_known", True) and not np.allclose(image.spacing, 1.0):
        _write_sidecar(image, final)
