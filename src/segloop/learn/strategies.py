"""Active-learning selection strategies: which unlabelled images to label next.

Every strategy ranks a pool of pre-processed images
(:class:`segloop.learn.data.Volume`: only ``id``, ``image``,
``slice_axis`` and ``meta`` are read, never ``label``) with the current model;
:func:`rank` gives every id with a score (higher: label sooner),
:func:`select` the first ``k``. The registry :data:`REGISTRY` maps a name to
a function ``(pool, model, labelled, seed) -> [(id, score), ...]`` in rank
order, so a new strategy is one function and one entry.

``random``
    A seeded permutation (``numpy.random.default_rng(seed)``); score
    ``1 - position / n``.
``entropy``
    One deterministic pass (no flips); score = :func:`entropy_score`: the
    mean normalised voxel entropy over the image plus
    :data:`FOREGROUND_WEIGHT` times its mean over the predicted foreground.
    The first term measures what is uncertain anywhere (including objects
    the model half-misses), relative to the image's size; the second how
    doubtful the objects the model marks are, whatever their size (a small
    false-positive blob on an empty slice, which costs a whole Dice point,
    barely moves the image mean). Measured against the per-image error
    (1 - Dice) of a weak model on 500 nuclei images and 101 LGG slices
    (Spearman correlation): image mean alone 0.79 / -0.02, foreground mean
    alone -0.22 / 0.78, the mean over foreground-or-uncertain voxels 0.07 /
    0.61, this sum 0.67 / 0.70 (``segloop bench loop`` measures the loop itself).
``mc_dropout``
    :data:`MC_SAMPLES` passes with dropout on (``model.samples(mc=...)``);
    score = :func:`entropy_score` of the samples' mean (aleatoric +
    epistemic uncertainty) plus ``1 - inter_sample_dice`` of the sample masks
    (:func:`disagreement`: how much the segmented objects change between
    passes). Needs a model with dropout.
``tta``
    The same score over the flipped passes (``model.samples(tta=True)``).
``coreset``
    Core-set by k-centre greedy (Sener & Savarese 2018) on the bottleneck
    features of :func:`segloop.learn.features.encoder_features`: each next
    pick is the pool image farthest from everything labelled or picked
    (:func:`k_center_greedy`); the first pick is seeded random when nothing is
    labelled. Score = the distance when picked (2, the largest distance of
    unit vectors, for a random first pick).

Uncertainty ties keep the pool's order. Everything runs without gradients and
restores the network's train/eval mode. A FiLM model sees each image's
metadata (``Volume.meta``) in ``entropy``, ``mc_dropout`` and ``tta``;
``coreset``'s features are computed with the *missing* metadata vector (the
same for every image, so the distances compare images alone).

Examples
--------
>>> import numpy as np, torch
>>> from segloop.learn.config import load_config
>>> from segloop.learn.data import Volume
>>> from segloop.learn.inference import ArrayPredictor
>>> from segloop.learn.networks import build_network
>>> cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]}})
>>> _ = torch.manual_seed(0)
>>> model = ArrayPredictor(build_network(cfg, in_channels=1), cfg, in_channels=1)
>>> pool = [Volume(f"v{i}", "", np.full((1, 16, 16), i, np.float32), None, (1.0, 1.0), "")
...         for i in range(4)]
>>> select("random", pool, model, 2, seed=0)
['v2', 'v0']
>>> sorted(i for i, _ in rank("entropy", pool, model))
['v0', 'v1', 'v2', 'v3']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from segloop.errors import InvalidArgumentError
from segloop.learn.features import bottleneck, encoder_features
from segloop.learn.uncertainty import sample_masks, uncertainty_maps, uncertainty_scores

__all__ = ["FOREGROUND_WEIGHT", "MC_SAMPLES", "REGISTRY", "STRATEGIES", "check_strategy",
           "disagreement", "entropy_score", "k_center_greedy", "rank", "select"]

#: MC-dropout passes of ``mc_dropout``.
MC_SAMPLES = 8
#: Weight of the foreground's mean entropy in :func:`entropy_score`.
FOREGROUND_WEIGHT = 0.2

Ranked = list[tuple[str, float]]


# --------------------------------------------------------------------------- scores
def entropy_score(probs: np.ndarray, *, activation: str = "softmax",
                  threshold: float = 0.5) -> float:
    """Mean normalised entropy of ``(K, *spatial)`` outputs, plus its weighted foreground mean.

    ``mean(H) + FOREGROUND_WEIGHT * mean(H[foreground])`` with ``H`` the
    normalised entropy (:func:`~segloop.learn.uncertainty.uncertainty_maps`)
    and the foreground of :func:`~segloop.learn.uncertainty.sample_masks`
    (argmax for softmax, a class reaching ``threshold`` otherwise); the
    second term is 0 when nothing is foreground.

    Examples
    --------
    >>> p = np.zeros((2, 1, 100)); p[0] = 1.0       # sure background ...
    >>> p[:, 0, :4] = [[0.2], [0.8]]                # ... and a small, doubtful object
    >>> round(entropy_score(p), 4)                  # 0.04 * 0.7219 + 0.2 * 0.7219
    0.1733
    """
    entropy = uncertainty_maps(probs[None], activation=activation)["entropy"]
    fg = sample_masks(probs[None], threshold=threshold, activation=activation)[0]
    fg_mean = float(entropy[fg].mean()) if fg.any() else 0.0
    return float(entropy.mean()) + FOREGROUND_WEIGHT * fg_mean


def disagreement(samples: np.ndarray, *, activation: str = "softmax",
                 threshold: float = 0.5) -> float:
    """``1 - `` the mean pairwise Dice of the sample masks ``(N, K, *spatial)``."""
    dice = uncertainty_scores(samples, threshold, activation=activation)["inter_sample_dice"]
    return 1.0 - dice


def _threshold(model) -> float:
    return float(model.config.inference.threshold)


def _by_score(pool: Sequence, scores: Sequence[float]) -> Ranked:
    order = sorted(range(len(pool)), key=lambda i: (-scores[i], i))
    return [(pool[i].id, float(scores[i])) for i in order]


def _sample_score(model, samples: np.ndarray) -> float:
    kw = {"activation": model.activation, "threshold": _threshold(model)}
    return entropy_score(samples.mean(axis=0), **kw) + disagreement(samples, **kw)


# --------------------------------------------------------------------------- strategies
def _random(pool, model, labelled, seed) -> Ranked:
    n = len(pool)
    order = np.random.default_rng(seed).permutation(n)
    return [(pool[i].id, 1.0 - pos / n) for pos, i in enumerate(order)]


def _meta(v):
    """A volume's metadata vector (FiLM models), when it has one."""
    return getattr(v, "meta", None)


