"""Random augmentation of training samples: labels follow every geometric change.

:func:`build_augmentation` turns ``cfg.augmentation`` into an
:class:`Augmentation`, a callable on dictionaries ``{"image": (C, *sp),
"label": (1, *sp) class indices or (K, *sp) soft labels}`` (numpy arrays or
torch tensors; torch tensors come back). In order, each with its probability:

* flips along each spatial axis (``flip``);
* rotation and isotropic scaling about the centre (``rotate_degrees`` about each
  axis, zoom in ``[1 - scale, 1 + scale]``; ``affine_prob``), reflection at the
  border;
* elastic deformation (``elastic_prob``; MONAI's ``Rand2DElasticd`` /
  ``Rand3DElasticd``);
* gamma (``gamma_prob``; ``x ** g`` with ``g`` in ``[1 - gamma, 1 + gamma]`` on the
  channel's range, as MONAI's ``RandAdjustContrast``);
* Gaussian noise of a standard deviation drawn in ``[0, noise_std]`` (``noise_prob``);
* a smooth multiplicative bias field (``bias_field_prob``; MONAI's ``RandBiasFieldd``);
* contrast: intensities scaled by ``[0.75, 1.25]`` about the mean, clipped to the
  channel's range (``contrast_prob``).

Class-index labels are resampled nearest-neighbour, so they keep their values;
soft labels linearly, then clipped to [0, 1] (never binarised). Flips and the
affine run as a few torch operations (a 256² sample takes well under a
millisecond, where MONAI's ``RandAffined`` takes about 10 ms); the rarely used
elastic and bias-field steps are MONAI's. Following TorchIO, parameters are
drawn from a numpy ``Generator`` and then applied deterministically: pass
``rng=`` for reproducible samples (the loaders seed one per sample).

Examples
--------
>>> import numpy as np
>>> from segloop.learn.config import load_config
>>> cfg = load_config({"data": {"path": "x"}, "augmentation": {"affine_prob": 1.0}})
>>> aug = build_augmentation(cfg)
>>> label = np.zeros((1, 32, 32), np.uint8); label[0, 8:24, 8:24] = 1
>>> out = aug({"image": np.random.rand(1, 32, 32), "label": label},
...           rng=np.random.default_rng(0))
>>> out["image"].dtype, out["label"].dtype, sorted(out["label"].unique().tolist())
(torch.float32, torch.int64, [0, 1])
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from segloop.learn.config import Config

__all__ = ["Augmentation", "affine_matrix", "build_augmentation"]


def affine_matrix(angles, zoom: float, ndim: int) -> np.ndarray:
    """Rotation by ``angles`` (radians: 1 in 2D, 3 about z, y, x in 3D) times ``zoom``.

    Acts on array coordinates ``(y, x)`` / ``(z, y, x)`` relative to the centre;
    the output voxel at ``p`` takes the input at ``M @ p``.
    """
    if ndim == 2:
        (a,) = angles
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    else:
        rot = np.eye(3)
        for axis, a in enumerate(angles):  # about array axis ``axis``: rotate the other two
            i, j = [k for k in range(3) if k != axis]
            r = np.eye(3)
            r[i, i] = r[j, j] = math.cos(a)
            r[i, j], r[j, i] = -math.sin(a), math.sin(a)
            rot = rot @ r
    return rot * zoom


@functools.lru_cache(maxsize=8)
def _base_grid(shape: tuple[int, ...]) -> torch.Tensor:
    """Homogeneous normalised coordinates ``(*shape, nd + 1)``, x first (torch's order)."""
    axes = [(torch.arange(n, dtype=torch.float32) * 2 + 1) / n - 1 for n in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([*mesh[::-1], torch.ones(shape)], dim=-1)


def _affine(tensors: list[tuple[torch.Tensor, str]], matrix: np.ndarray) -> list[torch.Tensor]:
    """Resample ``(C, *sp)`` tensors with ``matrix`` about the centre (torch grid_sample)."""
    shape = tuple(tensors[0][0].shape[1:])
    nd = len(shape)
    size = np.asarray(shape, dtype=float)
    # torch's normalised coordinates (x, y[, z]) in [-1, 1]: index = (u + 1) * n / 2 - 0.5
    theta_arr = np.diag(2.0 / size) @ matrix @ np.diag(size / 2.0)
    theta = np.zeros((nd, nd + 1))
    theta[:, :nd] = theta_arr[::-1, ::-1]  # array order -> torch's x-first order
    grid = (_base_grid(shape) @ torch.as_tensor(theta.T, dtype=torch.float32))[None]
    return [F.grid_sample(t[None], grid, mode=mode, padding_mode="reflection",
                          align_corners=False)[0] for t, mode in tensors]


class Augmentation:
    """The configured random transforms (see the module docstring).

    Parameters
    ----------
    config : Config
    seed : int
        Seed of the generator used when a call passes no ``rng``.
    """

    def __init__(self, config: Config, *, seed: int = 0):
        self.cfg = config.augmentation
        self.dims = config.data.dims
        self.soft = config.data.soft_labels
        self._rng = np.random.default_rng(seed)
        self._monai: dict[str, object] = {}

    def _monai_transform(self, name: str, shape):
        from monai import transforms as mt

        key = (name, tuple(shape))
        if key not in self._monai:
            modes = ("bilinear", "bilinear" if self.soft else "nearest")
            if name == "bias":
                t = mt.RandBiasFieldd(["image"], prob=1.0)
            elif self.dims == 2:
                t = mt.Rand2DElasticd(["image", "label"], spacing=tuple(max(4, s // 6)
                                                                        for s in shape),
                                      magnitude_range=(1.0, 2.0), prob=1.0, mode=modes,
                                      allow_missing_keys=True)
            else:
                t = mt.Rand3DElasticd(["image", "label"], sigma_range=(5.0, 8.0),
                                      magnitude_range=(50.0, 150.0), prob=1.0, mode=modes,
                                      allow_missing_keys=True)
            self._monai[key] = t
        return self._monai[key]

    def _run_monai(self, name: str, sample: dict, rng: np.random.Generator) -> dict:
        t = self._monai_transform(name, sample["image"].shape[1:])
        t.set_random_state(seed=int(rng.integers(2**31 - 1)))
        out = t(dict(sample))
        return {k: (v.as_tensor() if hasattr(v, "as_tensor") else v) for k, v in out.items()}

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        """Augment ``sample`` (a new dict; other keys are passed through)."""
        rng = self._rng if rng is None else rng
        out = dict(sample)
        image = torch.as_tensor(np.asarray(sample["image"]) if not torch.is_tensor(
            sample["image"]) else sample["image"], dtype=torch.float32)
        label = sample.get("label")
        if label is not None:
            label = torch.as_tensor(np.asarray(label) if not torch.is_tensor(label) else label)
            label = label.float() if self.soft else label.long()
        c, nd = self.cfg, image.ndim - 1
        if c.enabled:
            image, label = self._geometric(image, label, rng, nd)
            image = self._intensity(image, rng)
        out["image"] = image.contiguous()
        if label is not None:
            out["label"] = (label.clamp(0, 1).float() if self.soft
                            else torch.round(label).long()).contiguous()
        return out

    def _geometric(self, image, label, rng, nd):
        c = self.cfg
        flips = [ax + 1 for ax in range(nd) if rng.random() < c.flip]
        if flips:
            image = torch.flip(image, flips)
            label = None if label is None else torch.flip(label, flips)
        if rng.random() < c.affine_prob and (c.rotate_degrees > 0 or c.scale > 0):
            r = math.radians(c.rotate_degrees)
            angles = rng.uniform(-r, r, size=1 if nd == 2 else 3)
            zoom = rng.uniform(1 - c.scale, 1 + c.scale)
            pairs = [(image, "bilinear")]
            if label is not None:
                pairs.append((label.float(), "bilinear" if self.soft else "nearest"))
            moved = _affine(pairs, affine_matrix(angles, zoom, nd))
            image = moved[0]
            label = None if label is None else moved[1]
        if rng.random() < c.elastic_prob:
            sample = {"image": image} | ({"label": label.float()} if label is not None else {})
            moved = self._run_monai("elastic", sample, rng)
            image, label = moved["image"], moved.get("label")
        return image, label

    def _intensity(self, image: torch.Tensor, rng) -> torch.Tensor:
        c = self.cfg
        flat = image.flatten(1)
        if rng.random() < c.gamma_prob and c.gamma > 0:
            g = float(rng.uniform(1 - c.gamma, 1 + c.gamma))
            lo, hi = flat.amin(1), flat.amax(1)
            shape = (-1, *([1] * (image.ndim - 1)))
            span = (hi - lo).clamp_min(1e-7).view(shape)
            image = ((image - lo.view(shape)) / span).clamp(0, 1).pow(g) * span + lo.view(shape)
        if rng.random() < c.noise_prob and c.noise_std > 0:
            std = float(rng.uniform(0, c.noise_std))
            noise = rng.standard_normal(tuple(image.shape), dtype=np.float32)
            image = image + std * torch.from_numpy(noise)
        if rng.random() < c.bias_field_prob:
            image = self._run_monai("bias", {"image": image}, rng)["image"].float()
        if rng.random() < c.contrast_prob:
            factor = float(rng.uniform(0.75, 1.25))
            flat = image.flatten(1)
            shape = (-1, *([1] * (image.ndim - 1)))
            lo, hi, mean = (flat.amin(1).view(shape), flat.amax(1).view(shape),
                            flat.mean(1).view(shape))
            image = torch.minimum(torch.maximum((image - mean) * factor + mean, lo), hi)
        return image


def build_augmentation(config: Config, *, seed: int = 0) -> Augmentation:
    """The augmentation of ``config`` (values only converted when ``enabled`` is false)."""
    return Augmentation(config, seed=seed)
