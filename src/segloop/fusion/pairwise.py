"""Rater against rater: pairwise Dice, the agreement matrix over cases, groups of raters.

* :func:`pairwise_dice` -- Dice of every pair of raters on one case;
* :func:`agreement_matrix` -- the mean pairwise Dice over cases, raters being
  absent from some cases, with the number of cases behind each entry;
* :func:`group_agreement` -- agreement within groups of raters (e.g. one
  centre) against agreement between groups.

Two empty masks agree perfectly (Dice 1), as everywhere in :mod:`segloop.metrics`.

Examples
--------
>>> import numpy as np
>>> case = {"r1": np.eye(3), "r2": np.eye(3), "r3": np.ones((3, 3))}
>>> mean, counts = agreement_matrix([pairwise_dice(case)], ["r1", "r2", "r3"])
>>> mean.round(2).tolist(), int(counts[0, 2])
([[1.0, 1.0, 0.5], [1.0, 1.0, 0.5], [0.5, 0.5, 1.0]], 1)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.fusion.boundary import as_binary
from segloop.metrics.overlap import FROM_COUNTS

__all__ = ["agreement_matrix", "confusion", "group_agreement", "pairwise_dice"]


def confusion(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """``(TP, FP, FN)`` voxel counts of two boolean masks."""
    tp = int(np.count_nonzero(pred & truth))
    return tp, int(np.count_nonzero(pred)) - tp, int(np.count_nonzero(truth)) - tp


def pairwise_dice(raters: Mapping[str, object]) -> dict[tuple[str, str], float]:
    """Dice of every unordered pair of raters on one case.

    Parameters
    ----------
    raters : mapping of str to array_like
        Rater id -> 0/1 mask, all of one 2D or 3D shape.

    Returns
    -------
    dict
        ``(a, b) -> dice`` for every pair with ``a < b`` (ids compared as
        strings), in sorted order; empty for fewer than two raters.  Two empty
        masks have Dice 1 (the :mod:`segloop.metrics` convention).

    Raises
    ------
    InvalidArgumentError
        Not a mapping, a non-binary mask or shapes that differ (the rater id
        is named).

    Examples
    --------
    >>> pairwise_dice({"b": [[1, 1, 0]], "a": [[0, 1, 1]], "c": [[0, 1, 0]]})
    {('a', 'b'): 0.5, ('a', 'c'): 0.666..., ('b', 'c'): 0.666...}
    """
    if not isinstance(raters, Mapping):
        raise InvalidArgumentError(
            f"raters must be a mapping rater id -> mask, got {type(raters).__name__}"
        )
    masks: dict[str, np.ndarray] = {}
    for rater, value in raters.items():
        rid = str(rater)
        if rid in masks:
            raise InvalidArgumentError(f"raters: rater id {rid!r} repeats once made a string")
        masks[rid] = as_binary(value, f"rater {rid!r}")
    shapes = {m.shape for m in masks.values()}
    if len(shapes) > 1:
        listed = ", ".join(f"{rid!r} {m.shape}" for rid, m in masks.items())
        raise InvalidArgumentError(f"raters have different shapes: {listed}")
    ids = sorted(masks)
    return {
        (a, b): FROM_COUNTS["dice"](*confusion(masks[a], masks[b]))
        for i, a in enumerate(ids)
        for b in ids[i + 1 :]
    }


def _rater_ids(raters, name: str = "raters") -> list[str]:
    if isinstance(raters, (str, bytes, Mapping)) or not isinstance(raters, Sequence):
        raise InvalidArgumentError(f"{name} must be a sequence of rater ids, got {raters!r}")
    ids = [str(r) for r in raters]
    if len(set(ids)) != len(ids):
        raise InvalidArgumentError(f"{name}: rater ids repeat: {ids}")
    return ids


def agreement_matrix(
    per_case_pairs: Sequence[Mapping[tuple[str, str], float]], raters: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean pairwise Dice over cases, for raters who need not all label every case.

    Parameters
    ----------
    per_case_pairs : sequence of mapping
        One :func:`pairwise_dice` dict per case: ``(a, b) -> dice`` (either
        order of the pair; a pair once per case).
    raters : sequence of str
        The rater ids, in the order of the matrix rows.

    Returns
    -------
    mean : ndarray of float64, shape (R, R)
        Symmetric; entry ``(i, j)`` is the mean Dice of raters ``i`` and ``j``
        over the cases where both are present, NaN when they never are; 1 on
        the diagonal.
    counts : ndarray of int64, shape (R, R)
        Number of cases behind each entry; on the diagonal, the number of
        cases where the rater appears in a pair.

    Raises
    ------
    InvalidArgumentError
        A pair naming an id not in ``raters`` or a rater twice, a pair given
        twice in one case, or a value that is not a number in [0, 1] (the
        case index and pair are named).

    Examples
    --------
    >>> cases = [{("a", "b"): 0.8, ("a", "c"): 0.6}, {("a", "b"): 0.6}]
    >>> mean, counts = agreement_matrix(cases, ["a", "b", "c"])
    >>> mean.round(2).tolist()
    [[1.0, 0.7, 0.6], [0.7, 1.0, nan], [0.6, nan, 1.0]]
    >>> counts.tolist()
    [[2, 2, 1], [2, 2, 0], [1, 0, 1]]
    """
    ids = _rater_ids(raters)
    index = {rid: i for i, rid in enumerate(ids)}
    if isinstance(per_case_pairs, Mapping) or not isinstance(per_case_pairs, Sequence):
        raise InvalidArgumentError("per_case_pairs must be a sequence of per-case dicts of pairs")
    total = np.zeros((len(ids), len(ids)))
    counts = np.zeros((len(ids), len(ids)), dtype=np.int64)
    for n, pairs in enumerate(per_case_pairs):
        where = f"per_case_pairs[{n}]"
        if not isinstance(pairs, Mapping):
            raise InvalidArgumentError(f"{where} must be a dict (a, b) -> dice, got {pairs!r}")
        seen: set[tuple[int, int]] = set()
        for pair, value in pairs.items():
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise InvalidArgumentError(f"{where}: key {pair!r} is not a pair of rater ids")
            a, b = (str(p) for p in pair)
            unknown = [r for r in (a, b) if r not in index]
            if unknown or a == b:
                problem = f"unknown rater {unknown[0]!r} (raters: {ids})" if unknown else "twice"
                raise InvalidArgumentError(f"{where}: pair {pair!r} names {problem}")
            i, j = sorted((index[a], index[b]))
            if (i, j) in seen:
                raise InvalidArgumentError(f"{where}: pair {pair!r} is given twice")
            seen.add((i, j))
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if not (ok and 0.0 <= float(value) <= 1.0):
                raise InvalidArgumentError(
                    f"{where}: {pair!r} -> {value!r} is not a Dice in [0, 1]"
                )
            total[i, j] += float(value)
            counts[i, j] += 1
        for k in {k for pair in seen for k in pair}:
            counts[k, k] += 1
    counts = counts + np.triu(counts, 1).T
    total = total + total.T
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / counts
    np.fill_diagonal(mean, 1.0)
    return mean, counts


