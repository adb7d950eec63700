"""Voting fusion of label maps: plain majority and votes weighted by rater quality.

Per voxel the label with the most (weighted) votes wins.  Ties between the
labels with the most votes are settled by ``ties``:

* ``"background"`` (default): a tied voxel becomes 0 -- background wins any
  tie, and a tie between two foreground labels leaves the voxel unlabelled (0)
  too.  In binary fusion foreground thus needs a *strict* majority: 2 of 4
  raters is background, 3 of 4 foreground;
* ``"lowest"``: the lowest tied label wins (the same as ``"background"``
  whenever 0 is among the tied labels);
* ``"highest"``: the highest tied label wins (binary: a tie is foreground).

Weighted votes compare sums of weights; two sums within ``1e-9`` of the total
weight of each other are a tie (so 0.1 + 0.2 ties with 0.3).

Examples
--------
>>> import numpy as np
>>> raters = {"a": [[1, 1, 0, 2]], "b": [[1, 0, 0, 2]], "c": [[0, 1, 1, 1]], "d": [[0, 0, 1, 1]]}
>>> majority_vote(raters).tolist()
[[0, 0, 0, 0]]
>>> majority_vote(raters, ties="highest").tolist()
[[1, 1, 1, 2]]
>>> weighted_vote(raters, {"a": 2, "b": 1, "c": 1, "d": 1}).tolist()
[[1, 1, 0, 2]]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from segloop.fusion._checks import check_raters, check_ties, check_weights, present_labels

__all__ = ["majority_vote", "rater_weights", "weighted_vote"]

_MAX_KAPPA = 0.999  # caps a weight at log(1999) ~ 7.6, about 2000 : 1 odds


def _decide(counts: Iterable[np.ndarray], labels: np.ndarray, ties: str, eps: float, dtype):
    """The winning label per voxel from per-label vote counts (labels ascending)."""
    winner = best = tied = None
    for label, count in zip(labels, counts, strict=True):
        if winner is None:
            winner = np.full(count.shape, label, dtype=dtype)
            best, tied = count.astype(float), np.zeros(count.shape, bool)
            continue
        greater = count > best + eps
        equal = ~greater & (count >= best - eps)
        winner[greater | (equal if ties == "highest" else False)] = label
        tied = (tied & ~greater) | equal
        np.maximum(best, count, out=best)
    if ties == "background":
        winner[tied] = 0
    return winner


def _label_counts(stack: np.ndarray, labels: np.ndarray, weights=None, *, leave_out=None):
    """Per label (ascending), the number (or weight sum) of raters voting it per voxel.

    ``leave_out``: the index of a rater whose votes are not counted.
    """
    for label in labels:
        if weights is None:
            count = np.count_nonzero(stack == label, axis=0)
            if leave_out is not None:
                count -= stack[leave_out] == label
        else:
            count = np.zeros(stack.shape[1:])
            for weight, rater in zip(weights, stack, strict=True):
                count[rater == label] += weight
        yield count


def majority_vote(raters, *, ties: str = "background") -> np.ndarray:
    """Per voxel the label most raters gave.

    Parameters
    ----------
    raters : Mapping[str, array] or Sequence[array]
        Label maps (non-negative integers; 0 is background) of one shape, 1 or
        more raters, binary or multi-label, 2D or 3D.
    ties : {"background", "lowest", "highest"}
        Who wins a tie (module docstring): 0, the lowest or the highest of the
        labels with the most votes.

    Returns
    -------
    ndarray
        The fused label map, shape of a rater, dtype of :func:`check_raters`
        (``uint8`` for labels below 256).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[1, 1], [0, 0]]); b = np.array([[1, 0], [1, 0]])
    >>> majority_vote([a, b, a]).tolist()
    [[1, 1], [0, 0]]
    >>> majority_vote([a, b]).tolist(), majority_vote([a, b], ties="highest").tolist()
    ([[1, 0], [0, 0]], [[1, 1], [1, 0]])
    """
    ties = check_ties(ties)
    _, stack = check_raters(raters)
    labels = present_labels(stack)
    return _decide(_label_counts(stack, labels, None), labels, ties, 0.0, stack.dtype)


def weighted_vote(raters, weights=None, *, ties: str = "background") -> np.ndarray:
    """Per voxel the label with the largest sum of rater weights.

    Parameters
    ----------
    raters : Mapping[str, array] or Sequence[array]
        Label maps of one shape, as for :func:`majority_vote`.
    weights : Mapping[str, float] or Sequence[float], optional
        One weight >= 0 per rater (by id, or in the order of the raters), not all
        zero.  None: estimated from the raters by :func:`rater_weights`.
    ties : {"background", "lowest", "highest"}
        Who wins a tie of weight sums, as for :func:`majority_vote`.

    Returns
    -------
    ndarray
        The fused label map (dtype as :func:`majority_vote`).

    Raises
    ------
    InvalidArgumentError
        Bad raters; weights of the wrong length or ids, negative, NaN, or all
        zero.

    Examples
    --------
    >>> import numpy as np
    >>> good = np.array([1, 1, 0, 0]); noisy1 = np.array([1, 0, 1, 0])
    >>> noisy2 = np.array([0, 1, 1, 0])
    >>> majority_vote([good, noisy1, noisy2]).tolist()
    [1, 1, 1, 0]
    >>> weighted_vote([good, noisy1, noisy2], [3, 1, 1]).tolist()
    [1, 1, 0, 0]
    """
    ties = check_ties(ties)
    ids, stack = check_raters(raters)
    if weights is None:
        w = np.array(list(_estimated_weights(ids, stack).values()))
    else:
        w = check_weights(weights, ids)
    labels = present_labels(stack)
    eps = 1e-9 * float(w.sum())
    return _decide(_label_counts(stack, labels, w), labels, ties, eps, stack.dtype)


def _kappa(a: np.ndarray, b: np.ndarray, n_labels: int) -> float:
    """Cohen's kappa of two label-index arrays (1 when both are one same constant)."""
    joint = np.bincount(a.ravel().astype(np.int64) * n_labels + b.ravel(), minlength=n_labels**2)
    joint = joint.reshape(n_labels, n_labels) / a.size
    observed = float(np.trace(joint))
    chance = float(joint.sum(axis=1) @ joint.sum(axis=0))
    if chance >= 1.0 - 1e-12:
        return 1.0 if observed >= 1.0 - 1e-12 else 0.0
    return (observed - chance) / (1.0 - chance)


