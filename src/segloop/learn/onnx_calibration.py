"""Calibration inputs for int8 quantization, and how far an int8 model strays from float32.

:func:`calibration_inputs` draws ``n`` network inputs from pre-processed
training volumes (:class:`segloop.learn.data.Volume`), shaped as inference
feeds them: a slice of a volume for a 2D model (or the image itself), a
window of ``inference.roi_size`` / ``data.patch_size`` (96³ for 3D models)
when one is set and smaller than the image, zero-padded to a multiple of the
U-Net's downsampling (:func:`segloop.learn.sampling.size_multiple`). Every
other sample is centred on the label's foreground (when the volume has
some), the others are drawn uniformly, so the activation ranges cover both
the object and the background. A FiLM network gets each volume's metadata
vector (its *all missing* vector when the volume has none).

:func:`compare_outputs` scores int8 outputs against float32 ones: the
fraction of pixels with the same class, the Dice of each class between the
two label maps (pooled over the samples; a class neither predicts counts as
1) and the mean / maximum absolute difference of the activated outputs.

Examples
--------
>>> import numpy as np
>>> from segloop.learn.config import load_config
>>> cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]}})
>>> ref = [np.array([[[[2.0, -1.0]], [[0.0, 1.0]]]], np.float32)]  # (1, K=2, 1, 2) logits
>>> same = compare_outputs(ref, ref, config=cfg)
>>> same["agreement"], same["dice"], same["mean_abs_diff"]
(1.0, 1.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from segloop.errors import InvalidArgumentError
from segloop.learn.config import Config
from segloop.learn.networks import activate
from segloop.learn.preprocess import slice_axis_index
from segloop.learn.sampling import size_multiple

__all__ = ["calibration_inputs", "compare_outputs", "pad_to_multiple"]


def pad_to_multiple(array: np.ndarray, multiple: int) -> np.ndarray:
    """``(C, *spatial)`` zero-padded (centred) to multiples of ``multiple``, as inference pads.

    Examples
    --------
    >>> pad_to_multiple(np.ones((1, 5, 8), np.float32), 4).shape
    (1, 8, 8)
    """
    pads = [(0, 0)] + [((-s % multiple) // 2, (-s % multiple) - (-s % multiple) // 2)
                       for s in array.shape[1:]]
    return np.pad(array, pads) if any(p for pair in pads for p in pair) else array


def _foreground(label: np.ndarray | None, spatial: int) -> np.ndarray | None:
    """A boolean foreground mask of a hard ``(*sp)`` or soft ``(K, *sp)`` label."""
    if label is None:
        return None
    lab = np.asarray(label)
    return lab.max(axis=0) > 0.5 if lab.ndim == spatial + 1 else lab > 0


def _pick(rng, mask: np.ndarray | None, shape, foreground: bool) -> tuple[int, ...]:
    """A voxel: one of the mask's when asked and present, else uniform."""
    if foreground and mask is not None and mask.any():
        points = np.argwhere(mask)
        return tuple(int(v) for v in points[rng.integers(len(points))])
    return tuple(int(rng.integers(s)) for s in shape)


