"""A minimal plain PyTorch/MONAI training loop: the throughput reference of ``bench train``.

What one writes by hand without segloop: the preloaded arrays in a bare
``torch.utils.data.Dataset`` that cuts random patches (a random slice of a
volume for a 2D model, a random corner, zeros where the array is smaller than
the patch), a stock ``DataLoader``, and forward / loss / backward / step on a
MONAI network. No augmentation, no foreground oversampling, no learning-rate
schedule, no validation, no checkpoints, no logging: whatever segloop's
:func:`segloop.learn.train.train` spends beyond this loop is its overhead. The
crop itself is segloop's numpy slice (:func:`segloop.learn.sampling.crop_padded`,
not its sampler), so that both loops pay the same for it.

Examples
--------
>>> import numpy as np, torch
>>> from monai.networks.nets import UNet
>>> net = UNet(2, 1, 2, channels=(4, 8), strides=(2,), num_res_units=0)
>>> image = np.random.default_rng(0).random((1, 24, 24), dtype=np.float32)
>>> label = (image[0] > 0.5).astype(np.uint8)
>>> loss = lambda logits, target: torch.nn.functional.cross_entropy(logits, target[:, 0])
>>> run = plain_loop(net, loss, torch.optim.Adam(net.parameters(), 1e-2), [image], [label],
...                  patch=(16, 16), batch_size=2, iterations=3)
>>> run["iterations"], run["samples"], len(run["losses"])
(3, 6, 3)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from segloop.learn.sampling import crop_padded

__all__ = ["PatchSamples", "plain_loop"]


class PatchSamples(Dataset):
    """Random patches of preloaded arrays; item ``k`` is drawn from ``(seed, k)``.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        ``float32 (C, *spatial)`` per case.
    labels : sequence of numpy.ndarray
        Per case: class indices ``(*spatial)`` (integer) or soft labels
        ``(K, *spatial)`` (float).
    patch : tuple of int
        The patch (2 sizes for a 2D model, 3 for a 3D one).
    length : int
        Items per pass.
    slice_axes : sequence of int, optional
        For a 2D patch of a 3D case: the spatial axis it is sliced along (default 0).
    seed : int
    """

    def __init__(self, images, labels, *, patch, length: int, slice_axes=None, seed: int = 0):
        self.images, self.labels = list(images), list(labels)
        self.patch, self.length, self.seed = tuple(int(p) for p in patch), int(length), seed
        self.axes = list(slice_axes) if slice_axes is not None else [0] * len(self.images)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, k: int) -> dict:
        rng = np.random.default_rng([self.seed, int(k)])
        i = int(rng.integers(len(self.images)))
        image, label = self.images[i], self.labels[i]
        label = label if np.issubdtype(label.dtype, np.floating) else label[None]
        if image.ndim - 1 > len(self.patch):  # a 2D patch from a volume: one slice
            axis = 1 + (self.axes[i] or 0)
            s = int(rng.integers(image.shape[axis]))
            image, label = np.take(image, s, axis=axis), np.take(label, s, axis=axis)
        lo = [int(rng.integers(max(n - p, 0) + 1)) if n >= p else -((p - n) // 2)
              for n, p in zip(image.shape[1:], self.patch, strict=True)]
        label = crop_padded(label, lo, self.patch)
        return {"image": torch.from_numpy(crop_padded(image, lo, self.patch)),
                "label": torch.from_numpy(label.astype(np.float32) if np.issubdtype(
                    label.dtype, np.floating) else label.astype(np.int64))}


def plain_loop(model: torch.nn.Module, loss_fn: Callable, optimizer: torch.optim.Optimizer,
               images, labels, *, patch, batch_size: int, iterations: int, slice_axes=None,
               num_workers: int = 0, seed: int = 0, device="cpu") -> dict:
    """Train ``model`` for ``iterations`` steps on random patches; time it.

    Parameters
    ----------
    model : torch.nn.Module
        Maps images ``(B, C, *patch)`` to logits (e.g. MONAI's ``UNet``).
    loss_fn : callable
        ``loss_fn(logits, label_batch) -> scalar``.
    optimizer : torch.optim.Optimizer
        Over ``model``'s parameters.
    images, labels, patch, slice_axes
        See :class:`PatchSamples`.
    batch_size, iterations : int
    num_workers : int
        ``DataLoader`` worker processes.
    seed : int
    device : str or torch.device

    Returns
    -------
    dict
        ``iterations``, ``samples``, ``seconds`` (the loop, loader included),
        ``samples_per_s``, ``loader_seconds`` (waiting for batches) and ``losses``
        (one per step).
    """
    if iterations < 1 or batch_size < 1:
        raise ValueError(f"iterations and batch_size must be positive, got {iterations}, "
                         f"{batch_size}")
    data = PatchSamples(images, labels, patch=patch, length=iterations * batch_size,
                        slice_axes=slice_axes, seed=seed)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    model.train()
    losses, samples, waited = [], 0, 0.0
    start = time.perf_counter()
    batches = iter(loader)
    for _ in range(iterations):
        t = time.perf_counter()
        batch = next(batches)
        waited += time.perf_counter() - t
        image, label = batch["image"].to(device), batch["label"].to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(image), label)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        samples += int(image.shape[0])
    del batches
    seconds = time.perf_counter() - start
    return {"iterations": len(losses), "samples": samples, "seconds": seconds,
            "samples_per_s": samples / seconds if seconds > 0 else 0.0,
            "loader_seconds": waited, "losses": losses}
