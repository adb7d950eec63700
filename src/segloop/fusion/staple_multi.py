"""Multi-label STAPLE (Warfield, Zou & Wells 2004, section II-B): label maps with K classes.

Each rater ``r`` is described by a confusion matrix ``theta_r[s, j] = P(rater
says classes[j] | true class classes[s])`` (rows: the true class, columns: the
rater's label; each row sums to 1), raters independent given the truth, with
class priors ``f[s]``.  Expectation-maximisation alternates

* **M-step**: ``theta_r[s, j] = sum_{i: D_ri = j} W_is / sum_i W_is``;
* **E-step**: ``W_is = P(T_i = s | D) ~ f[s] prod_r theta_r[s, D_ri]``.

It starts from ``W`` = the fraction of raters voting each class (the soft vote)
and stops when no entry of any confusion matrix moved more than ``tol``.  The
priors are fixed at the classes' frequencies over all raters' votes unless
given.  With two classes 0/1 this is exactly :func:`~segloop.fusion.staple`
(``theta_r = [[q_r, 1 - q_r], [1 - p_r, p_r]]``).

The classes are the labels found in any rater, ascending (a label no rater used
is not a class).  The fused label is the class of largest posterior; an exact
tie goes to the lowest class.  A class whose posterior mass is 0 everywhere has
a NaN row in every confusion matrix (nothing to estimate it from).

Compared with SimpleITK's ``MultiLabelSTAPLEImageFilter`` (tests/fusion/
test_staple.py runs both): ITK takes the classes 0..max label, starts from the
*hard* majority vote with the initial matrices normalised the other way round
(``P(true | said)``), and up to ITK 5.4 a voting tie in that seed is counted in
the wrong matrix row (ITK issue #6575, item B10); a tie of posteriors becomes an
extra "undecided" label (max label + 1) and the posteriors are not returned.
With 4 or 5 raters both reach the same labels and confusion matrices (to 1e-6);
with 2 raters, whose every disagreement is a seed tie, they differ.

Examples
--------
>>> import numpy as np
>>> truth = np.array([[0, 1, 2, 2]])
>>> result = multilabel_staple({"a": truth, "b": truth, "c": [[0, 1, 2, 1]]})
>>> result.labels.tolist(), result.classes
([[0, 1, 2, 2]], [0, 1, 2])
>>> result.confusion["c"].round(2).tolist()
[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.fusion._checks import check_count, check_raters, check_tol, present_labels

__all__ = ["MultiStapleResult", "multilabel_staple"]

_EPS = 1e-12


@dataclass(frozen=True)
class MultiStapleResult:
    """The outcome of :func:`multilabel_staple`.

    Attributes
    ----------
    labels : ndarray
        The fused label map (class of largest posterior), dtype of the raters' stack.
    posterior : ndarray of float32, shape (K, *shape)
        ``P(true class = classes[k] | raters)`` per voxel; sums to 1 over ``k``.
    classes : list of int
        The labels found in the raters, ascending; index ``k`` of ``posterior``
        and of the confusion matrices.
    confusion : dict[str, ndarray (K, K)]
        Per rater id, ``P(rater says classes[j] | true classes[s])`` at ``[s, j]``.
    iterations : int
        EM iterations run.
    converged : bool
        Whether the matrices settled within ``tol`` before ``max_iter``.
    prior : ndarray (K,)
        The class priors used.
    """

    labels: np.ndarray
    posterior: np.ndarray
    classes: list[int]
    confusion: dict[str, np.ndarray]
    iterations: int
    converged: bool
    prior: np.ndarray


def _patterns(index: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct columns of class indices ``(R, N)``: ``(patterns (P, R), counts, inverse)``."""
    n_raters = index.shape[0]
    if n_raters * math.log2(max(n_classes, 2)) >= 62:
        patterns, inverse, counts = np.unique(
            index.T, axis=0, return_inverse=True, return_counts=True
        )
        return patterns, counts, inverse.ravel()
    powers = n_classes ** np.arange(n_raters, dtype=np.int64)
    codes = np.zeros(index.shape[1], np.int64)
    for r in range(n_raters):
        codes += index[r].astype(np.int64) * powers[r]
    if n_classes**n_raters <= 1 << 16:
        counts = np.bincount(codes, minlength=n_classes**n_raters)
        unique = np.flatnonzero(counts)
        lookup = np.zeros(counts.size, np.int64)
        lookup[unique] = np.arange(unique.size)
        counts, inverse = counts[unique], lookup[codes]
    else:
        unique, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    return (unique[:, None] // powers) % n_classes, counts, inverse.ravel()


def _class_prior(prior, classes: list[int]) -> np.ndarray | None:
    if prior is None:
        return None
    if isinstance(prior, Mapping):
        keys = {int(k) for k in prior}
        if keys != set(classes):
            raise InvalidArgumentError(
                f"prior must give one probability per class {classes}, got classes {sorted(keys)}"
            )
        values = [prior[next(k for k in prior if int(k) == c)] for c in classes]
    elif isinstance(prior, (Sequence, np.ndarray)) and not isinstance(prior, (str, bytes)):
        values = list(np.ravel(np.asarray(prior, dtype=object)))
    else:
        raise InvalidArgumentError(
            f"prior must be a sequence or a mapping class -> probability, got {prior!r}"
        )
    try:
        out = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"prior must hold numbers, got {prior!r}") from None
    if out.shape != (len(classes),) or not np.all(np.isfinite(out)) or np.any(out <= 0):
        raise InvalidArgumentError(
            f"prior must be {len(classes)} probabilities > 0 for the classes {classes}, "
            f"got {prior!r}"
        )
    if abs(out.sum() - 1.0) > 1e-6:
        raise InvalidArgumentError(f"prior must sum to 1, got sum {out.sum():.6g}")
    return out


