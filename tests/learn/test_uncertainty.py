"""Uncertainty: MC dropout, TTA samples, voxel-wise maps and per-image scores."""

import numpy as np
import pytest
import torch
from torch import nn

from segloop.errors import InvalidArgumentError
from segloop.io import Image
from segloop.learn.config import load_config
from segloop.learn.networks import Segmenter
from segloop.learn.predict import Predictor
from segloop.learn.uncertainty import (
    dropout_active,
    flip_axes,
    mc_dropout,
    sample_masks,
    tta_samples,
    uncertainty_maps,
    uncertainty_scores,
)


def test_maps_on_constructed_samples():
    # voxel 0: every sample sure of foreground; voxel 1: samples disagree (0.9 / 0.1)
    fg = np.array([[[0.99, 0.9]], [[0.99, 0.1]], [[0.99, 0.9]], [[0.99, 0.1]]])  # (N, 1, 2)
    samples = np.concatenate([1 - fg, fg], axis=1)[:, :, None]  # (N, K=2, 1, 2)
    maps = uncertainty_maps(samples)
    assert maps["entropy"].shape == (1, 2) and maps["entropy"].dtype == np.float32
    p = 0.99
    clear = -(p * np.log(p) + (1 - p) * np.log(1 - p)) / np.log(2)
    np.testing.assert_allclose(maps["entropy"][0], [clear, 1.0], atol=1e-5)
    np.testing.assert_allclose(maps["variance"][0], [0.0, 0.16], atol=1e-6)
    sig = uncertainty_maps(fg[:, :, None], activation="sigmoid")  # same as binary softmax
    np.testing.assert_allclose(sig["entropy"], maps["entropy"], atol=1e-5)


def test_scores_on_constructed_samples():
    masks = np.zeros((3, 1, 4, 4))
    masks[0, 0, :2, :2] = 1  # 4 voxels
    masks[1, 0, :2, :3] = 1  # 6 voxels, 4 shared with the first
    masks[2, 0, :2, :2] = 1
    scores = uncertainty_scores(masks, activation="sigmoid")
    vols = np.array([4.0, 6.0, 4.0])
    assert scores["volume_cv"] == pytest.approx(vols.std() / vols.mean())
    assert scores["inter_sample_dice"] == pytest.approx((0.8 + 1.0 + 0.8) / 3)
    assert scores["mean_entropy"] == pytest.approx(
        uncertainty_maps(masks, activation="sigmoid")["entropy"].mean())
    empty = uncertainty_scores(np.zeros((2, 1, 3, 3)), activation="sigmoid")
    assert empty == {"mean_entropy": 0.0, "volume_cv": 0.0, "inter_sample_dice": 1.0}
    soft3 = np.zeros((1, 3, 1, 3))
    soft3[0, :, 0] = np.eye(3)  # voxel i is class i
    np.testing.assert_array_equal(sample_masks(soft3)[0, 0], [False, True, True])
    with pytest.raises(InvalidArgumentError, match="samples must be"):
        uncertainty_scores(np.zeros((2, 3)))
    with pytest.raises(InvalidArgumentError, match="activation must be"):
        uncertainty_maps(masks, activation="relu")