def group_agreement(matrix, raters: Sequence[str], groups: Mapping[str, str]) -> dict:
    """Agreement within groups of raters against agreement between groups.

    Parameters
    ----------
    matrix : array_like, shape (R, R)
        Mean pairwise Dice, e.g. from :func:`agreement_matrix` (NaN: the pair
        never labelled a case together; only the upper triangle is read).
    raters : sequence of str
        The rater id of each row.
    groups : mapping of str to str
        Rater id -> group (e.g. centre).  Every rater of ``raters`` needs one;
        ids not in ``raters`` are ignored.

    Returns
    -------
    dict
        ``within``: mean of the pairwise means over the pairs of raters of the
        same group; ``between``: over the pairs of different groups;
        ``pairs_within`` / ``pairs_between``: the numbers of pairs averaged
        (pairs with a NaN entry are left out); ``per_group``: for each group
        (sorted) ``{"raters": sorted ids, "within": float, "pairs": int}``.  A
        group of one rater has no pair: its ``within`` is NaN, it adds nothing
        to ``within`` and its pairs with other groups count in ``between``.
        A mean over no pair is NaN.

    Raises
    ------
    InvalidArgumentError
        ``matrix`` is not square of ``len(raters)``, or a rater has no group.

    Examples
    --------
    >>> m = [[1, .9, .6, .5], [.9, 1, .7, .6], [.6, .7, 1, .8], [.5, .6, .8, 1]]
    >>> g = group_agreement(m, ["a", "b", "c", "d"], {"a": "x", "b": "x", "c": "y", "d": "y"})
    >>> round(g["within"], 3), round(g["between"], 3), g["pairs_within"], g["pairs_between"]
    (0.85, 0.6, 2, 4)
    >>> g["per_group"]["y"]
    {'raters': ['c', 'd'], 'within': 0.8, 'pairs': 1}
    """
    ids = _rater_ids(raters)
    try:
        mat = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError("matrix must be a square array of numbers") from None
    if mat.shape != (len(ids), len(ids)):
        raise InvalidArgumentError(
            f"matrix has shape {mat.shape} but there are {len(ids)} raters {ids}"
        )
    if not isinstance(groups, Mapping):
        raise InvalidArgumentError(f"groups must be a mapping rater id -> group, got {groups!r}")
    group_of = {str(k): str(v) for k, v in groups.items()}
    missing = [r for r in ids if r not in group_of]
    if missing:
        raise InvalidArgumentError(f"groups: raters {missing} have no group")
    within: dict[str, list[float]] = {group_of[r]: [] for r in ids}
    between: list[float] = []
    for i, a in enumerate(ids):
        for j in range(i + 1, len(ids)):
            value = mat[i, j]
            if math.isnan(value):
                continue
            same = group_of[a] == group_of[ids[j]]
            (within[group_of[a]] if same else between).append(float(value))
    pooled = [v for values in within.values() for v in values]

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else float("nan")

    return {
        "within": mean(pooled),
        "between": mean(between),
        "pairs_within": len(pooled),
        "pairs_between": len(between),
        "per_group": {
            group: {
                "raters": sorted(r for r in ids if group_of[r] == group),
                "within": mean(within[group]),
                "pairs": len(within[group]),
            }
            for group in sorted(within)
        },
    }