def _entropy(pool, model, labelled, seed) -> Ranked:
    kw = {"activation": model.activation, "threshold": _threshold(model)}
    scores = [entropy_score(model.infer(v.image, tta=False, slice_axis=v.slice_axis,
                                        meta=_meta(v)), **kw) for v in pool]
    return _by_score(pool, scores)


def _mc_dropout(pool, model, labelled, seed) -> Ranked:
    scores = [_sample_score(model, model.samples(v.image, mc=MC_SAMPLES, seed=seed,
                                                 slice_axis=v.slice_axis, meta=_meta(v)))
              for v in pool]
    return _by_score(pool, scores)


def _tta(pool, model, labelled, seed) -> Ranked:
    scores = [_sample_score(model, model.samples(v.image, tta=True, slice_axis=v.slice_axis,
                                                 meta=_meta(v))) for v in pool]
    return _by_score(pool, scores)


def k_center_greedy(features: np.ndarray, labelled: np.ndarray | None = None, *,
                    seed: int = 0) -> tuple[list[int], list[float]]:
    """Farthest-first order of the rows of ``features`` from ``labelled`` (k-centre greedy).

    Returns the indices in pick order and each one's distance (Euclidean) to
    the nearest labelled or earlier-picked row when picked. Without labelled
    rows the first pick is ``default_rng(seed)``'s and its distance 2.0.

    Examples
    --------
    >>> f = np.array([[1.0, 0.0], [0.0, 1.0], [0.995, 0.0998]])
    >>> order, dist = k_center_greedy(f, np.array([[1.0, 0.0]]))
    >>> order, [round(d, 3) for d in dist]
    ([1, 2, 0], [1.414, 0.1, 0.0])
    """
    f = np.asarray(features, dtype=np.float64)
    n = f.shape[0]
    nearest = np.full(n, np.inf)
    order, dist = [], []
    if labelled is not None and len(labelled):
        lab = np.asarray(labelled, dtype=np.float64)
        nearest = np.sqrt(((f[:, None, :] - lab[None, :, :]) ** 2).sum(-1)).min(axis=1)
    else:
        first = int(np.random.default_rng(seed).integers(n))
        order.append(first)
        dist.append(2.0)
        nearest = np.minimum(nearest, np.linalg.norm(f - f[first], axis=1))
    picked = np.zeros(n, bool)
    picked[order] = True
    while len(order) < n:
        i = int(np.argmax(np.where(picked, -1.0, nearest)))
        order.append(i)
        dist.append(float(nearest[i]))
        picked[i] = True
        nearest = np.minimum(nearest, np.linalg.norm(f - f[i], axis=1))
    return order, dist