def _estimated_weights(ids: list[str], stack: np.ndarray) -> dict[str, float]:
    if len(ids) == 1:
        return {ids[0]: 1.0}
    labels = present_labels(stack)
    index = np.searchsorted(labels, stack)
    out = {}
    for r, rater in enumerate(ids):
        counts = _label_counts(stack, labels, leave_out=r)
        reference = np.searchsorted(labels, _decide(counts, labels, "background", 0.0, stack.dtype))
        kappa = np.clip(_kappa(index[r], reference, len(labels)), 0.0, _MAX_KAPPA)
        out[rater] = float(np.log((1.0 + kappa) / (1.0 - kappa)))
    if not any(out.values()):
        return dict.fromkeys(ids, 1.0)
    return out


def rater_weights(raters) -> dict[str, float]:
    """Each rater's voting weight, estimated without the rater's own vote.

    Rater ``r`` is scored by Cohen's kappa ``k_r`` against the majority vote of
    the *other* raters (leave-one-out, ties to background), and weighted
    ``w_r = log((1 + k_r) / (1 - k_r))``.

    Why this choice: kappa, unlike accuracy or Dice, discounts chance agreement,
    so the large easy background does not make every rater look alike, and it is
    defined for multi-label maps.  A rater of chance-corrected accuracy
    ``a = (1 + k) / 2`` has the log-odds weight ``log(a / (1 - a))`` above, the
    weight under which a vote of independent raters is Bayes-optimal (Nitzan &
    Paroush 1982); a plain average of kappas would let many mediocre raters
    outvote one excellent rater.  Leaving the rater out of its own reference
    keeps a rater from earning weight by agreeing with itself.  (STAPLE's
    sensitivity/specificity, :func:`~segloop.fusion.staple`, are the binary
    alternative; they need two or more raters and binary masks.)

    Kappa is clipped to ``[0, 0.999]``: a rater no better than chance gets weight
    0, and no rater more than ``log(1999) ~ 7.6``.  With one rater the weight is
    1; with two, each rater's reference is the other, so both weigh the same. If
    every weight is 0 all raters get 1 (a plain majority vote).

    Parameters
    ----------
    raters : Mapping[str, array] or Sequence[array]
        Label maps of one shape.

    Returns
    -------
    dict[str, float]
        Rater id -> weight >= 0, in the raters' order.

    References
    ----------
    Nitzan S., Paroush J. (1982) Optimal decision rules in uncertain dichotomous
    choice situations. International Economic Review 23(2):289-297.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((10, 10), np.uint8); truth[2:8, 2:8] = 1
    >>> bad = truth.copy(); bad[0:5] = 1 - bad[0:5]
    >>> w = rater_weights({"a": truth, "b": truth, "c": truth, "bad": bad})
    >>> w["a"] > w["bad"], round(w["a"], 2)
    (True, 7.6)
    """
    ids, stack = check_raters(raters)
    return _estimated_weights(ids, stack)
