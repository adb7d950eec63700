"""Training samples from in-memory volumes, as a torch data loader.

:func:`make_loader` draws random samples: a volume (2D
models on volumes: a slice along the volume's ``slice_axis``, volumes weighted
by their slice count), a centre, and a crop of the patch size around it
(numpy slicing, padded with zeros where the volume is smaller). A fraction
``data.foreground_ratio`` of the samples is centred on a foreground voxel, of a
class drawn uniformly among the foreground classes present (class-balanced),
the rest anywhere. Then the augmentation of :mod:`segloop.learn.transforms`.
Sample ``k`` draws everything from ``numpy.random.default_rng([seed, k])``, so a
loader gives the same batches for a seed whatever ``num_workers``; each pass
over the loader is a new epoch (indices continue), and
``loader.sampler.set_epoch(e)`` jumps to epoch ``e`` (for an exact resume).

The patch size is ``data.patch_size``, else the whole (largest) slice for 2D
models and 96³ clipped to the largest volume for 3D; it is rounded up to a
multiple of the network's total stride (``2 ** (levels - 1)``) so that every
U-Net level divides it.

Validation and test cases are not loaded here: they are predicted whole by
:mod:`segloop.learn.scoring` (sliding window for 3D), as inference does.

Examples
--------
>>> import numpy as np
>>> from segloop.learn.config import load_config
>>> from segloop.learn.data import Volume
>>> cfg = load_config({"data": {"path": "x", "patch_size": [16, 16]},
...                    "model": {"channels": [4, 8]}, "training": {"batch_size": 2,
...                    "iterations_per_epoch": 3}})
>>> lab = np.zeros((20, 20), np.uint8); lab[5:9, 5:9] = 1
>>> vol = Volume("a", "a", np.zeros((1, 20, 20), np.float32), lab, (1.0, 1.0), "a.png")
>>> loader = make_loader(cfg, [vol], seed=0)
>>> len(loader), {k: tuple(v.shape) for k, v in next(iter(loader)).items()}
(3, {'image': (2, 1, 16, 16), 'label': (2, 1, 16, 16)})
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from segloop.errors import InvalidArgumentError
from segloop.learn.config import Config
from segloop.learn.data import Volume
from segloop.learn.transforms import build_augmentation

__all__ = ["TrainSamples", "crop_padded", "make_loader", "patch_shape",
           "samples_per_epoch", "size_multiple"]

_MAX_INDEX = 100_000  # foreground voxel positions kept per (volume, class)
_DEFAULT_3D = 96


def size_multiple(config: Config) -> int:
    """Total stride of the U-Net: spatial sizes must be multiples of it."""
    strides = config.model.strides or [2] * (len(config.model.channels) - 1)
    return int(np.prod(strides))


def _round_up(n: int, m: int) -> int:
    return int(math.ceil(n / m) * m)


def _spatial(vol: Volume, dims: int) -> tuple[int, ...]:
    """Shape of one sample region: a slice (2D models on volumes) or the volume."""
    shape = vol.image.shape[1:]
    if dims == 2 and len(shape) == 3:
        return tuple(s for a, s in enumerate(shape) if a != (vol.slice_axis or 0))
    return tuple(shape)


def patch_shape(config: Config, volumes: Sequence[Volume]) -> tuple[int, ...]:
    """The training patch of ``config`` for these volumes (see the module docstring)."""
    dims, m = config.data.dims, size_multiple(config)
    largest = np.max([_spatial(v, dims) for v in volumes], axis=0)
    if config.data.patch_size is not None:
        size = config.data.patch_size
    elif dims == 2:
        size = largest
    else:
        size = np.minimum(_DEFAULT_3D, largest)
    return tuple(_round_up(int(s), m) for s in size)


def crop_padded(array: np.ndarray, lo: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """``array[..., lo:lo + size]`` over the trailing axes, zero-padded outside.

    ``lo`` may be negative and ``lo + size`` beyond the array (padding).

    Examples
    --------
    >>> crop_padded(np.arange(1, 5).reshape(2, 2), [-1, 1], [3, 2]).tolist()
    [[0, 0], [2, 0], [4, 0]]
    """
    lead = array.ndim - len(size)
    out = np.zeros(array.shape[:lead] + tuple(size), dtype=array.dtype)
    src, dst = [slice(None)] * lead, [slice(None)] * lead
    for start, n, total in zip(lo, size, array.shape[lead:], strict=True):
        a, b = max(start, 0), min(start + n, total)
        src.append(slice(a, max(a, b)))
        dst.append(slice(a - start, a - start + max(0, b - a)))
    out[tuple(dst)] = array[tuple(src)]
    return out


def _n_slices(vol: Volume, dims: int) -> int:
    shape = vol.image.shape[1:]
    return shape[vol.slice_axis or 0] if dims == 2 and len(shape) == 3 else 1


def _take_slice(array: np.ndarray, axis: int, index: int, lead: int) -> np.ndarray:
    return np.take(array, index, axis=lead + axis)


def _foreground(vol: Volume, n_classes: int, soft: bool) -> list[np.ndarray]:
    """Flat voxel indices of each foreground class (at most ``_MAX_INDEX``)."""
    out = []
    for k in range(1, n_classes + 1):
        if vol.label is None:
            idx = np.zeros(0, np.int64)
        elif soft:
            channel = vol.label[k - 1]
            idx = np.flatnonzero(channel >= 0.5)
            idx = idx if idx.size else np.flatnonzero(channel > 0)
        else:
            idx = np.flatnonzero(vol.label == k)
        if idx.size > _MAX_INDEX:
            idx = np.sort(np.random.default_rng(0).choice(idx, _MAX_INDEX, replace=False))
        out.append(idx)
    return out


def _label_array(label: np.ndarray | None, soft: bool) -> np.ndarray | None:
    """Labels with a channel axis: ``(1, *sp)`` class indices or ``(K, *sp)`` soft."""
    if label is None:
        return None
    return label if soft else label[None]


class TrainSamples(Dataset):
    """Random training samples; item ``k`` is fully determined by ``(seed, k)``."""

    def __init__(self, config: Config, volumes: Sequence[Volume], *, seed: int, length: int):
        self.volumes = list(volumes)
        self.dims, self.soft = config.data.dims, config.data.soft_labels
        self.ratio = config.data.foreground_ratio
        self.patch = patch_shape(config, self.volumes)
        self.seed, self.length = int(seed), int(length)
        self.augment = build_augmentation(config, seed=seed)
        self.fg = [_foreground(v, config.n_classes, self.soft) for v in self.volumes]
        self.with_class = [[i for i, f in enumerate(self.fg) if f[k].size]
                           for k in range(config.n_classes)]
        self.classes = [k for k, vols in enumerate(self.with_class) if vols]
        weights = np.array([_n_slices(v, self.dims) for v in self.volumes], dtype=float)
        self.weights = weights / weights.sum()

    def __len__(self) -> int:
        return self.length

    def _centre(self, rng: np.random.Generator) -> tuple[int, tuple[int, ...], bool]:
        if self.classes and rng.random() < self.ratio:
            k = self.classes[rng.integers(len(self.classes))]
            v = self.with_class[k][rng.integers(len(self.with_class[k]))]
            flat = self.fg[v][k][rng.integers(self.fg[v][k].size)]
            return v, tuple(int(i) for i in np.unravel_index(flat, self.volumes[v].image.shape[
                1:])), True
        v = int(rng.choice(len(self.volumes), p=self.weights))
        return v, tuple(int(rng.integers(n)) for n in self.volumes[v].image.shape[1:]), False

    def draw(self, k: int) -> dict:
        """Sample ``k`` before augmentation, plus ``"foreground"`` (whether centred on one)."""
        return self._region(np.random.default_rng([self.seed, int(k)]))

    def _region(self, rng: np.random.Generator) -> dict:
        v, centre, fg = self._centre(rng)
        vol = self.volumes[v]
        image, label = vol.image, _label_array(vol.label, self.soft)
        if self.dims == 2 and image.ndim == 4:
            axis = vol.slice_axis or 0
            image = _take_slice(image, axis, centre[axis], 1)
            label = None if label is None else _take_slice(label, axis, centre[axis], 1)
            centre = tuple(c for a, c in enumerate(centre) if a != axis)
        lo = []
        for c, n, total in zip(centre, self.patch, image.shape[1:], strict=True):
            lo.append(min(max(c - n // 2, 0), total - n) if total >= n else -((n - total) // 2))
        out = {"image": crop_padded(image, lo, self.patch), "foreground": fg}
        if label is not None:
            out["label"] = crop_padded(label, lo, self.patch)
        if getattr(vol, "meta", None) is not None:  # FiLM: the case's metadata vector
            out["meta"] = np.asarray(vol.meta, dtype=np.float32)
        return out

    def __getitem__(self, k: int) -> dict:
        rng = np.random.default_rng([self.seed, int(k)])
        sample = self._region(rng)
        sample.pop("foreground")
        return self.augment(sample, rng=rng)


class _EpochSampler(Sampler):
    """Indices ``epoch * n .. epoch * n + n - 1``; each pass is the next epoch."""

    def __init__(self, length: int):
        self.length, self.epoch = int(length), 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass draw the samples of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        start = self.epoch * self.length
        self.epoch += 1
        return iter(range(start, start + self.length))


def _init_worker(worker_id: int) -> None:
    torch.set_num_threads(1)


def samples_per_epoch(config: Config, volumes: Sequence[Volume]) -> int:
    """``iterations_per_epoch * batch_size``, else one per slice (2D) / patch position (3D)."""
    t = config.training
    if t.iterations_per_epoch is not None:
        return t.iterations_per_epoch * t.batch_size
    if config.data.dims == 2:
        return int(sum(_n_slices(v, 2) for v in volumes))
    patch = patch_shape(config, volumes)
    return int(sum(np.prod([math.ceil(n / p) for n, p in zip(v.image.shape[1:], patch,
                                                              strict=True)]) for v in volumes))


def make_loader(config: Config, volumes: Sequence[Volume], *, seed: int) -> DataLoader:
    """A loader of random training samples (see the module docstring).

    Parameters
    ----------
    config : Config
        ``data.*`` (patch size, foreground ratio, soft labels), ``augmentation.*``
        and ``training.*`` (batch size, iterations per epoch, loader workers).
    volumes : sequence of Volume
        The training volumes (:func:`segloop.learn.data.prepare_data`).
    seed : int
        Sample ``k`` is drawn from ``(seed, k)`` whatever the workers.

    Returns
    -------
    torch.utils.data.DataLoader
        ``len(loader)`` batches per pass, each pass the next epoch
        (``loader.sampler.set_epoch(e)`` jumps to epoch ``e``). Batches are
        dicts: ``"image"`` ``float32 (B, C, *patch)``, ``"label"`` ``int64
        (B, 1, *patch)`` or, with ``data.soft_labels``, ``float32 (B, K, *patch)``,
        and ``"meta"`` ``float32 (B, D)`` when the volumes carry metadata
        vectors (:attr:`segloop.learn.data.Volume.meta`, FiLM models; the
        network hides fields at random: ``model.film.drop``).

    Raises
    ------
    segloop.errors.InvalidArgumentError
        No volumes.
    """
    if not volumes:
        raise InvalidArgumentError("no volumes to load (an empty split?)")
    workers = config.training.num_workers
    extra = {"worker_init_fn": _init_worker, "persistent_workers": True} if workers else {}
    n = samples_per_epoch(config, volumes)
    data = TrainSamples(config, volumes, seed=seed, length=n)
    return DataLoader(data, batch_size=config.training.batch_size, sampler=_EpochSampler(n),
                      num_workers=workers, **extra)
