"""Preprocessing of one image: what training and inference both apply.

:func:`preprocess_image` turns an image (or one image per contrast, on one
grid) into the network's input ``float32 (C, *spatial)``: contrasts and
channels stacked first (``data.channels`` selects; colour images become
``(3, y, x)``), optionally cropped to the nonzero region
(``data.crop_foreground``), normalised, and resampled to ``data.spacing`` (a
2D model on volumes: in-plane only). Its ``info`` dict records the input grid,
the crop box, the output grid and the axis 2D models slice a volume along
(``data.slice_axis``, :func:`slice_axis_index`), so that :func:`to_grid` puts
a label on the same grid and :func:`restore_geometry` brings an output back
on the input's grid.

Slice axis: ``axial``, ``coronal`` and ``sagittal`` are names of the **array
axes** 0, 1 and 2 of the ``(z, y, x)`` array, whatever the image's direction
matrix: they match the anatomical planes only for a volume stored slice by
slice in axial order (the usual NIfTI/DICOM layout). A volume stored in
sagittal slices and sliced ``axial`` is cut along its array axis 0, that is in
sagittal planes; name the axis by number (0, 1, 2) when that is clearer.

Normalisation (``data.normalize``), per channel: ``zscore`` uses the nonzero
voxels when at least 25 % of the image is exactly 0 (a skull-stripped or masked
background, which stays 0) and the whole image otherwise; ``minmax`` maps to
[0, 1]; ``percentile`` maps the 0.5th..99.5th percentiles (of the nonzero voxels
under the same 25 % rule) to [0, 1] and clips; ``none`` keeps the values.

Examples
--------
>>> import numpy as np
>>> from segloop.io import Image
>>> from segloop.learn.config import load_config
>>> cfg = load_config({"data": {"path": "x", "spacing": [2.0, 2.0]}}).data
>>> img = Image(np.arange(16.0).reshape(4, 4))
>>> array, info = preprocess_image(img, cfg)
>>> array.shape, array.dtype, info["grid"]["spacing"]
((1, 2, 2), dtype('float32'), [2.0, 2.0])
>>> restore_geometry(np.ones((2, 2), np.uint8), info, order=0).shape
(4, 4)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.io import Image, check_same_grid, resample
from segloop.learn.config import DataConfig

__all__ = ["preprocess_image", "preprocess_settings", "restore_geometry", "slice_axis_index",
           "to_grid"]

_AXES = {"axial": 0, "coronal": 1, "sagittal": 2}  # array axes of (z, y, x), not anatomy
_ZERO_BACKGROUND = 0.25  # fraction of exact zeros above which zscore/percentile skip them


def preprocess_settings(cfg: DataConfig) -> dict:
    """The data settings that decide preprocessing (cache key, checkpoint ``preprocess``)."""
    keys = ("dims", "slice_axis", "contrasts", "channels", "label", "classes", "soft_labels",
            "spacing", "normalize", "crop_foreground")
    data = cfg.model_dump(mode="json")
    out = {k: data[k] for k in keys}
    if data["background"]:  # only when used: earlier caches and checkpoints keep their key
        out["background"] = data["background"]
    return out


def slice_axis_index(axis) -> int:
    """Array axis of ``data.slice_axis``: axial 0, coronal 1, sagittal 2 of the ``(z, y, x)`` array.

    The names stand for array axes, not for anatomical planes: the image's
    direction is not looked at (see the module docstring). The one mapping
    of the package: :func:`preprocess_image` records it in
    ``info["slice_axis"]`` and a predictor slices along it by default.

    Examples
    --------
    >>> slice_axis_index("coronal"), slice_axis_index(2)
    (1, 2)
    """
    return _AXES[axis] if isinstance(axis, str) else int(axis)


def _resolve_slice_axis(cfg: DataConfig, image: Image) -> int | None:
    """The array axis 2D models slice a volume along (None: 2D image or 3D model).

    It depends on the config only, not on the image's direction.
    """
    if cfg.dims == 3 or image.spatial_ndim == 2:
        return None
    return slice_axis_index(cfg.slice_axis)


def _target_spacing(cfg: DataConfig, image: Image, slice_axis: int | None) -> tuple | None:
    if cfg.spacing is None:
        return None
    nd, want = image.spatial_ndim, list(cfg.spacing)
    if len(want) == nd:
        return tuple(want)
    if nd == 3 and len(want) == 2 and slice_axis is not None:  # in-plane spacing of a 2D model
        want.insert(slice_axis, image.spacing[slice_axis])
        return tuple(want)
    raise InvalidArgumentError(f"data.spacing: {len(want)} values do not fit a {nd}D image",
                               path=_path(image))


def _path(image: Image) -> str:
    return str(image.metadata.get("path", "image"))


def _channels_first(images: Sequence[Image], cfg: DataConfig) -> np.ndarray:
    arrays = [np.moveaxis(im.array, -1, 0) if im.channels else im.array[None]
              for im in images]
    array = np.concatenate(arrays, axis=0) if len(arrays) > 1 else arrays[0]
    if cfg.channels is not None:
        bad = [c for c in cfg.channels if not -array.shape[0] <= c < array.shape[0]]
        if bad:
            raise InvalidArgumentError(f"data.channels: {bad} out of range for "
                                       f"{array.shape[0]} channel(s)", path=_path(images[0]))
        array = array[list(cfg.channels)]
    return array.astype(np.float32, copy=False)


def _normalize(array: np.ndarray, how: str) -> np.ndarray:
    out = np.empty_like(array, dtype=np.float32)
    for c, x in enumerate(array):
        if how == "none":
            out[c] = x
            continue
        zero = x == 0
        masked = zero.mean() >= _ZERO_BACKGROUND and not zero.all() and how != "minmax"
        values = x[~zero] if masked else x
        if how == "zscore":
            std = float(values.std())
            y = (x - float(values.mean())) / (std if std > 1e-8 else 1.0)
        else:
            lo, hi = ((float(values.min()), float(values.max())) if how == "minmax"
                      else tuple(float(v) for v in np.percentile(values, [0.5, 99.5])))
            y = np.clip((x - lo) / (hi - lo if hi - lo > 1e-8 else 1.0), 0.0, 1.0)
        out[c] = np.where(zero, 0.0, y) if masked else y
    return out


def _grid_image(array: np.ndarray, grid: dict, kind: str) -> Image:
    return Image(array, spacing=grid["spacing"], origin=grid["origin"],
                 direction=grid["direction"], kind=kind)


def _crop_grid(info: dict) -> dict:
    """The input grid restricted to the crop box."""
    lo = [a for a, _ in info["crop"]] if info["crop"] else [0] * len(info["shape"])
    origin = np.asarray(info["origin"]) + np.asarray(info["direction"]) @ (
        np.asarray(info["spacing"]) * np.asarray(lo, dtype=float))
    shape = [b - a for a, b in info["crop"]] if info["crop"] else list(info["shape"])
    return {"shape": shape, "spacing": list(info["spacing"]), "origin": origin.tolist(),
            "direction": info["direction"]}


def to_grid(array: np.ndarray, info: dict, kind: str) -> np.ndarray:
    """A ``(C, *input)`` array on the input grid -> cropped and resampled like the image.

    ``info`` is the image's (:func:`preprocess_image`); ``kind`` is ``label``
    (nearest neighbour) or ``image`` (linear), as for :func:`segloop.io.resample`.
    """
    if info["crop"]:
        array = array[(slice(None), *(slice(a, b) for a, b in info["crop"]))]
    if not info["resampled"]:
        return np.ascontiguousarray(array)
    src, ref = _crop_grid(info), _grid_image(np.zeros(info["grid"]["shape"], np.uint8),
                                             info["grid"], "label")
    return np.stack([resample(_grid_image(a, src, kind), reference=ref).array for a in array])


def preprocess_image(image: Image | Sequence[Image], cfg: DataConfig) -> tuple[np.ndarray, dict]:
    """Channels first, crop, normalise, resample: what training and inference apply.

    Parameters
    ----------
    image : Image or sequence of Image
        The image, or one image per contrast of ``cfg.contrasts`` (same grid),
        stacked as channels in that order.
    cfg : DataConfig

    Returns
    -------
    array : numpy.ndarray
        ``float32 (C, *spatial)`` on the preprocessed grid.
    info : dict
        JSON-ready: the input ``shape``, ``spacing``, ``origin``, ``direction``,
        the ``crop`` box (``[[lo, hi], ...]`` or None), ``resampled``, the output
        ``grid`` and ``slice_axis`` (the axis 2D models slice along, or None).

    Raises
    ------
    InvalidArgumentError
        A 2D image for a 3D model, a spacing or channel selection that does not
        fit (naming the file).
    """
    images = [image] if isinstance(image, Image) else list(image)
    first = images[0]
    for other in images[1:]:
        check_same_grid(first, other)
    if cfg.dims == 3 and first.spatial_ndim != 3:
        raise InvalidArgumentError(f"a {first.spatial_ndim}D image cannot feed a 3D model "
                                   "(data.dims: 3)", path=_path(first))
    slice_axis = _resolve_slice_axis(cfg, first)
    array = _channels_first(images, cfg)
    info = {"shape": list(first.shape), "spacing": list(first.spacing),
            "origin": list(first.origin), "direction": np.asarray(first.direction).tolist(),
            "crop": None, "resampled": False, "slice_axis": slice_axis,
            "channels": int(array.shape[0])}
    if cfg.crop_foreground:
        nonzero = np.argwhere(np.any(array != 0, axis=0))
        if len(nonzero):
            info["crop"] = [[int(a), int(b) + 1] for a, b in zip(nonzero.min(0), nonzero.max(0),
                                                                 strict=True)]
            array = array[(slice(None), *(slice(a, b) for a, b in info["crop"]))]
    array = _normalize(array, cfg.normalize)
    target = _target_spacing(cfg, first, slice_axis)
    grid = _crop_grid(info)
    if target is not None and not np.allclose(target, first.spacing, rtol=1e-6):
        out = [resample(_grid_image(a, grid, "image"), spacing=target) for a in array]
        array = np.stack([o.array for o in out]).astype(np.float32, copy=False)
        grid = {"shape": list(out[0].shape), "spacing": list(out[0].spacing),
                "origin": list(out[0].origin), "direction": grid["direction"]}
        info["resampled"] = True
    info["grid"] = grid
    return np.ascontiguousarray(array, dtype=np.float32), info


def restore_geometry(array: np.ndarray, info: dict, order: int = 0, *,
                     fill: float | Sequence[float] = 0.0) -> np.ndarray:
    """An output on the preprocessed grid back on the input's grid.

    Parameters
    ----------
    array : numpy.ndarray
        ``(*grid)`` or ``(C, *grid)``: a label map, probabilities...
    info : dict
        From :func:`preprocess_image`.
    order : {0, 1}
        0: nearest neighbour (integer labels); 1: linear (probabilities).
    fill : float or sequence of float
        Value outside the crop box (per channel with a sequence, e.g. 1 for
        the background probability).

    Returns
    -------
    numpy.ndarray
        ``(*input)`` or ``(C, *input)``, the dtype of ``array``.
    """
    nd = len(info["shape"])
    squeeze = array.ndim == nd
    stack = array[None] if squeeze else array
    if order not in (0, 1):
        raise InvalidArgumentError(f"order must be 0 or 1, got {order!r}")
    if order == 0 and not np.issubdtype(stack.dtype, np.integer):
        raise InvalidArgumentError("order=0 restores integer label maps; use order=1 for floats")
    if list(stack.shape[1:]) != list(info["grid"]["shape"]):
        raise InvalidArgumentError(f"array of shape {array.shape} is not on the preprocessed "
                                   f"grid {tuple(info['grid']['shape'])}")
    if info["resampled"]:
        ref = _grid_image(np.zeros(_crop_grid(info)["shape"], np.uint8), _crop_grid(info),
                          "label")
        kind = "label" if order == 0 else "image"
        stack = np.stack([resample(_grid_image(a, info["grid"], kind), reference=ref).array
                          for a in stack]).astype(array.dtype, copy=False)
    if info["crop"]:
        fills = np.broadcast_to(np.asarray(fill, dtype=np.float64), (stack.shape[0],))
        full = np.empty((stack.shape[0], *info["shape"]), dtype=stack.dtype)
        full[...] = fills.reshape(-1, *([1] * nd)).astype(stack.dtype)
        full[(slice(None), *(slice(a, b) for a, b in info["crop"]))] = stack
        stack = full
    return stack[0] if squeeze else stack
