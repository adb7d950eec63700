"""Uncertainty from repeated predictions: MC dropout, test-time flips, maps and scores.

A *sample* is one activated prediction ``(K, *spatial)`` of the same image:
a forward pass with dropout left on (Monte-Carlo dropout, Gal & Ghahramani
2016) or a pass on a flipped copy flipped back (test-time augmentation,
Wang et al. 2019). Stacked samples ``(N, K, *spatial)`` give

* voxel-wise maps (:func:`uncertainty_maps`): ``entropy`` of the mean
  prediction, normalised to [0, 1] (divided by ``log K`` for softmax, by
  ``log 2`` per class for sigmoid / normrelu outputs, averaged over the
  classes), and ``variance`` across the samples (averaged over the classes);
* per-image scores (:func:`uncertainty_scores`), what active learning ranks
  images by: ``mean_entropy`` (the entropy map's mean), ``volume_cv`` (the
  coefficient of variation of the foreground volume across the samples, 0
  when no sample has foreground) and ``inter_sample_dice`` (the mean Dice of
  every pair of sample masks; two empty masks agree perfectly).

Sample masks are foreground against background: softmax samples by their
argmax (any class but the first), sigmoid / normrelu samples where any class
reaches ``threshold``.

Examples
--------
>>> import numpy as np
>>> clear = np.array([[[0.0, 1.0]], [[1.0, 0.0]]])  # (K=2, 1, 2): sure background, sure fg
>>> samples = np.stack([clear, clear])              # two identical samples
>>> maps = uncertainty_maps(samples)
>>> maps["entropy"].tolist(), maps["variance"].tolist()
([[0.0, 0.0]], [[0.0, 0.0]])
>>> uncertainty_scores(samples)
{'mean_entropy': 0.0, 'volume_cv': 0.0, 'inter_sample_dice': 1.0}
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from segloop.errors import InvalidArgumentError

__all__ = ["dropout_active", "flip_axes", "mc_dropout", "sample_masks", "tta_samples",
           "uncertainty_maps", "uncertainty_scores"]

_EPS = 1e-7


@contextmanager
def dropout_active(net: nn.Module) -> Iterator[nn.Module]:
    """Put the dropout layers of ``net`` in training mode, every other layer in eval mode.

    Normalisation layers keep their running statistics (eval), so only the
    dropout masks vary between passes. The previous modes are restored on exit.

    Examples
    --------
    >>> net = nn.Sequential(nn.BatchNorm1d(2), nn.Dropout(0.5))
    >>> with dropout_active(net):
    ...     [m.training for m in net]
    [False, True]
    >>> [m.training for m in net]
    [True, True]
    """
    modes = {m: m.training for m in net.modules()}
    net.eval()
    for m in net.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd | nn.AlphaDropout):
            m.train()
    try:
        yield net
    finally:
        for m, mode in modes.items():
            m.train(mode)


def mc_dropout(net: nn.Module, x: torch.Tensor, n: int, *,
               forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
               seed: int = 0) -> torch.Tensor:
    """``n`` forward passes of ``x`` with dropout on: ``(n, B, K, *spatial)``.

    Parameters
    ----------
    net : torch.nn.Module
        The network whose dropout layers are switched on.
    x : torch.Tensor
        ``(B, C, *spatial)`` input.
    n : int
        Number of passes (>= 1).
    forward : callable, optional
        What one pass runs (a sliding-window wrapper of ``net``...); default ``net``.
    seed : int
        Seed of the dropout masks (the global RNG state is left untouched).

    Examples
    --------
    >>> net = nn.Sequential(nn.Dropout(0.5))
    >>> out = mc_dropout(net, torch.ones(1, 1, 8), 3)
    >>> out.shape, bool((out == 0).any() and (out == 2).any())
    (torch.Size([3, 1, 1, 8]), True)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidArgumentError(f"mc: the number of MC-dropout passes must be >= 1, got {n!r}")
    run = net if forward is None else forward
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.no_grad(), dropout_active(net), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return torch.stack([run(x) for _ in range(n)])


def flip_axes(spatial_dims: int) -> list[tuple[int, ...]]:
    """Every subset of the spatial axes of a ``(B, C, *spatial)`` tensor (the identity first).

    Examples
    --------
    >>> flip_axes(2)
    [(), (2,), (3,), (2, 3)]
    """
    axes = range(2, 2 + spatial_dims)
    return [c for r in range(spatial_dims + 1) for c in itertools.combinations(axes, r)]


def tta_samples(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                spatial_dims: int | None = None) -> torch.Tensor:
    """Predictions of every flipped copy of ``x``, flipped back: ``(F, B, K, *spatial)``.

    ``F = 2 ** spatial_dims`` (4 in 2D, 8 in 3D; the first is the unflipped
    pass); their mean is the test-time-augmented prediction.

    Examples
    --------
    >>> x = torch.arange(4.0).view(1, 1, 4)
    >>> tta_samples(lambda t: t.cumsum(-1), x)[:, 0, 0].tolist()
    [[0.0, 1.0, 3.0, 6.0], [6.0, 6.0, 5.0, 3.0]]
    """
    dims = x.ndim - 2 if spatial_dims is None else int(spatial_dims)
    with torch.no_grad():
        return torch.stack([forward(x.flip(a)).flip(a) if a else forward(x)
                            for a in flip_axes(dims)])


