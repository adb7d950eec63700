"""How the image and label files of a dataset case are read.

A layout (see :mod:`segloop.io.layouts`) describes each image or label of a
:class:`~segloop.io.dataset.Case` by a path and an options mapping.  Options
that :func:`segloop.io.read_image` takes (``format``, ``dataset``, ``axes``,
``spacing``, ``nonfinite``, ``kind``) are passed on; the keys below add the
few steps the real data sets need after (or instead of) reading:

``threshold``
    A number ``t``: read the file as an intensity image, average the colour
    channels (alpha dropped) and keep ``value > t`` as a {0, 1} label.  For
    0/255 masks, JPEG-noisy masks (``127``) and float masks (``0.5``).
    ``"auto"``: read as a label map; an 8-bit label whose largest value is 255
    is a 0/255 mask and becomes ``value > 127``; any other label is kept as it
    is (multi-class maps stay multi-class).
``parts``
    ``((path, value), ...)``: binary mask files (pixels above half the
    file's largest value: 0/1 and 0/255 masks alike) painted with ``value``
    into one label map, later parts over earlier ones; instance masks, split
    components, structure masks.
``npz``
    ``(key, i, j, ...)``: the array ``key`` of an ``.npz`` file indexed by
    ``[i, j, ...]`` (read with ``allow_pickle=False``); ``scale`` multiplies it
    (e.g. ``1/255`` for a soft label stored as 8-bit).
``clip``
    ``(low, high)``: read the file as an intensity image and clip its values
    to ``[low, high]`` before making it the ``kind`` asked (a soft label must
    lie in [0, 1]; some tools write probability maps slightly above 1).
``rgb``
    Drop the alpha channel of an RGBA image.
``gray``
    Collapse colour channels that are all equal (gray saved as RGB) to one.
``pixel_size_xyz``
    Pixel size in mm in file order ``(x, y[, z])``, used when the file itself
    stores no spacing (a BIDS sidecar inherited from a less specific level).

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io import Image, write_image
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_image(Image(np.array([[0, 255], [200, 3]], np.uint8), kind="label"), d / "m.png")
>>> read_source(d / "m.png", {"threshold": 127}, kind="label").array.tolist()
[[0, 1], [1, 0]]
"""

from __future__ import annotations

import functools
import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from segloop.errors import CorruptFileError, DatasetError, GeometryMismatchError
from segloop.io.files import check_input_file
from segloop.io.image import Image
from segloop.io.registry import read_image

__all__ = ["STEP_KEYS", "read_npz_member", "read_source"]

#: Option keys handled here rather than by :func:`segloop.io.read_image`.
STEP_KEYS = ("threshold", "parts", "npz", "scale", "clip", "rgb", "gray", "pixel_size_xyz")


def _gray(array: np.ndarray, channels: bool) -> np.ndarray:
    """One value per pixel: the mean of the colour channels (alpha dropped)."""
    if not channels:
        return array
    n = array.shape[-1]
    colour = array[..., :3] if n >= 3 else array[..., :1]
    return colour.mean(axis=-1)


def _smallest_uint(max_value: int) -> type:
    return np.uint8 if max_value <= 255 else np.uint16 if max_value <= 65535 else np.uint32