def test_mc_dropout_switches_on_dropout_only_and_is_seeded():
    net = nn.Sequential(nn.Conv2d(1, 4, 1), nn.BatchNorm2d(4), nn.Dropout(0.5))
    net.train()
    x = torch.ones(1, 1, 6, 6)
    before = net[1].running_mean.clone()
    state = torch.get_rng_state()
    a = mc_dropout(net, x, 5, seed=7)
    b = mc_dropout(net, x, 5, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert a.shape == (5, 1, 4, 6, 6) and torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # dropout masks differ between passes
    assert torch.equal(net[1].running_mean, before)  # batch norm stayed in eval mode
    assert all(m.training for m in net.modules())  # modes restored
    with dropout_active(net):
        assert [m.training for m in net] == [False, False, True]
    with pytest.raises(InvalidArgumentError, match="passes must be >= 1"):
        mc_dropout(net, x, 0)


def test_tta_samples_flip_back():
    assert flip_axes(3)[-1] == (2, 3, 4) and len(flip_axes(3)) == 8
    x = torch.arange(12.0).view(1, 1, 3, 4)
    out = tta_samples(lambda t: t * 2, x)  # an equivariant map: every pass agrees
    assert out.shape == (4, 1, 1, 3, 4)
    assert all(torch.equal(o, x * 2) for o in out)


def dropout_predictor():
    """Hidden units 2 x (8 copies) and 2 (1 - x) (8 copies) with dropout; logit = their difference.

    Where x is 0 or 1 one side of the units is silent, so every dropout mask
    gives a confident answer; where x = 0.5 the two sides cancel on average and
    each mask tips the balance its own way.
    """
    hidden, out = nn.Conv2d(1, 16, 1), nn.Conv2d(16, 2, 1, bias=False)
    with torch.no_grad():
        hidden.weight.copy_(torch.tensor([2.0] * 8 + [-2.0] * 8).view(16, 1, 1, 1))
        hidden.bias.copy_(torch.tensor([0.0] * 8 + [2.0] * 8))
        out.weight.zero_()
        out.weight[1, :8] = 1.0
        out.weight[1, 8:] = -1.0
    net = Segmenter(nn.Sequential(hidden, nn.Dropout(0.5), out), "softmax")
    cfg = load_config({"data": {"path": "x", "normalize": "none"},
                       "model": {"channels": [4, 8]}})
    return Predictor(net, cfg, in_channels=1)


@pytest.fixture
def phantom():
    """Clear background (x = 0), an ambiguous band (0.5), clear foreground (1)."""
    array = np.zeros((12, 30), np.float32)
    array[:, 10:20] = 0.5
    array[:, 20:] = 1.0
    return Image(array, spacing=(0.5, 2.0), origin=(3.0, -1.0))


def test_uncertainty_maps_are_higher_on_the_ambiguous_region(phantom):
    predictor = dropout_predictor()
    result = predictor.uncertainty(phantom, mc=16, tta=False, soft=True)
    assert result.n_samples == 16 and result.sources == {"mc": 16, "tta": 0}
    entropy, variance = result.maps["entropy"], result.maps["variance"]
    assert entropy.shape == phantom.shape and entropy.spacing == phantom.spacing
    assert entropy.origin == phantom.origin
    clear = np.r_[0:10, 20:30]
    e_amb, e_clear = entropy.array[:, 10:20].mean(), entropy.array[:, clear].mean()
    v_amb, v_clear = variance.array[:, 10:20].mean(), variance.array[:, clear].mean()
    assert e_amb > 0.8 and e_clear < 0.15
    assert v_amb > 0.1 and v_clear < 0.01
    np.testing.assert_array_equal(result.prediction.label.array[:, :10], 0)
    np.testing.assert_array_equal(result.prediction.label.array[:, 20:], 1)
    assert 0.0 < result.scores["volume_cv"] < 0.5
    assert 0.5 < result.scores["inter_sample_dice"] < 1.0
    again = predictor.uncertainty(phantom, mc=16, tta=False)
    np.testing.assert_array_equal(again.maps["entropy"].array, entropy.array)  # seeded
    other = predictor.uncertainty(phantom, mc=16, tta=False, seed=1)
    assert not np.array_equal(other.maps["variance"].array, variance.array)


def test_tta_uncertainty_of_a_flip_invariant_network(phantom):
    # flips cannot disagree for a voxel-wise network: no variance, entropy from the mean only
    result = dropout_predictor().uncertainty(phantom, mc=0, tta=True)
    assert result.n_samples == 4 and result.sources == {"mc": 0, "tta": 4}
    np.testing.assert_allclose(result.maps["variance"].array, 0.0, atol=1e-10)
    np.testing.assert_allclose(result.maps["entropy"].array[:, 10:20], 1.0, atol=1e-5)
    assert result.scores["inter_sample_dice"] == 1.0 and result.scores["volume_cv"] == 0.0
    with pytest.raises(InvalidArgumentError, match="needs mc >= 1 MC-dropout passes or tta"):
        dropout_predictor().uncertainty(phantom, mc=0, tta=False)