def _as_samples(samples) -> np.ndarray:
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    s = np.asarray(samples, dtype=np.float32)
    if s.ndim not in (4, 5) or s.shape[0] < 1 or s.shape[1] < 1:
        raise InvalidArgumentError(f"samples must be (N, K, *spatial) with 2 or 3 spatial axes, "
                                   f"got shape {s.shape}")
    return s


def _check_activation(activation: str) -> bool:
    if activation not in ("softmax", "sigmoid", "normrelu"):
        raise InvalidArgumentError(f"activation must be softmax, sigmoid or normrelu, "
                                   f"got {activation!r}")
    return activation == "softmax"


def uncertainty_maps(samples, *, activation: str = "softmax") -> dict[str, np.ndarray]:
    """Voxel-wise ``entropy`` (normalised, of the mean) and ``variance`` (across samples).

    Parameters
    ----------
    samples : array_like or torch.Tensor
        ``(N, K, *spatial)`` activated predictions.
    activation : {"softmax", "sigmoid", "normrelu"}
        How the K channels relate: a distribution (softmax) or independent
        probabilities.

    Returns
    -------
    dict
        ``{"entropy": (*spatial), "variance": (*spatial)}`` float32 arrays,
        entropy in [0, 1].
    """
    s = _as_samples(samples)
    softmax = _check_activation(activation)
    mean = np.clip(s.mean(axis=0), 0.0, 1.0)
    if softmax and mean.shape[0] > 1:
        entropy = -(mean * np.log(mean + _EPS)).sum(axis=0) / np.log(mean.shape[0])
    else:
        q = 1.0 - mean
        entropy = (-(mean * np.log(mean + _EPS) + q * np.log(q + _EPS)) / np.log(2.0)).mean(0)
    variance = s.var(axis=0).mean(axis=0)
    return {"entropy": np.clip(entropy, 0.0, 1.0).astype(np.float32),
            "variance": variance.astype(np.float32)}


def sample_masks(samples, *, threshold: float = 0.5, activation: str = "softmax") -> np.ndarray:
    """Foreground mask of each sample: ``(N, *spatial)`` booleans.

    Examples
    --------
    >>> s = np.array([[[[0.7, 0.2]], [[0.3, 0.8]]]])  # one softmax sample, K=2
    >>> sample_masks(s).tolist()
    [[[False, True]]]
    """
    s = _as_samples(samples)
    if _check_activation(activation):
        return s.argmax(axis=1) > 0 if s.shape[1] > 1 else s[:, 0] >= threshold
    return (s >= threshold).any(axis=1)


def _pairwise_dice(masks: np.ndarray) -> float:
    flat = masks.reshape(masks.shape[0], -1).astype(np.float64)
    if flat.shape[0] < 2:
        return 1.0
    sizes = flat.sum(axis=1)
    inter = flat @ flat.T
    values = []
    for i, j in itertools.combinations(range(flat.shape[0]), 2):
        total = sizes[i] + sizes[j]
        values.append(1.0 if total == 0 else 2.0 * inter[i, j] / total)
    return float(np.mean(values))


def uncertainty_scores(samples, threshold: float = 0.5, *,
                       activation: str = "softmax") -> dict[str, float]:
    """Per-image scores: ``mean_entropy``, ``volume_cv`` and ``inter_sample_dice``.

    Parameters
    ----------
    samples : array_like or torch.Tensor
        ``(N, K, *spatial)`` activated predictions.
    threshold : float
        Foreground threshold of sigmoid / normrelu samples.
    activation : {"softmax", "sigmoid", "normrelu"}

    Returns
    -------
    dict
        Higher ``mean_entropy`` / ``volume_cv`` and lower
        ``inter_sample_dice`` mean a less certain prediction.

    Examples
    --------
    >>> a = np.zeros((1, 1, 4)); b = a.copy(); b[0, 0, :2] = 1  # sigmoid, K=1
    >>> s = uncertainty_scores(np.stack([b, b, a + 1]), activation="sigmoid")
    >>> round(s["volume_cv"], 4), round(s["inter_sample_dice"], 4)
    (0.3536, 0.7778)
    """
    s = _as_samples(samples)
    masks = sample_masks(s, threshold=threshold, activation=activation)
    volumes = masks.reshape(masks.shape[0], -1).sum(axis=1).astype(np.float64)
    mean_volume = volumes.mean()
    cv = float(volumes.std() / mean_volume) if mean_volume > 0 else 0.0
    entropy = uncertainty_maps(s, activation=activation)["entropy"]
    return {"mean_entropy": float(entropy.mean()), "volume_cv": cv,
            "inter_sample_dice": _pairwise_dice(masks)}
