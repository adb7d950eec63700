"""Splitting cases by group into train / validation / test (segloop.learn.splitting)."""

from __future__ import annotations

from pathlib import Path

import pytest

from segloop.errors import InvalidArgumentError
from segloop.io import Case
from segloop.learn.config import SplitConfig
from segloop.learn.splitting import group_of, split_groups


def _cases(n_subjects: int, per: int = 2) -> list[Case]:
    return [Case(f"c{s}_{k}", f"s{s:02d}", Path(f"{s}_{k}.png"), metadata={"site": f"x{s % 3}"})
            for s in range(n_subjects) for k in range(per)]


def test_split_keeps_groups_apart_and_is_deterministic():
    cases = _cases(10)
    parts = split_groups(cases, SplitConfig(test=0.2, val=0.1, seed=3))
    assert {k: len(v) for k, v in parts.items()} == {"train": 14, "val": 2, "test": 4}
    groups = {k: {c.subject for c in v} for k, v in parts.items()}
    assert not groups["train"] & groups["test"] and not groups["val"] & groups["test"]
    assert not groups["train"] & groups["val"]
    assert split_groups(cases, SplitConfig(test=0.2, val=0.1, seed=3)) == parts
    # the test split does not move when val changes
    assert split_groups(cases, SplitConfig(test=0.2, val=3, seed=3))["test"] == parts["test"]
    assert split_groups(cases, SplitConfig(test=0.2, val=0.1, seed=4))["test"] != parts["test"]


def test_split_counts_lists_and_metadata_groups():
    cases = _cases(6)
    parts = split_groups(cases, SplitConfig(test=["s01", "c4_0"], val=1))
    assert [c.id for c in parts["test"]] == ["c1_0", "c1_1", "c4_0", "c4_1"]
    assert len(parts["val"]) == 2 and len(parts["train"]) == 6
    by_site = split_groups(cases, SplitConfig(by="site", test=1, val=0))
    assert len({c.metadata["site"] for c in by_site["test"]}) == 1
    assert by_site["val"] == []
    with pytest.raises(InvalidArgumentError, match=r"data.split.test: unknown ids \['nope'\]"):
        split_groups(cases, SplitConfig(test=["nope"]))
    with pytest.raises(InvalidArgumentError, match="no group left for training"):
        split_groups(cases, SplitConfig(test=4, val=2))
    with pytest.raises(InvalidArgumentError, match="data.split.by: 12 case"):
        split_groups(cases, SplitConfig(by="scanner"))


def test_groups_by_subject_case_session_and_metadata():
    case = Case("c1", "s1", Path("c1.png"), metadata={"site": "A", "dataset": "d2"})
    assert group_of(case, "subject") == "d2/s1"  # subjects of two datasets stay apart
    assert group_of(case, "case") == group_of(case, "id") == "c1"
    assert group_of(case, "site") == "A" and group_of(case, "scanner") is None
