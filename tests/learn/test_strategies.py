"""Selection strategies: deterministic rankings, uncertainty order, core-set diversity, errors.

(segloop.learn.strategies and segloop.learn.features.)
"""

import numpy as np
import pytest
import torch
from torch import nn

from segloop.errors import InvalidArgumentError
from segloop.learn.config import load_config
from segloop.learn.data import Volume
from segloop.learn.features import bottleneck, encoder_features
from segloop.learn.inference import ArrayPredictor
from segloop.learn.networks import Segmenter, build_network
from segloop.learn.strategies import (
    STRATEGIES,
    entropy_score,
    k_center_greedy,
    rank,
    select,
)


def tiny_config(dropout=0.2, channels=(4, 8)):
    return load_config({"data": {"path": "x", "normalize": "none"},
                        "model": {"channels": list(channels), "num_res_units": 1,
                                  "dropout": dropout}})


def unet_model(dropout=0.2, seed=0, channels=(4, 8)):
    cfg = tiny_config(dropout, channels)
    torch.manual_seed(seed)
    return ArrayPredictor(build_network(cfg, in_channels=1), cfg, in_channels=1)


def threshold_model(dropout=0.25):
    """p(foreground) = sigmoid(20 (x - 0.5)) in eval mode, through 4 hidden units and dropout.

    Dropout only rescales a sum of same-sign units: a clear voxel (x = 0 or 1)
    stays clear under MC dropout; a voxel near 0.5 is uncertain either way.
    """
    hidden, out = nn.Conv2d(1, 4, 1), nn.Conv2d(4, 2, 1)
    with torch.no_grad():
        hidden.weight.fill_(20.0)
        hidden.bias.fill_(-10.0)
        out.weight.copy_(torch.tensor([[0.0] * 4, [0.25] * 4]).view(2, 4, 1, 1))
        out.bias.zero_()
    layers = [hidden, nn.Dropout(dropout), out] if dropout else [hidden, out]
    return ArrayPredictor(Segmenter(nn.Sequential(*layers), "softmax"), tiny_config(),
                          in_channels=1)


def disc(value, shape=(24, 24), centre=(12, 12), radius=6.0):
    y, x = np.indices(shape)
    inside = (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= radius**2
    return (inside * value).astype(np.float32)[None]


def vol(name, image, slice_axis=None):
    return Volume(name, "g", np.asarray(image, np.float32), None, (1.0,) * (image.ndim - 1), "",
                  slice_axis)


def phantom_pool():
    rng = np.random.default_rng(3)
    pool = [vol(f"img{i}", rng.random((1, 24, 24))) for i in range(4)]
    pool.append(vol("disc", disc(1.0)))
    pool.append(vol("volume", np.stack([disc(1.0)[0], disc(0.3)[0], disc(0.0)[0]])[None], 0))
    return pool


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_ranks_every_id_once_deterministically(strategy):
    model = unet_model()
    pool = phantom_pool()
    labelled = [vol("known", disc(0.8, centre=(8, 8)))]
    first = rank(strategy, pool, model, labelled=labelled, seed=4)
    assert sorted(i for i, _ in first) == sorted(v.id for v in pool)
    assert all(np.isfinite(s) for _, s in first)
    scores = [s for _, s in first]  # core-set: farthest-first distances never increase
    assert scores == sorted(scores, reverse=True)
    assert rank(strategy, pool, model, labelled=labelled, seed=4) == first
    chosen = select(strategy, pool, model, 3, labelled=labelled, seed=4)
    assert chosen == [i for i, _ in first[:3]] and len(set(chosen)) == 3


def test_random_is_a_seeded_permutation():
    pool = [vol(f"v{i}", np.zeros((1, 8, 8))) for i in range(10)]
    model = threshold_model()
    orders = {tuple(select("random", pool, model, 10, seed=s)) for s in range(5)}
    assert len(orders) == 5
    expected = [f"v{i}" for i in np.random.default_rng(7).permutation(10)]
    assert select("random", pool, model, 10, seed=7) == expected
    assert [s for _, s in rank("random", pool, model, seed=7)][:3] == [1.0, 0.9, 0.8]


def test_entropy_score_on_hand_made_outputs():
    sure = np.zeros((2, 4, 25))
    sure[0] = 1.0
    assert entropy_score(sure) == 0.0
    doubtful = sure.copy()
    doubtful[:, 0, :5] = [[0.5], [0.5]]  # 5 voxels of entropy 1, argmax = background
    assert entropy_score(doubtful) == pytest.approx(0.05, abs=1e-5)
    doubtful[1, 0, :5] = 0.50001  # now foreground: + 0.2 * its mean entropy (1)
    assert entropy_score(doubtful) == pytest.approx(0.05 + 0.2, abs=1e-4)


@pytest.mark.parametrize("strategy", ["entropy", "mc_dropout", "tta"])
def test_uncertainty_ranks_the_ambiguous_phantom_above_the_clear_one(strategy):
    model = threshold_model()
    clear, ambiguous = disc(1.0), disc(0.55)  # object p = 1.0 vs 0.73 (entropy 0.84)
    pool = [vol("clear", clear), vol("blank", np.zeros((1, 24, 24))),
            vol("ambiguous", ambiguous), vol("clear2", disc(0.95, centre=(9, 14)))]
    probs = model.infer(ambiguous)
    assert 0.6 < probs[1, 12, 12] < 0.8 and model.infer(clear)[1, 12, 12] > 0.999
    ranked = rank(strategy, pool, model, seed=0)
    assert ranked[0][0] == "ambiguous"
    scores = dict(ranked)
    assert scores["ambiguous"] > 0.1 > scores["clear"]
    if strategy == "mc_dropout":  # the dropout masks change the ambiguous object, not the clear
        samples = model.samples(ambiguous, mc=8, seed=0)
        assert np.ptp(samples[:, 1, 12, 12]) > 0.05
        assert np.ptp(model.samples(clear, mc=8, seed=0)[:, 1, 12, 12]) < 1e-3


def test_coreset_picks_the_far_image_before_a_near_duplicate():
    model = unet_model(seed=1)
    base = disc(1.0)
    rng = np.random.default_rng(0)
    near = base + rng.normal(0, 0.01, base.shape).astype(np.float32)
    far = np.tile(np.array([[0.0, 3.0], [3.0, 0.0]], np.float32), (12, 12))[None]  # checkers
    pool = [vol("near", near), vol("far", far)]
    ranked = rank("coreset", pool, model, labelled=[vol("base", base)])
    assert [i for i, _ in ranked] == ["far", "near"]
    assert ranked[0][1] > 10 * ranked[1][1]
    # without labels: seeded random first pick (distance 2), then the farthest
    ranked = rank("coreset", [vol("base", base), *pool], model, seed=0)
    assert ranked[0][1] == 2.0 and len({i for i, _ in ranked}) == 3


def test_k_center_greedy_order_and_distances():
    f = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.1, 0.0]])
    order, dist = k_center_greedy(f, np.array([[0.0, 0.0]]))
    assert order == [2, 1, 3, 0]
    np.testing.assert_allclose(dist, [3.0, 1.0, 0.1, 0.0])
    order, dist = k_center_greedy(f, seed=5)
    assert order[0] == int(np.random.default_rng(5).integers(4)) and dist[0] == 2.0


