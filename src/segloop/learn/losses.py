"""Training losses: MONAI's overlap losses and SoftSeg's regression losses.

:func:`build_loss` turns ``cfg.loss`` into a callable ``loss(logits, target)``
taking the network's **raw** outputs ``(B, K, *spatial)`` and the loader's
target, either class indices ``(B, 1, *spatial)`` (int64) or soft labels
``(B, n_classes, *spatial)`` (float in [0, 1]). The target is turned once into
a dense map matching the outputs (:func:`dense_target`):

* ``softmax`` models (``K = n_classes + 1``): one-hot over background and
  classes; a soft label ``q`` (one class) becomes ``[1 - q, q]``;
* ``sigmoid`` / ``normrelu`` models (``K = n_classes``): one channel per
  class, no background channel (one-hot minus background); soft labels as
  they are. Soft labels are never binarised.

Losses (``cfg.loss.name``):

``dice``, ``generalized_dice``, ``tversky``
    MONAI's, with ``softmax=True`` / ``sigmoid=True`` (``normrelu``: on the
    activated outputs), ``soft_label=True`` for soft labels. ``include_background``
    only matters for softmax models (the others have no background channel).
``dice_ce``
    Dice plus cross-entropy: softmax cross-entropy for softmax models, binary
    cross-entropy per channel for sigmoid models. (MONAI's ``DiceCELoss``
    applies softmax cross-entropy to multi-channel sigmoid outputs, so the
    sum is composed here from MONAI's ``DiceLoss``.)
``focal``
    MONAI's ``FocalLoss`` (``gamma = cfg.loss.focal_gamma``), over all
    channels: dropping the background before a softmax would leave a
    constant for a single class.
``adaptive_wing``, ``mse`` (SoftSeg, Gros et al. 2021)
    Regressions on the **activated** outputs (normalized ReLU, sigmoid or
    softmax) against the dense target: :func:`adaptive_wing_loss` (Wang et
    al. 2019) or the mean squared error.

Examples
--------
>>> import torch
>>> from segloop.learn.config import load_config
>>> cfg = load_config({"data": {"path": "x"}, "loss": {"name": "dice"}})
>>> loss = build_loss(cfg)
>>> target = torch.zeros(1, 1, 4, 4, dtype=torch.int64); target[..., :2, :] = 1
>>> perfect = torch.cat([1 - target, target], 1).float() * 20 - 10   # confident logits
>>> round(float(loss(perfect, target)), 3), round(float(loss(-perfect, target)), 3)
(0.0, 1.0)

References
----------
X. Wang, L. Bo, L. Fuxin, "Adaptive Wing Loss for Robust Face Alignment via
Heatmap Regression", ICCV 2019.
C. Gros et al., "SoftSeg: Advantages of soft versus binary training for
image segmentation", Medical Image Analysis 71, 2021.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss, FocalLoss, GeneralizedDiceLoss, TverskyLoss

from segloop.learn.config import Config
from segloop.learn.networks import activate, normalized_relu, out_channels

__all__ = ["LOSSES", "adaptive_wing_loss", "build_loss", "dense_target"]

#: Loss names of ``cfg.loss.name``.
LOSSES = ("dice", "dice_ce", "focal", "generalized_dice", "tversky", "adaptive_wing", "mse")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def dense_target(target: torch.Tensor, *, n_out: int, activation: str) -> torch.Tensor:
    """The target as a float map with the model's ``n_out`` output channels.

    Parameters
    ----------
    target : Tensor
        Class indices ``(B, 1, *sp)`` (integer) or soft labels ``(B, n_classes, *sp)`` (float).
    n_out : int
        Output channels of the model.
    activation : str
        ``softmax`` (background channel first) or ``sigmoid`` / ``normrelu``.

    Examples
    --------
    >>> t = torch.tensor([[[0, 1, 2]]])                       # (B=1, 1, 3)
    >>> dense_target(t, n_out=3, activation="softmax")[0].tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    >>> dense_target(t, n_out=2, activation="sigmoid")[0].tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    >>> dense_target(torch.tensor([[[0.25, 1.0]]]), n_out=2, activation="softmax")[0].tolist()
    [[0.75, 0.0], [0.25, 1.0]]
    """
    background = activation == "softmax"
    if torch.is_floating_point(target):
        soft = target.clamp(0.0, 1.0)
        if background:
            soft = torch.cat([(1.0 - soft.sum(dim=1, keepdim=True)).clamp_min(0.0), soft], dim=1)
        if soft.shape[1] != n_out:
            raise ValueError(f"soft target with {target.shape[1]} channels for a model with "
                             f"{n_out} outputs ({activation})")
        return soft
    n_classes = n_out if not background else n_out - 1
    index = target[:, 0].long()
    onehot = F.one_hot(index.clamp(0, n_classes), n_classes + 1)  # (B, *sp, n_classes + 1)
    onehot = onehot.movedim(-1, 1).to(torch.float32)
    return onehot if background else onehot[:, 1:]


def adaptive_wing_loss(pred: torch.Tensor, target: torch.Tensor, *, alpha: float = 2.1,
                       omega: float = 14.0, epsilon: float = 1.0, theta: float = 0.5,
                       weight: float = 10.0) -> torch.Tensor:
    """Adaptive wing loss (Wang et al. 2019) between activated outputs and soft targets.

    With ``d = |target - pred|`` and ``p = alpha - target``::

        AWing = omega * ln(1 + (d / epsilon) ** p)      if d < theta
                A * d - C                               otherwise
        A = omega / (1 + (theta / epsilon) ** p) * p * (theta / epsilon) ** (p - 1) / epsilon
        C = theta * A - omega * ln(1 + (theta / epsilon) ** p)

    so the loss is continuous and smooth at ``theta``; near the foreground
    (``target`` 1) it behaves like L1 for small errors, near the background
    like L2, which keeps small errors on foreground costly. The loss map is
    weighted by ``1 + weight * M`` where ``M`` is the target above 0.2
    dilated by one voxel (the paper's weighted loss map), then averaged.

    Parameters
    ----------
    pred, target : Tensor
        Same shape ``(B, K, *spatial)``, values in [0, 1].
    alpha, omega, epsilon, theta, weight : float
        The paper's hyper-parameters (defaults as published).

    Returns
    -------
    Tensor
        A scalar.

    Examples
    --------
    >>> t = torch.tensor([[[[0.0, 0.5, 1.0]]]])
    >>> float(adaptive_wing_loss(t, t))
    0.0
    >>> far = adaptive_wing_loss(1 - t, t); near = adaptive_wing_loss((t + 0.1).clamp(0, 1), t)
    >>> bool(far > near > 0)
    True
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    target = target.to(pred.dtype)
    diff = (target - pred).abs()
    power = alpha - target
    ratio = theta / epsilon
    a = omega / (1 + ratio ** power) * power * ratio ** (power - 1) / epsilon
    c = theta * a - omega * torch.log1p(ratio ** power)
    small = omega * torch.log1p((diff / epsilon) ** power)
    loss = torch.where(diff < theta, small, a * diff - c)
    if weight:
        spatial = target.ndim - 2
        pool = F.max_pool2d if spatial == 2 else F.max_pool3d if spatial == 3 else None
        mask = (target > 0.2).to(pred.dtype)
        if pool is not None:
            mask = pool(mask, kernel_size=3, stride=1, padding=1)
        loss = loss * (1 + weight * mask)
    return loss.mean()


def _overlap_loss(cfg: Config, activation: str) -> torch.nn.Module:
    soft = cfg.data.soft_labels
    kind = {"softmax": {"softmax": True}, "sigmoid": {"sigmoid": True}}.get(activation, {})
    # sigmoid/normrelu outputs have no background channel: every channel is a class
    include = cfg.loss.include_background if activation == "softmax" else True
    common = {"include_background": include, "soft_label": soft, **kind}
    name = cfg.loss.name
    if name == "generalized_dice":
        return GeneralizedDiceLoss(**common)
    if name == "tversky":
        return TverskyLoss(alpha=cfg.loss.tversky_alpha, beta=cfg.loss.tversky_beta, **common)
    return DiceLoss(**common)


def build_loss(cfg: Config) -> LossFn:
    """The loss of ``cfg.loss`` for the model of ``cfg.model``: ``loss(logits, target)``.

    With ``loss.binarize`` (soft labels), the targets are thresholded at that
    value first: the conventional hard training SoftSeg is compared with.

    Parameters
    ----------
    cfg : Config
        Reads ``loss.*``, ``model.final_activation``, ``data.classes`` and ``data.soft_labels``.

    Returns
    -------
    callable
        ``(logits (B, K, *sp), target) -> scalar Tensor``; ``target`` is class
        indices ``(B, 1, *sp)`` or soft labels ``(B, n_classes, *sp)``.
    """
    loss = _build_loss(cfg)
    threshold = cfg.loss.binarize
    if threshold is None:
        return loss

    def on_binarized(logits, target):
        if torch.is_floating_point(target):
            target = (target >= threshold).to(target.dtype)
        return loss(logits, target)

    return on_binarized


def _build_loss(cfg: Config) -> LossFn:
    name, activation = cfg.loss.name, cfg.model.final_activation
    n_out = out_channels(cfg)

    def dense(target: torch.Tensor) -> torch.Tensor:
        return dense_target(target, n_out=n_out, activation=activation)

    if name in ("adaptive_wing", "mse"):
        regress = adaptive_wing_loss if name == "adaptive_wing" else F.mse_loss
        drop_bg = activation == "softmax" and not cfg.loss.include_background

        def regression(logits, target):
            pred, goal = activate(logits, activation), dense(target)
            if drop_bg:
                pred, goal = pred[:, 1:], goal[:, 1:]
            return regress(pred, goal)

        return regression

    if name == "focal":
        if activation == "normrelu":  # not reached through a validated config
            raise ValueError("focal loss needs logits of a softmax or sigmoid model")
        focal = FocalLoss(include_background=True, gamma=cfg.loss.focal_gamma,
                          use_softmax=activation == "softmax")
        return lambda logits, target: focal(logits, dense(target))

    overlap = _overlap_loss(cfg, activation)
    if activation == "normrelu":  # MONAI's losses take the activated outputs as they are
        def on_outputs(logits, target):
            return overlap(normalized_relu(logits), dense(target))

        return on_outputs
    if name != "dice_ce":
        return lambda logits, target: overlap(logits, dense(target))

    def dice_ce(logits, target):
        goal = dense(target)
        if activation == "softmax":
            if torch.is_floating_point(target):
                ce = F.cross_entropy(logits, goal)
            else:
                ce = F.cross_entropy(logits, target[:, 0].long())
        else:
            ce = F.binary_cross_entropy_with_logits(logits, goal)
        return overlap(logits, goal) + ce

    return dice_ce