def _log_posterior(patterns, log_theta, log_prior):
    """Unnormalised log posterior (P, K) of the patterns."""
    out = np.broadcast_to(log_prior, (patterns.shape[0], log_prior.size)).copy()
    for r in range(patterns.shape[1]):
        out += log_theta[r][:, patterns[:, r]].T
    return out


def _posterior(patterns, theta, prior):
    with np.errstate(divide="ignore"):
        log_w = _log_posterior(patterns, np.log(theta), np.log(prior))
    impossible = ~np.isfinite(log_w.max(axis=1))
    if impossible.any():  # every class ruled out by some perfect rater: clip to keep a posterior
        clipped = np.log(np.clip(theta, _EPS, 1.0))
        log_w[impossible] = _log_posterior(
            patterns[impossible], clipped, np.log(np.clip(prior, _EPS, 1.0))
        )
    log_w -= log_w.max(axis=1, keepdims=True)
    weight = np.exp(log_w)
    return weight / weight.sum(axis=1, keepdims=True)


def _fit(onehot, counts, prior, max_iter, tol):
    """EM on vote patterns ``onehot (P, R, K)``: W (P, K), theta (R, K, K), iterations, done."""
    patterns = onehot.argmax(axis=2)
    n_classes = onehot.shape[2]
    weight, last = onehot.mean(axis=1), None
    for iteration in range(1, max_iter + 1):
        mass = counts[:, None] * weight
        total = mass.sum(axis=0)[None, :, None]
        theta = np.einsum("ps,prj->rsj", mass, onehot)
        theta = np.divide(theta, total, out=np.full_like(theta, np.nan), where=total > 0)
        uninformative = np.where(np.isnan(theta), 1.0 / n_classes, theta)
        weight = _posterior(patterns, uninformative, prior)
        if last is not None:
            change = np.abs(np.where(np.isnan(theta) & np.isnan(last), 0.0, theta - last))
            if np.max(np.where(np.isnan(change), np.inf, change)) <= tol:
                return weight, theta, iteration, True
        last = theta
    return weight, theta, max_iter, False


def multilabel_staple(
    raters, *, prior=None, max_iter: int = 100, tol: float = 1e-7
) -> MultiStapleResult:
    """Multi-label STAPLE consensus of two or more raters' label maps.

    Parameters
    ----------
    raters : Mapping[str, array] or Sequence[array]
        Label maps (non-negative integers) of one shape, at least 2 raters.
    prior : Sequence[float] or Mapping[int, float], optional
        Class priors > 0 summing to 1, in the order of the classes (the labels
        found, ascending) or by label.  Default: each class's share of all votes.
    max_iter : int
        Most EM iterations.
    tol : float
        Stop when no confusion-matrix entry changed by more than this.

    Returns
    -------
    MultiStapleResult

    Raises
    ------
    InvalidArgumentError
        Fewer than 2 raters, bad label maps, a bad prior, ``max_iter`` or ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[0, 3, 3]]); b = np.array([[0, 3, 0]])
    >>> result = multilabel_staple([a, b, a])
    >>> result.labels.tolist(), result.posterior.shape
    ([[0, 3, 3]], (2, 1, 3))
    """
    max_iter = check_count(max_iter, "max_iter", least=1)
    tol = check_tol(tol)
    ids, stack = check_raters(raters)
    if len(ids) < 2:
        raise InvalidArgumentError(
            f"raters: STAPLE needs at least 2 raters, got 1 ({ids[0]!r}); with one rater the "
            "consensus is that rater's label map"
        )
    classes = present_labels(stack)
    n_classes, shape = len(classes), stack.shape[1:]
    fixed_prior = _class_prior(prior, classes.tolist())
    index = np.searchsorted(classes, stack.reshape(len(ids), -1))
    patterns, counts, inverse = _patterns(index, n_classes)
    onehot = (patterns[:, :, None] == np.arange(n_classes)).astype(float)  # (P, R, K)
    if fixed_prior is None:
        fixed_prior = counts @ onehot.mean(axis=1) / counts.sum()
    weight, theta, iterations, converged = _fit(onehot, counts, fixed_prior, max_iter, tol)
    posterior = weight[inverse].T.astype(np.float32).reshape(n_classes, *shape)
    labels = classes[np.argmax(weight, axis=1)][inverse].astype(stack.dtype).reshape(shape)
    return MultiStapleResult(
        labels=labels,
        posterior=posterior,
        classes=classes.tolist(),
        confusion={rater: theta[r] for r, rater in enumerate(ids)},
        iterations=iterations,
        converged=converged,
        prior=np.asarray(fixed_prior, dtype=float),
    )
