"""Per-label metrics of a label map against a reference label map.

Each foreground label ``k`` is scored as the binary pair
``(pred == k, truth == k)`` with the functions of
:mod:`segloop.metrics.overlap` and :mod:`segloop.metrics.surface`, so the
empty-mask conventions are theirs: a label absent from both maps scores as a
perfect match (dice 1, hd95 0), a label absent from one map only gives
dice 0 and infinite surface distances (and a NaN precision or recall).

Metric names (the same in the CLI, the JSON output and the benchmarks):
``dice``, ``iou``, ``precision``, ``recall``, ``rvd`` (signed relative volume
difference), ``hd95``, ``hausdorff`` and ``assd``.

Examples
--------
>>> import numpy as np
>>> truth = np.array([[1, 1, 2, 2]])
>>> pred = np.array([[1, 1, 1, 2]])
>>> scores = label_metrics(pred, truth, metrics=("dice", "hd95"))
>>> scores
{1: {'dice': 0.8, 'hd95': 0.9}, 2: {'dice': 0.667, 'hd95': 0.95}}
>>> mean_over_labels(scores)
{'dice': 0.733, 'hd95': 0.925}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.metrics.overlap import FROM_COUNTS, check_pair, confusion_counts
from segloop.metrics.surface import (
    FROM_DISTANCES,
    check_spacing,
    surface_distances,
    symmetric_statistic,
)

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "check_labels",
    "check_metric_names",
    "foreground_labels",
    "label_metrics",
    "mean_over_labels",
]

#: Every metric :func:`label_metrics` knows, by name.
METRICS = (*FROM_COUNTS, *FROM_DISTANCES)
#: The metrics computed when none are named.
DEFAULT_METRICS = ("dice", "iou", "precision", "recall", "rvd", "hd95", "assd")


def _check_label_map(array: np.ndarray, name: str) -> None:
    """Refuse a float label map with non-integer values."""
    if np.issubdtype(array.dtype, np.floating):
        bad = array != np.rint(array)
        if bad.any():
            raise InvalidArgumentError(
                f"{name} is not a label map: it holds non-integer values "
                f"(e.g. {float(array[bad][0]):g})"
            )


def check_metric_names(metrics: Iterable[str]) -> tuple[str, ...]:
    """Validate metric names, keeping their order and dropping repeats.

    Parameters
    ----------
    metrics : iterable of str
        Names from :data:`METRICS`.

    Returns
    -------
    tuple of str
        The names, each once.

    Raises
    ------
    InvalidArgumentError
        For an unknown name (the message lists the known ones) or no name.

    Examples
    --------
    >>> check_metric_names(["dice", "hd95", "dice"])
    ('dice', 'hd95')
    """
    names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise InvalidArgumentError(
            f"unknown metric(s) {', '.join(map(repr, unknown))} (--metrics); "
            f"choose from {', '.join(METRICS)}"
        )
    if not names:
        raise InvalidArgumentError("metrics (--metrics) must name at least one metric")
    return tuple(dict.fromkeys(names))


def check_labels(labels: Iterable) -> list[int]:
    """Validate the labels to score: positive integers, sorted, each once.

    Parameters
    ----------
    labels : iterable of int
        Label values (CLI: ``--labels``).

    Returns
    -------
    list of int
        The labels, sorted, without repeats.

    Raises
    ------
    InvalidArgumentError
        For a value that is not a positive integer (the message names it),
        or no label at all.

    Examples
    --------
    >>> check_labels([3, 1, 3])
    [1, 3]
    >>> check_labels([2, -1])
    Traceback (most recent call last):
    ...
    segloop.errors.InvalidArgumentError: label -1 cannot be scored: labels (--labels) ...
    """
    values = []
    for label in labels:
        if isinstance(label, bool) or not isinstance(label, int | np.integer):
            raise InvalidArgumentError(
                f"labels (--labels) must be positive integers, got {label!r}"
            )
        if label <= 0:
            why = " (0 is the background)" if label == 0 else ""
            raise InvalidArgumentError(
                f"label {int(label)} cannot be scored: labels (--labels) are positive integers{why}"
            )
        values.append(int(label))
    if not values:
        raise InvalidArgumentError("labels (--labels) must name at least one label")
    return sorted(set(values))


def foreground_labels(pred, truth) -> list[int]:
    """The non-zero values present in either label map, sorted.

    Parameters
    ----------
    pred, truth : array_like
        Label maps of the same shape.

    Returns
    -------
    list of int
        Sorted labels (possibly empty when both maps are all background).

    Examples
    --------
    >>> import numpy as np
    >>> foreground_labels(np.array([[0, 3]]), np.array([[1, 1]]))
    [1, 3]
    """
    p, t = check_pair(pred, truth)
    values = np.union1d(np.unique(p), np.unique(t))
    return [int(v) for v in values if v != 0]


def label_metrics(
    pred,
    truth,
    *,
    labels=None,
    spacing=None,
    metrics=DEFAULT_METRICS,
) -> dict[int, dict[str, float]]:
    """Score every foreground label of a label map against the reference.

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference label maps of the same 2D or 3D shape
        (integers, booleans, or floats holding integer values; 0 is
        background).
    labels : iterable of int, optional
        The labels to score.  None (default) scores every non-zero value
        present in either map.  A label present in neither map scores as a
        perfect (empty) match.
    spacing : sequence of float, optional
        Voxel size along each array axis ``(z, y, x)`` / ``(y, x)``, for the
        surface metrics; None means 1.
    metrics : sequence of str, optional
        Names from :data:`METRICS`; default :data:`DEFAULT_METRICS`.

    Returns
    -------
    dict
        ``{label: {metric: value}}``, labels sorted, metrics in the order
        asked.  Values are floats and may be NaN or ``inf`` for empty masks.

    Raises
    ------
    InvalidArgumentError
        If the shapes differ, an input is not a finite 2D/3D array or holds
        non-integer values, a label is 0 or not an integer, a metric name is
        unknown, or ``spacing`` does not give one positive number per axis.

    Notes
    -----
    The voxel counts and the surface distances of a label are computed once
    and shared by the metrics that need them.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((4, 4), int); truth[1:3, 1:3] = 2
    >>> label_metrics(truth, truth, metrics=["dice", "assd"])
    {2: {'dice': 1.0, 'assd': 0.0}}
    """
    p, t = check_pair(pred, truth)
    _check_label_map(p, "pred")
    _check_label_map(t, "truth")
    names = check_metric_names(metrics)
    sampling = check_spacing(spacing, p.ndim)
    chosen = foreground_labels(p, t) if labels is None else check_labels(labels)
    wants_counts = any(m in FROM_COUNTS for m in names)
    wants_surface = any(m in FROM_DISTANCES for m in names)
    results = {}
    for label in chosen:
        p_mask, t_mask = p == label, t == label
        values = {}
        if wants_counts:
            tp, fp, fn, _ = confusion_counts(p_mask, t_mask)
            values.update({m: FROM_COUNTS[m](tp, fp, fn) for m in names if m in FROM_COUNTS})
        if wants_surface:
            distances = surface_distances(p_mask, t_mask, spacing=sampling)
            values.update(
                {
                    m: symmetric_statistic(distances, FROM_DISTANCES[m])
                    for m in names
                    if m in FROM_DISTANCES
                }
            )
        results[label] = {m: float(values[m]) for m in names}
    return results


def mean_over_labels(per_label: Mapping[int, Mapping[str, float]]) -> dict[str, float]:
    """Average each metric over the labels, ignoring NaN values.

    Parameters
    ----------
    per_label : mapping
        ``{label: {metric: value}}`` as returned by :func:`label_metrics`.

    Returns
    -------
    dict of str to float
        ``{metric: mean}``.  NaN values (undefined precision or recall) are
        left out; a metric that is NaN for every label gives NaN.

    Notes
    -----
    An infinite value is kept, so a mean that includes an infinite surface
    distance is ``inf``: one label missing entirely is not averaged away.

    Examples
    --------
    >>> mean_over_labels({1: {"dice": 0.5, "precision": float("nan")},
    ...                   2: {"dice": 1.0, "precision": 0.25}})
    {'dice': 0.75, 'precision': 0.25}
    """
    means: dict[str, float] = {}
    for scores in per_label.values():
        for metric in scores:
            means.setdefault(metric, math.nan)
    for metric in means:
        kept = [s[metric] for s in per_label.values() if not math.isnan(s.get(metric, math.nan))]
        if kept:
            means[metric] = sum(kept) / len(kept)
    return means