def test_bottleneck_features_of_the_deepest_layer():
    model = unet_model(channels=(4, 8, 16))
    layer = bottleneck(model.network.backbone)
    assert layer.conv.unit0.conv.out_channels == 16
    images = [disc(1.0), np.stack([disc(1.0)[0]] * 3)[None]]  # a 2D model pools over slices
    f = encoder_features(model, images, slice_axes=[None, 0])
    assert f.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0)
    np.testing.assert_allclose(f[0], f[1], atol=1e-5)  # 3 copies of the slice: same feature
    assert not layer._forward_hooks  # the hook is removed


def test_network_mode_and_gradients_are_restored():
    model = unet_model()
    model.network.train()
    for strategy in STRATEGIES:
        rank(strategy, phantom_pool()[:3], model, seed=0)
        assert model.network.training and torch.is_grad_enabled()
    model.network.eval()
    rank("mc_dropout", phantom_pool()[:2], model)
    assert not any(m.training for m in model.network.modules())


def test_bad_inputs_are_clear_errors():
    model, pool = threshold_model(), phantom_pool()[:3]
    with pytest.raises(InvalidArgumentError, match="strategy: unknown 'bald'; choose one of "
                                                   "random, entropy, mc_dropout, tta, coreset"):
        select("bald", pool, model, 1)
    for k in (0, 4, True, 1.5):
        with pytest.raises(InvalidArgumentError, match="k: select between 1 and the pool's 3"):
            select("random", pool, model, k)
    with pytest.raises(InvalidArgumentError, match="pool is empty"):
        select("entropy", [], model, 1)
    with pytest.raises(InvalidArgumentError, match="pool: duplicate ids img0"):
        rank("random", [pool[0], pool[1], pool[0]], model)
    with pytest.raises(InvalidArgumentError, match="already labelled: img1"):
        rank("random", pool, model, labelled=[pool[1]])
    with pytest.raises(InvalidArgumentError, match="expected Volumes"):
        rank("random", [np.zeros((1, 4, 4))], model)
    with pytest.raises(InvalidArgumentError, match=r"mc_dropout needs a model trained with "
                                                   r"dropout \(model.dropout > 0\)"):
        rank("mc_dropout", pool, unet_model(dropout=0.0))
    with pytest.raises(InvalidArgumentError, match="coreset needs a U-Net"):
        rank("coreset", pool, threshold_model())