def _region(volume, config: Config, rng, foreground: bool) -> np.ndarray:
    """One network input ``(C, *spatial)`` of ``volume`` (a slice, a window or all of it)."""
    image = np.asarray(volume.image, np.float32)
    mask = _foreground(volume.label, image.ndim - 1)
    if config.data.dims == 2 and image.ndim == 4:
        axis = volume.slice_axis
        axis = slice_axis_index(config.data.slice_axis) if axis is None else int(axis)
        if mask is not None and mask.shape != image.shape[1:]:
            mask = None
        index = _pick(rng, mask, image.shape[1:], foreground)[axis]
        image = np.take(image, index, axis=1 + axis)
        mask = None if mask is None else np.take(mask, index, axis=axis)
    spatial = image.shape[1:]
    roi = config.inference.roi_size or config.data.patch_size
    if roi is None and config.data.dims == 3:
        roi = [96, 96, 96]
    if roi is not None and len(roi) == len(spatial) and any(
            r < s for r, s in zip(roi, spatial, strict=True)):
        if mask is not None and mask.shape != spatial:
            mask = None
        centre = _pick(rng, mask, spatial, foreground)
        box = []
        for c, r, s in zip(centre, roi, spatial, strict=True):
            size = min(int(r), s)
            start = int(np.clip(c - size // 2, 0, s - size))
            box.append(slice(start, start + size))
        image = image[(slice(None), *box)]
    return pad_to_multiple(image, size_multiple(config))


def calibration_inputs(volumes: Sequence, config: Config, n: int, *, meta_dim: int = 0,
                       missing: np.ndarray | None = None, seed: int = 0) -> list[dict]:
    """``n`` network inputs ``{"image": (1, C, *sp)[, "meta": (1, D)]}`` from ``volumes``.

    Parameters
    ----------
    volumes : sequence of Volume
        Pre-processed training volumes (:func:`segloop.learn.data.prepare_data`).
    config : Config
        The model's config (slicing, windows, downsampling).
    n : int
        Samples (volumes are visited in a seeded random order, round robin).
    meta_dim : int
        A FiLM network's metadata length (0: plain, no ``meta`` input).
    missing : numpy.ndarray, optional
        The metadata vector of a volume without one (``meta_encoder.missing()``).
    seed : int
        Seed of the choices.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        ``n`` below 1, or no volume.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InvalidArgumentError(f"calibration: at least 1 sample, got {n!r}")
    if not volumes:
        raise InvalidArgumentError("calibration: no training volume to draw samples from")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(volumes))
    out = []
    for i in range(int(n)):
        volume = volumes[order[i % len(volumes)]]
        item = {"image": _region(volume, config, rng, foreground=i % 2 == 0)[None]}
        if meta_dim:
            meta = getattr(volume, "meta", None)
            if meta is None or np.asarray(meta).shape != (meta_dim,):
                meta = missing if missing is not None else np.zeros(meta_dim, np.float32)
            item["meta"] = np.asarray(meta, np.float32)[None]
        out.append(item)
    return out


def _labels(logits: np.ndarray, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Activated outputs and class indices (0 background) of ``(B, K, *sp)`` logits."""
    activation = config.model.final_activation
    probs = activate(torch.from_numpy(np.asarray(logits, np.float32)), activation).numpy()
    if activation == "softmax":
        return probs, probs.argmax(axis=1)
    best = probs.argmax(axis=1)
    peak = np.take_along_axis(probs, best[:, None], axis=1)[:, 0]
    return probs, np.where(peak >= config.inference.threshold, best + 1, 0)


def compare_outputs(reference: Sequence[np.ndarray], other: Sequence[np.ndarray], *,
                    config: Config) -> dict:
    """How far ``other`` logits stray from ``reference`` ones (see the module docstring).

    Returns
    -------
    dict
        ``agreement`` (fraction of pixels with the same class), ``dice`` (mean
        over classes), ``per_class`` Dice, ``mean_abs_diff`` and
        ``max_abs_diff`` of the activated outputs, ``samples``.
    """
    if len(reference) != len(other) or not reference:
        raise InvalidArgumentError("compare_outputs: as many outputs on both sides, at least 1")
    names = list(config.data.classes)
    inter, sizes = np.zeros(len(names)), np.zeros(len(names))
    same = total = 0
    abs_sum, abs_max, count = 0.0, 0.0, 0
    for ref, oth in zip(reference, other, strict=True):
        p_ref, l_ref = _labels(ref, config)
        p_oth, l_oth = _labels(oth, config)
        same += int((l_ref == l_oth).sum())
        total += l_ref.size
        diff = np.abs(p_ref - p_oth)
        abs_sum, abs_max, count = abs_sum + float(diff.sum()), max(abs_max, float(diff.max())), \
            count + diff.size
        for k in range(len(names)):
            a, b = l_ref == k + 1, l_oth == k + 1
            inter[k] += np.logical_and(a, b).sum()
            sizes[k] += a.sum() + b.sum()
    per_class = {name: float(2 * inter[k] / sizes[k]) if sizes[k] else 1.0
                 for k, name in enumerate(names)}
    return {"agreement": same / total, "dice": float(np.mean(list(per_class.values()))),
            "per_class": per_class, "mean_abs_diff": abs_sum / count, "max_abs_diff": abs_max,
            "samples": len(reference)}