@functools.lru_cache(maxsize=4)
def _npz_array(path: str, mtime_ns: int, key: str) -> np.ndarray:
    """One array of an archive, kept for the next case (a rater archive is read per case)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if key not in archive.files:
                raise CorruptFileError(
                    f"no array {key!r} (has: {', '.join(archive.files)})", path=path
                )
            array = archive[key]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(f"not a readable .npz archive ({exc})", path=path) from exc
    array.flags.writeable = False
    return array


def read_npz_member(
    path: str | os.PathLike,
    key: str,
    index: tuple[int, ...] = (),
    *,
    kind: str = "image",
    spacing=None,
    scale: float | None = None,
) -> Image:
    """Read one 2D/3D array out of an ``.npz`` archive as an :class:`Image`.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file (no pickled objects are loaded).
    key : str
        Name of the array in the archive.
    index : tuple of int
        Leading indices selecting one image, e.g. ``(case, rater)``.
    kind : {"image", "label", "soft"}
        What the values mean.
    spacing : sequence of float, optional
        Pixel size in mm, array order; NPZ files store none.
    scale : float, optional
        Multiply the values (as float32) before building the image.

    Returns
    -------
    Image
        ``metadata`` holds ``path``, ``format="npz"``, ``member`` and ``index``.

    Raises
    ------
    CorruptFileError
        The file is not a readable archive, lacks ``key``, or ``index`` is out of range.

    Examples
    --------
    >>> import numpy as np, pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.npz"
    >>> np.savez(p, masks=np.arange(16).reshape(2, 2, 2, 2) % 2)
    >>> read_npz_member(p, "masks", (1, 0), kind="label").array.tolist()
    [[0, 1], [0, 1]]
    """
    p = check_input_file(path)
    stored = _npz_array(str(p.resolve()), p.stat().st_mtime_ns, key)
    try:
        array = stored[tuple(int(i) for i in index)]
    except IndexError as exc:
        raise CorruptFileError(
            f"index {tuple(index)} out of range for {key!r} of shape {stored.shape}", path=p
        ) from exc
    if scale is not None:
        array = array.astype(np.float32) * np.float32(scale)
    meta = {
        "path": str(p),
        "format": "npz",
        "member": key,
        "index": list(index),
        "spacing_known": spacing is not None,
    }
    return Image(np.array(array, copy=True), spacing=spacing, kind=kind, metadata=meta)


def _merge_parts(parts) -> Image:
    """Paint binary mask files into one label map (later parts win)."""
    if not parts:
        raise DatasetError("a label made of parts needs at least one mask file")
    first: Image | None = None
    label: np.ndarray | None = None
    overlap = 0
    top = max(int(value) for _, value in parts)
    for path, value in parts:
        mask_image = read_image(path, kind="image")
        values = _gray(mask_image.array, mask_image.channels)
        mask = values > (values.max() / 2 if values.size else 0)
        if label is None:
            first = mask_image
            label = np.zeros(mask.shape, _smallest_uint(top))
        elif mask.shape != label.shape:
            raise GeometryMismatchError(
                f"{path} has shape {mask.shape}, {first.metadata['path']} has {label.shape}"
            )
        overlap += int(np.count_nonzero(label[mask]))
        label[mask] = value
    out = first.with_array(label, kind="label", channels=False)
    out.metadata.update(parts=len(parts), overlap_pixels=overlap)
    return out


def _with_spacing(image: Image, pixel_size_xyz) -> Image:
    """``image`` with the spacing from ``pixel_size_xyz`` when its file had none."""
    if image.metadata.get("spacing_known", True) or pixel_size_xyz is None:
        return image
    values = [float(v) for v in pixel_size_xyz]
    if len(values) < image.spatial_ndim:
        return image
    meta = dict(image.metadata, spacing_known=True, spacing_source="inherited sidecar")
    return Image(
        image.array,
        spacing=values[: image.spatial_ndim][::-1],
        origin=image.origin,
        direction=image.direction,
        kind=image.kind,
        channels=image.channels,
        metadata=meta,
    )


def read_source(
    path: str | os.PathLike, options: Mapping[str, Any] | None = None, *, kind: str = "image"
) -> Image:
    """Read one image or label of a case, applying the steps in ``options``.

    Parameters
    ----------
    path : str or os.PathLike
        The file (or the folder of a label made of ``parts``).
    options : mapping, optional
        ``read_image`` keywords plus the step keys listed in the module docstring.
    kind : {"image", "label", "soft"}
        What is wanted; ``options["kind"]`` overrides it.

    Returns
    -------
    Image
        The image; a thresholded or merged label is a {0, 1} / integer label map.

    Raises
    ------
    SegloopError
        Any problem with the file, named with the file.

    Examples
    --------
    >>> import numpy as np, pathlib, tempfile
    >>> from segloop.io import Image, write_image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_image(Image(np.array([[0, 2], [1, 0]], np.uint8), kind="label"), d / "c.png")
    >>> read_source(d / "c.png", {"threshold": "auto"}, kind="label").array.tolist()
    [[0, 2], [1, 0]]
    """
    opts = dict(options or {})
    kind = opts.pop("kind", kind)
    steps = {k: opts.pop(k) for k in STEP_KEYS if k in opts}
    if "npz" in steps:
        key, *index = steps["npz"]
        image = read_npz_member(
            path,
            key,
            tuple(index),
            kind=kind,
            spacing=opts.get("spacing"),
            scale=steps.get("scale"),
        )
    elif "parts" in steps:
        image = _merge_parts(steps["parts"])
    else:
        threshold = steps.get("threshold")
        numeric = threshold is not None and threshold != "auto"
        clip = steps.get("clip")
        image = read_image(path, kind="image" if numeric or clip else kind, **opts)
        if clip:
            low, high = (float(v) for v in clip)
            clipped = np.clip(image.array.astype(np.float32, copy=False), low, high)
            outside = int(np.count_nonzero((image.array < low) | (image.array > high)))
            image = image.with_array(clipped, kind=kind)
            image.metadata.update(clipped_to=[low, high], clipped_voxels=outside)
        if numeric:
            mask = _gray(image.array, image.channels) > float(threshold)
            image = image.with_array(mask.astype(np.uint8), kind="label", channels=False)
        elif threshold == "auto" and image.array.dtype == np.uint8 and image.array.size:
            if int(image.array.max()) == 255:
                image = image.with_array((image.array > 127).astype(np.uint8))
    if steps.get("rgb") and image.channels and image.n_channels == 4:
        image = image.with_array(image.array[..., :3])
    if steps.get("gray") and image.channels:
        first = image.array[..., 0]
        if all(np.array_equal(first, image.array[..., c]) for c in range(1, image.n_channels)):
            image = image.with_array(first, channels=False)
    image = _with_spacing(image, steps.get("pixel_size_xyz"))
    image.metadata.setdefault("path", str(path))
    return image
