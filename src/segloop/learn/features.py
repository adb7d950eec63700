"""Image features from a U-Net's bottleneck, for diversity-aware selection (``coreset``).

The feature of an image is the output of the deepest layer of the MONAI
U-Net (:func:`bottleneck`: the innermost module of the nested
``SkipConnection`` blocks, with ``model.channels[-1]`` channels at the lowest
resolution), averaged over its spatial positions (global average pooling),
then over every slice (a 2D model on a volume) or sliding window (a 3D
model), and L2-normalised. The pass is the ordinary deterministic inference
(:meth:`segloop.learn.inference.ArrayPredictor.infer`, no flips), so the
features see exactly the padding and windows prediction sees; a forward hook
reads the bottleneck and is removed afterwards.

The bottleneck is the most semantic and the smallest representation of the
network (Sener & Savarese 2018 use the last layer before the classifier of a
classification network; for a U-Net the decoder mixes in the skip
connections, so its deepest encoder output is the closest equivalent).

Examples
--------
>>> import numpy as np, torch
>>> from segloop.learn.config import load_config
>>> from segloop.learn.inference import ArrayPredictor
>>> from segloop.learn.networks import build_network
>>> cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]}})
>>> _ = torch.manual_seed(0)
>>> model = ArrayPredictor(build_network(cfg, in_channels=1), cfg, in_channels=1)
>>> type(bottleneck(model.network.backbone)).__name__
'ResidualUnit'
>>> f = encoder_features(model, [np.zeros((1, 16, 16), np.float32),
...                              np.ones((1, 3, 16, 16), np.float32)], slice_axes=[None, 0])
>>> f.shape, np.allclose(np.linalg.norm(f, axis=1), 1.0)
((2, 8), True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.networks.layers import SkipConnection
from torch import nn

from segloop.errors import InvalidArgumentError

__all__ = ["bottleneck", "encoder_features"]


def bottleneck(backbone: nn.Module) -> nn.Module:
    """The deepest layer of a MONAI ``UNet``: the innermost ``SkipConnection``'s submodule.

    MONAI builds ``Sequential(down, SkipConnection(inner), up)`` recursively;
    the innermost block is the bottom layer (``channels[-1]`` outputs).

    Raises
    ------
    InvalidArgumentError
        ``backbone`` is not a U-Net (no ``SkipConnection`` in it).
    """
    node = getattr(backbone, "model", backbone)
    depth = 0
    while True:
        skips = [m for m in node.children() if isinstance(m, SkipConnection)]
        if not skips:
            break
        node, depth = skips[0].submodule, depth + 1
    if depth == 0:
        raise InvalidArgumentError(
            f"coreset needs a U-Net (features of its bottleneck); the network is a "
            f"{type(backbone).__name__} without skip connections")
    return node


def _backbone(network: nn.Module) -> nn.Module:
    return getattr(network, "backbone", network)


class _Pool:
    """Forward hook summing the globally average-pooled outputs ``(B, C)`` of each call."""

    def __init__(self):
        self.total: torch.Tensor | None = None
        self.count = 0

    def __call__(self, module, inputs, output) -> None:
        pooled = output.detach().float().flatten(2).mean(dim=2).sum(dim=0)  # (C,)
        self.total = pooled if self.total is None else self.total + pooled
        self.count += int(output.shape[0])

    def take(self) -> np.ndarray:
        mean = (self.total / max(self.count, 1)).cpu().numpy().astype(np.float64)
        self.total, self.count = None, 0
        return mean


def encoder_features(model, arrays: Sequence[np.ndarray], *,
                     slice_axes: Sequence[int | None] | None = None) -> np.ndarray:
    """L2-normalised bottleneck features ``(n, C)`` of pre-processed ``(C, *spatial)`` arrays.

    Parameters
    ----------
    model : segloop.learn.inference.ArrayPredictor
        A predictor whose ``network.backbone`` is a MONAI U-Net.
    arrays : sequence of ndarray
        Images on the network's grid (``Volume.image``).
    slice_axes : sequence of int or None, optional
        The axis a 2D model slices each volume along (``Volume.slice_axis``);
        default: the config's.

    Returns
    -------
    ndarray
        ``float64 (n, channels[-1])``, each row of norm 1 (a zero feature stays 0).
    """
    axes = [None] * len(arrays) if slice_axes is None else list(slice_axes)
    if len(axes) != len(arrays):
        raise InvalidArgumentError(f"slice_axes: {len(axes)} axes for {len(arrays)} arrays")
    layer = bottleneck(_backbone(model.network))
    pool = _Pool()
    handle = layer.register_forward_hook(pool)
    rows = []
    try:
        for array, axis in zip(arrays, axes, strict=True):
            model.infer(array, tta=False, slice_axis=axis)
            rows.append(pool.take())
    finally:
        handle.remove()
    if not rows:
        return np.zeros((0, 0))
    feats = np.stack(rows)
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    return feats / np.where(norms > 0, norms, 1.0)
