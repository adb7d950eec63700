"""Splitting cases into train / validation / test by group, never mixing a group.

A group is what ``data.split.by`` names (:func:`group_of`): the subject (the
default, so that the slices or sessions of a patient stay together), the case,
the session, the contrast or a metadata column such as ``institution``.
:func:`split_groups` shuffles the sorted groups with ``split.seed`` and takes
the test groups first, so the test split of a seed never changes when the
validation split does.

Examples
--------
>>> from pathlib import Path
>>> from segloop.io import Case
>>> case = Case("c1", "s1", Path("c1.png"), metadata={"site": "A"})
>>> group_of(case, "subject"), group_of(case, "case"), group_of(case, "site")
('s1', 'c1', 'A')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.io import Case
from segloop.learn.config import SplitConfig

__all__ = ["group_of", "split_groups"]


def group_of(case: Case, by: str) -> str | None:
    """The split group of ``case``: its subject, id, session, contrast or a metadata value."""
    if by == "subject":
        part = str(case.metadata.get("dataset", "."))
        return case.subject if part == "." else f"{part}/{case.subject}"
    if by in ("case", "id"):
        return case.id
    value = getattr(case, by) if by in ("session", "contrast") else case.metadata.get(by)
    return None if value is None else str(value)


def _pick(spec, name: str, order: list[str], total: int, owner: dict[str, str]) -> list[str]:
    """Groups for split ``name`` taken from ``order`` (the shuffled groups still free)."""
    if isinstance(spec, list):
        unknown = [i for i in spec if i not in owner]
        if unknown:
            raise InvalidArgumentError(f"data.split.{name}: unknown ids {unknown[:10]} (neither "
                                       "a group nor a case id)")
        wanted = {owner[i] for i in spec}
        taken = sorted(wanted - set(order))
        if taken:
            raise InvalidArgumentError(f"data.split.{name}: {taken[:10]} already in the test "
                                       "split")
        return [g for g in order if g in wanted]
    if isinstance(spec, float):
        if not 0 <= spec < 1:
            raise InvalidArgumentError(f"data.split.{name}: a fraction in [0, 1) or a count of "
                                       f"groups, got {spec}")
        count = int(np.floor(spec * total + 0.5))
        count = max(count, 1) if spec > 0 and total > 2 else count
    else:
        count = int(spec)
    if not 0 <= count <= len(order):
        raise InvalidArgumentError(f"data.split.{name}: {count} groups asked, {len(order)} left")
    return order[:count]


def split_groups(cases: Sequence[Case], split: SplitConfig) -> dict[str, list[Case]]:
    """``{"train", "val", "test"}`` cases: no group in two splits, test fixed for a seed.

    The sorted groups are shuffled with ``split.seed``; the test groups are taken
    first (a fraction of all groups, a count, or listed group/case ids), then
    the validation groups from the rest, so changing ``val`` never changes the
    test split.

    Examples
    --------
    >>> from pathlib import Path
    >>> cases = [Case(f"c{i}", f"s{i // 2}", Path(f"{i}.png")) for i in range(10)]
    >>> parts = split_groups(cases, SplitConfig(test=2, val=0.2))
    >>> {k: len(v) for k, v in parts.items()}
    {'train': 4, 'val': 2, 'test': 4}
    """
    groups: dict[str, list[Case]] = {}
    missing = []
    for case in cases:
        g = group_of(case, split.by)
        if g is None:
            missing.append(case.id)
        groups.setdefault(str(g), []).append(case)
    if missing:
        raise InvalidArgumentError(f"data.split.by: {len(missing)} case(s) have no "
                                   f"{split.by!r} value: {', '.join(missing[:10])}")
    keys = sorted(groups)
    order = [keys[i] for i in np.random.default_rng(split.seed).permutation(len(keys))]
    owner = {k: k for k in keys} | {c.id: str(group_of(c, split.by)) for c in cases}
    test = _pick(split.test, "test", order, len(keys), owner)
    rest = [g for g in order if g not in test]
    val = _pick(split.val, "val", rest, len(keys), owner)
    train = [g for g in rest if g not in val]
    if not train:
        raise InvalidArgumentError(f"data.split: no group left for training ({len(keys)} "
                                   f"groups by {split.by!r}, {len(test)} test, {len(val)} val)")
    return {name: sorted((c for g in part for c in groups[g]), key=lambda c: c.id)
            for name, part in (("train", train), ("val", val), ("test", test))}