def _coreset(pool, model, labelled, seed) -> Ranked:
    feats = encoder_features(model, [v.image for v in pool],
                             slice_axes=[v.slice_axis for v in pool])
    lab = (encoder_features(model, [v.image for v in labelled],
                            slice_axes=[v.slice_axis for v in labelled]) if labelled else None)
    order, dist = k_center_greedy(feats, lab, seed=seed)
    return [(pool[i].id, d) for i, d in zip(order, dist, strict=True)]


#: Strategy name -> ``fn(pool, model, labelled, seed) -> [(id, score), ...]`` in rank order.
REGISTRY: dict[str, Callable[..., Ranked]] = {
    "random": _random, "entropy": _entropy, "mc_dropout": _mc_dropout, "tta": _tta,
    "coreset": _coreset,
}
STRATEGIES: tuple[str, ...] = tuple(REGISTRY)


# --------------------------------------------------------------------------- public
def _has_dropout(network: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.dropout._DropoutNd | nn.AlphaDropout) and m.p > 0
               for m in network.modules())


def check_strategy(strategy: str, model=None) -> str:
    """Refuse an unknown name, or a model the strategy cannot use; return the name.

    ``mc_dropout`` needs dropout layers, ``coreset`` a U-Net (its bottleneck);
    every strategy but ``random`` scores the network's outputs on its own grid,
    which a cascade (:mod:`segloop.learn.cascade`: whole images only) refuses.

    Examples
    --------
    >>> check_strategy("tta")
    'tta'
    """
    if strategy not in REGISTRY:
        raise InvalidArgumentError(f"strategy: unknown {strategy!r}; choose one of "
                                   f"{', '.join(REGISTRY)}")
    if strategy != "random" and model is not None and not getattr(model, "takes_arrays", True):
        raise InvalidArgumentError(
            f"strategy {strategy}: scores a network's outputs on its pre-processed grid; the "
            "model is a cascade, which segments whole images only (strategy random works)",
            path=getattr(model, "source", None))
    if strategy == "mc_dropout" and model is not None and not _has_dropout(model.network):
        raise InvalidArgumentError("mc_dropout needs a model trained with dropout "
                                   "(model.dropout > 0); an exported ONNX model has no dropout "
                                   "layers: use its checkpoint")
    if strategy == "coreset" and model is not None:
        bottleneck(getattr(model.network, "backbone", model.network))
    return strategy


def _check_pool(pool: Sequence, labelled: Sequence) -> None:
    if len(pool) == 0:
        raise InvalidArgumentError("pool: no image to rank (the pool is empty)")
    for name, items in (("pool", pool), ("labelled", labelled)):
        for v in items:
            if not hasattr(v, "id") or not hasattr(v, "image"):
                raise InvalidArgumentError(f"{name}: expected Volumes (id, image), got "
                                           f"{type(v).__name__}")
    ids = [v.id for v in pool]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise InvalidArgumentError(f"pool: duplicate ids {', '.join(map(str, dup))}")
    both = sorted(set(ids) & {v.id for v in labelled})
    if both:
        raise InvalidArgumentError(f"pool: ids already labelled: {', '.join(map(str, both))}")


def rank(strategy: str, pool: Sequence, model, *, labelled: Sequence = (),
         seed: int = 0) -> Ranked:
    """Every pool id, most worth labelling first, with its score (higher = label sooner).

    Parameters
    ----------
    strategy : str
        One of :data:`STRATEGIES`.
    pool : sequence of Volume
        Unlabelled candidates (distinct ids; ``label`` is never read).
    model : segloop.learn.inference.ArrayPredictor
        The current model (a :class:`~segloop.learn.predict.Predictor` too).
    labelled : sequence of Volume
        Already labelled images (``coreset`` measures distances from them).
    seed : int
        Seeds ``random``, the MC-dropout masks and ``coreset``'s first pick.

    Returns
    -------
    list of (str, float)
        ``(id, score)`` pairs in rank order.

    Raises
    ------
    InvalidArgumentError
        Unknown strategy, empty pool, duplicate ids, ids both in the pool and
        labelled, ``mc_dropout`` without dropout.
    """
    fn = REGISTRY[check_strategy(strategy, model)]
    labelled = list(labelled)
    _check_pool(pool, labelled)
    network = model.network
    was_training = network.training
    try:
        with torch.no_grad():
            return fn(list(pool), model, labelled, int(seed))
    finally:
        network.train(was_training)


def select(strategy: str, pool: Sequence, model, k: int, *, labelled: Sequence = (),
           seed: int = 0) -> list[str]:
    """The ``k`` ids to label next (the first ``k`` of :func:`rank`); ``1 <= k <= len(pool)``."""
    check_strategy(strategy)
    _check_pool(pool, list(labelled))
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= len(pool):
        raise InvalidArgumentError(f"k: select between 1 and the pool's {len(pool)} images, "
                                   f"got {k!r}")
    return [i for i, _ in rank(strategy, pool, model, labelled=labelled, seed=seed)[:k]]
