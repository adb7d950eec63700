"""Splitting the cases of a dataset into train / val / test without splitting a group.

:func:`split_cases` keeps every group (a subject, or any metadata column such
as the centre) within one split; :func:`split_sizes` gives the number of
groups per split from fractions.  Re-exported by :mod:`segloop.io.dataset`.

Examples
--------
>>> split_sizes(10, [0.6, 0.2, 0.2])
[6, 2, 2]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from segloop.errors import InvalidArgumentError

if TYPE_CHECKING:
    from segloop.io.dataset import Case

__all__ = ["split_cases", "split_sizes"]

_SPLIT_NAMES = {2: ("train", "test"), 3: ("train", "val", "test")}


def _fractions(fractions) -> dict[str, float]:
    if isinstance(fractions, Mapping):
        named = {str(k): v for k, v in fractions.items()}
    else:
        values = list(fractions)
        if len(values) not in _SPLIT_NAMES:
            raise InvalidArgumentError(
                f"fractions must have 2 (train, test) or 3 (train, val, test) values, "
                f"got {values!r}; name the splits with a dict for other counts"
            )
        named = dict(zip(_SPLIT_NAMES[len(values)], values, strict=True))
    try:
        out = {k: float(v) for k, v in named.items()}
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"fractions must be numbers, got {named!r}") from exc
    if not out or any(not math.isfinite(v) or v < 0 for v in out.values()):
        raise InvalidArgumentError(f"fractions must be finite and >= 0, got {named!r}")
    if abs(sum(out.values()) - 1.0) > 1e-6:
        raise InvalidArgumentError(f"fractions must add up to 1, got {sum(out.values()):g}")
    return out


def _group_of(case: Case, by: str) -> Any:
    if by == "subject":
        return (str(case.metadata.get("dataset", ".")), case.subject)
    if by in ("id", "case"):
        return case.id
    if by in ("session", "contrast"):
        return getattr(case, by)
    return case.metadata.get(by)


def split_sizes(n_groups: int, fractions: Sequence[float]) -> list[int]:
    """Number of groups per split: largest-remainder rounding, no split left empty.

    Each split first gets ``floor(fraction * n_groups)`` groups; the groups
    left over go one each to the splits with the largest remainders (ties: the
    split named first).  Then, while some split with a positive fraction has
    no group and another has two or more, the largest split (first named on a
    tie) gives it one.

    Examples
    --------
    >>> split_sizes(10, [0.6, 0.2, 0.2]), split_sizes(7, [0.6, 0.2, 0.2])
    ([6, 2, 2], [4, 2, 1])
    >>> split_sizes(3, [0.8, 0.1, 0.1])
    [1, 1, 1]
    """
    ideal = [f * n_groups for f in fractions]
    sizes = [math.floor(x + 1e-9) for x in ideal]
    left = n_groups - sum(sizes)
    for i in sorted(range(len(ideal)), key=lambda i: (-(ideal[i] - sizes[i]), i))[:left]:
        sizes[i] += 1
    for i, f in enumerate(fractions):
        if f > 0 and sizes[i] == 0:
            donor = max(range(len(sizes)), key=lambda j: (sizes[j], -j))
            if sizes[donor] >= 2:
                sizes[donor] -= 1
                sizes[i] += 1
    return sizes


def split_cases(
    cases: Iterable[Case], *, fractions=(0.6, 0.2, 0.2), by: str = "subject", seed: int = 0
) -> dict[str, list[Case]]:
    """Split cases into named parts so that all cases of one group share a part.

    Parameters
    ----------
    cases : iterable of Case
        The cases (their order does not matter: groups are sorted first).
    fractions : sequence of float or dict of str to float
        ``(train, val, test)``, ``(train, test)``, or named fractions; they
        must add up to 1.  Fractions count *groups*, not cases.
    by : str
        ``"subject"`` (within its BIDS sub-dataset), ``"id"`` (each case
        alone), ``"session"``, ``"contrast"``, or any metadata key (e.g.
        ``"institution_id"``, ``"centre"``).
    seed : int
        Seed of the shuffle of the sorted groups.

    Returns
    -------
    dict of str to list of Case
        Every split name, in the order given, with its cases sorted by id.

    Raises
    ------
    InvalidArgumentError
        Bad fractions, or ``by`` is missing (or null) for some cases.

    Notes
    -----
    Groups are sorted by their key, shuffled with
    ``numpy.random.default_rng(seed)``, and cut in order into runs whose
    lengths come from :func:`split_sizes`.

    Examples
    --------
    >>> from pathlib import Path
    >>> from segloop.io import Case
    >>> cs = [Case(f"c{i}", f"s{i // 2}", Path(f"{i}.png")) for i in range(8)]
    >>> parts = split_cases(cs, fractions={"train": 0.5, "test": 0.5}, seed=1)
    >>> sorted(len(v) for v in parts.values())
    [4, 4]
    """
    named = _fractions(fractions)
    cases = list(cases)
    missing = [c.id for c in cases if _group_of(c, by) is None]
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise InvalidArgumentError(
            f"cannot split by {by!r}: {len(missing)} case(s) have no "
            f"{by!r} value: {', '.join(sorted(missing)[:10])}{more}"
        )
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(repr(_group_of(case, by)), []).append(case)
    keys = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    sizes = split_sizes(len(keys), list(named.values()))
    out: dict[str, list[Case]] = {}
    start = 0
    for name, size in zip(named, sizes, strict=True):
        chosen = [c for i in order[start : start + size] for c in groups[keys[i]]]
        out[name] = sorted(chosen, key=lambda c: c.id)
        start += size
    return out
