"""Losses: MONAI's overlap losses wired to the model's activation, SoftSeg's regressions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, DiceLoss, FocalLoss

from segloop.learn.config import load_config
from segloop.learn.losses import LOSSES, adaptive_wing_loss, build_loss, dense_target
from segloop.learn.networks import normalized_relu


def _cfg(loss: str, activation: str = "softmax", classes=None, soft=False, **extra):
    raw = {"data": {"path": "x", "soft_labels": soft,
                    "classes": classes or {"foreground": [1]}},
           "model": {"final_activation": activation}, "loss": {"name": loss, **extra}}
    return load_config(raw)


def _target(seed=0, classes=1, shape=(2, 1, 12, 12)):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, classes + 1, shape, generator=g)


def _logits_for(target, n_out, activation, sign=1.0):
    """Confident logits agreeing (sign 1) or disagreeing (-1) with the target."""
    dense = dense_target(target, n_out=n_out, activation=activation)
    return sign * (dense * 20 - 10)


VALID = [(name, act) for name in LOSSES for act in ("softmax", "sigmoid", "normrelu")
         if not (act == "normrelu" and name not in ("adaptive_wing", "mse", "dice"))]


@pytest.mark.parametrize(("name", "activation"), VALID)
def test_every_loss_prefers_the_right_answer_and_has_gradients(name, activation):
    cfg = _cfg(name, activation, classes={"a": [1], "b": [2]})
    loss = build_loss(cfg)
    target = _target(classes=2)
    n_out = 3 if activation == "softmax" else 2
    good = _logits_for(target, n_out, activation)
    bad = _logits_for(target, n_out, activation, sign=-1.0)
    assert float(loss(good, target)) < float(loss(bad, target))
    x = torch.randn(2, n_out, 12, 12, requires_grad=True)
    value = loss(x, target)
    value.backward()
    assert value.ndim == 0 and math.isfinite(float(value.detach()))
    assert float(x.grad.abs().sum()) > 0


def test_dice_ce_softmax_equals_monai_dice_ce_on_hard_labels():
    target = _target(3, classes=2)
    logits = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    ours = build_loss(_cfg("dice_ce", classes={"a": [1], "b": [2]}))(logits, target)
    monai = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)(logits, target)
    assert float(ours) == pytest.approx(float(monai), rel=1e-5)


def test_dice_ce_sigmoid_is_dice_plus_binary_cross_entropy_per_channel():
    target = _target(4, classes=2)
    logits = torch.randn(2, 2, 12, 12, generator=torch.Generator().manual_seed(2))
    ours = build_loss(_cfg("dice_ce", "sigmoid", classes={"a": [1], "b": [2]}))(logits, target)
    dense = F.one_hot(target[:, 0], 3).movedim(-1, 1)[:, 1:].float()
    expected = DiceLoss(sigmoid=True)(logits, dense) + F.binary_cross_entropy_with_logits(
        logits, dense)
    assert float(ours) == pytest.approx(float(expected), rel=1e-5)


def test_sigmoid_dice_keeps_its_only_channel_whatever_include_background():
    target = _target(5)
    perfect = _logits_for(target, 1, "sigmoid")
    for include in (False, True):
        loss = build_loss(_cfg("dice", "sigmoid", include_background=include))
        assert float(loss(perfect, target)) == pytest.approx(0.0, abs=1e-3)


def test_focal_softmax_is_monai_focal_over_all_channels():
    target = _target(6)
    logits = torch.randn(2, 2, 12, 12, generator=torch.Generator().manual_seed(3))
    ours = build_loss(_cfg("focal", focal_gamma=1.5))(logits, target)
    monai = FocalLoss(to_onehot_y=True, use_softmax=True, gamma=1.5)(logits, target)
    assert float(ours) == pytest.approx(float(monai), rel=1e-5)


def test_soft_labels_are_never_binarised():
    soft = torch.tensor([[[[0.0, 0.3, 0.7, 1.0]]]])
    assert dense_target(soft, n_out=1, activation="normrelu").flatten().tolist() == \
        pytest.approx([0.0, 0.3, 0.7, 1.0])
    assert dense_target(soft, n_out=2, activation="softmax")[0, 0].flatten().tolist() == \
        pytest.approx([1.0, 0.7, 0.3, 0.0])
    mse = build_loss(_cfg("mse", "normrelu", soft=True))
    logits = torch.randn(1, 1, 1, 4, generator=torch.Generator().manual_seed(4))
    assert float(mse(logits, soft)) == pytest.approx(
        float(F.mse_loss(normalized_relu(logits), soft)))
    # the minimum of the soft regression is the soft label itself
    exact = torch.tensor([[[[-1.0, 0.3, 0.7, 1.0]]]])  # normrelu -> [0, .3, .7, 1]
    assert float(mse(exact, soft)) == pytest.approx(0.0, abs=1e-12)
    assert float(build_loss(_cfg("adaptive_wing", "normrelu", soft=True))(exact, soft)) == \
        pytest.approx(0.0, abs=1e-6)


def test_binarize_trains_soft_labels_on_their_majority():
    soft = torch.tensor([[[[0.0, 0.3, 0.7, 1.0]]]])
    logits = torch.randn(1, 1, 1, 4, generator=torch.Generator().manual_seed(5))
    hard_loss = build_loss(_cfg("dice_ce", "sigmoid", soft=True, binarize=0.5))
    plain = build_loss(_cfg("dice_ce", "sigmoid", soft=True))
    majority = torch.tensor([[[[0.0, 0.0, 1.0, 1.0]]]])
    assert float(hard_loss(logits, soft)) == pytest.approx(float(plain(logits, majority)))
    assert float(hard_loss(logits, soft)) != pytest.approx(float(plain(logits, soft)))
    with pytest.raises(ValueError, match="loss.binarize"):
        _cfg("dice_ce", "sigmoid", soft=False, binarize=0.5)


def test_adaptive_wing_matches_the_formula_on_both_branches():
    omega, theta, alpha = 14.0, 0.5, 2.1
    pred = torch.tensor([[[[0.3, 0.0]]]])
    target = torch.tensor([[[[0.0, 1.0]]]])
    # pixel 1: |d| = 0.3 < theta, y = 0 -> omega ln(1 + 0.3^alpha)
    small = omega * math.log1p(0.3 ** alpha)
    # pixel 2: |d| = 1 >= theta, y = 1 -> A * 1 - C with p = alpha - 1
    p = alpha - 1.0
    a = omega / (1 + theta ** p) * p * theta ** (p - 1)
    c = theta * a - omega * math.log1p(theta ** p)
    expected = (small + (a - c)) / 2
    assert float(adaptive_wing_loss(pred, target, weight=0.0)) == pytest.approx(expected)
    # continuous at theta
    y = torch.full((1, 1, 1, 1), 0.4)
    below = adaptive_wing_loss(y - (theta - 1e-6), y, weight=0.0)
    above = adaptive_wing_loss(y - (theta + 1e-6), y, weight=0.0)
    assert float(below) == pytest.approx(float(above), rel=1e-4)


def test_adaptive_wing_weights_the_dilated_foreground():
    target = torch.zeros(1, 1, 5, 5)
    target[0, 0, 2, 2] = 1.0
    pred = torch.full_like(target, 0.1)
    plain = adaptive_wing_loss(pred, target, weight=0.0, omega=1.0)
    weighted = adaptive_wing_loss(pred, target, weight=10.0, omega=1.0)
    per_pixel = plain * 25
    # 9 pixels (the 3x3 dilation) count 11 times
    background = float(adaptive_wing_loss(pred[..., :1, :1], target[..., :1, :1], weight=0.0,
                                          omega=1.0))
    centre = float(per_pixel) - 24 * background
    expected = (centre * 11 + 8 * background * 11 + 16 * background) / 25
    assert float(weighted) == pytest.approx(expected, rel=1e-5)


def test_dense_target_rejects_soft_labels_of_another_class_count():
    with pytest.raises(ValueError, match="2 channels"):
        dense_target(torch.rand(1, 2, 4, 4), n_out=1, activation="sigmoid")
