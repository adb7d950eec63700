"""Learning-curve arithmetic of active learning: label schedule, area, labels to a target.

A learning curve is the test Dice after each round against the number of
labelled images at that round. All seeds of a run share the label schedule
(:func:`label_schedule`), so curves are averaged point by point
(:func:`mean_curve`). :func:`curve_auc` is the area under a curve divided by
its label range (a mean Dice in [0, 1], comparable across budgets), and
:func:`labels_to_reach` the fewest labels at which a curve reaches a target
(0.95 × the full-data Dice in the benchmark), None when it never does.

Examples
--------
>>> label_schedule(initial=10, step=20, budget=55)
[10, 30, 50, 55]
>>> curve_auc([10, 20, 30], [0.5, 0.7, 0.7])
0.65
>>> labels_to_reach([10, 20, 30], [0.5, 0.7, 0.8], 0.7), labels_to_reach([10], [0.5], 0.9)
(20, None)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segloop.errors import InvalidArgumentError

__all__ = ["check_schedule", "curve_auc", "label_schedule", "labels_to_reach", "mean_curve",
           "wins"]


def _count(value, flag: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidArgumentError(f"{flag} must be a whole number, got {value!r}")
    return int(value)


def check_schedule(*, initial: int, step: int, budget: int, pool: int | None = None) -> None:
    """Refuse a schedule that cannot run; each message names the flag.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        ``initial`` or ``step`` below 1, ``initial`` above ``budget``, or
        ``budget`` above the ``pool`` size.

    Examples
    --------
    >>> check_schedule(initial=5, step=5, budget=20, pool=10)
    Traceback (most recent call last):
    ...
    segloop.errors.InvalidArgumentError: --budget 20 is larger than the pool (10 ...)
    """
    initial, step, budget = (_count(initial, "--initial"), _count(step, "--step"),
                             _count(budget, "--budget"))
    if initial < 1:
        raise InvalidArgumentError(f"--initial must be at least 1, got {initial}")
    if step < 1:
        raise InvalidArgumentError(f"--step must be at least 1, got {step}")
    if initial > budget:
        raise InvalidArgumentError(f"--initial {initial} is larger than --budget {budget}")
    if pool is not None and budget > pool:
        raise InvalidArgumentError(f"--budget {budget} is larger than the pool ({pool} "
                                   "unlabelled training images)")


def label_schedule(*, initial: int, step: int, budget: int) -> list[int]:
    """Labelled images after each round: ``initial``, ``+step``..., ending at ``budget``.

    The last step is shorter when ``budget - initial`` is not a multiple of
    ``step`` (the budget is always the last point).
    """
    check_schedule(initial=initial, step=step, budget=budget)
    counts = list(range(initial, budget + 1, step))
    return counts if counts[-1] == budget else counts + [budget]


def mean_curve(curves: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Point-wise mean and standard deviation (over seeds) of equally long curves.

    Examples
    --------
    >>> m, s = mean_curve([[0.4, 0.8], [0.6, 0.6]])
    >>> m.tolist(), s.tolist()
    ([0.5, 0.7], [0.1, 0.1])
    """
    lengths = {len(c) for c in curves}
    if len(lengths) != 1:
        raise InvalidArgumentError(f"curves of different lengths {sorted(lengths)} cannot be "
                                   "averaged (runs with different schedules?)")
    stacked = np.asarray(curves, dtype=float)
    return stacked.mean(axis=0), stacked.std(axis=0)


def curve_auc(labels: Sequence[float], dice: Sequence[float]) -> float:
    """Area under Dice-vs-labels (trapezoids) divided by the label range.

    The result is the mean Dice over the label range, in [0, 1]; a single
    point gives its own Dice.

    Examples
    --------
    >>> curve_auc([10], [0.6])
    0.6
    >>> curve_auc([0, 10, 40], [0.0, 1.0, 1.0])
    0.875
    """
    x, y = np.asarray(labels, dtype=float), np.asarray(dice, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise InvalidArgumentError(f"a curve needs as many Dice values as label counts, got "
                                   f"{x.size} and {y.size}")
    if np.any(np.diff(x) <= 0):
        raise InvalidArgumentError(f"label counts must increase, got {x.tolist()}")
    if x.size == 1:
        return float(y[0])
    area = float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)
    return area / float(x[-1] - x[0])


def labels_to_reach(labels: Sequence[int], dice: Sequence[float],
                    target: float | None) -> int | None:
    """The fewest labels at which ``dice`` reaches ``target`` (measured points only).

    None when the curve never reaches it, or when there is no target (no
    full-data reference).
    """
    if target is None:
        return None
    for n, d in zip(labels, dice, strict=True):
        if d is not None and d >= target:
            return int(n)
    return None


def wins(aucs: dict[int, float], reference: dict[int, float]) -> int:
    """Seeds where ``aucs`` beats ``reference`` (both keyed by seed; shared seeds only).

    Examples
    --------
    >>> wins({0: 0.7, 1: 0.6, 2: 0.8}, {0: 0.65, 1: 0.6, 2: 0.7})
    2
    """
    return sum(1 for s, a in aucs.items() if s in reference and a > reference[s])
