"""The simulated active-learning loop on tiny phantoms, and its learning-curve arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import write_phantom_pairs
from segloop.errors import InvalidArgumentError
from segloop.learn import active, strategies
from segloop.learn.active import ActiveLearning, check_strategies
from segloop.learn.active_curves import (
    check_schedule,
    curve_auc,
    label_schedule,
    labels_to_reach,
    mean_curve,
    wins,
)
from segloop.learn.config import load_config

POOL = 8  # 12 phantoms, 4 of them the test split


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> Path:
    """12 PNG phantoms 32² with one blob each, as images/ + labels/."""
    return write_phantom_pairs(tmp_path_factory.mktemp("al"), 12, (32, 32), prefix="p",
                               n_blobs=1)


def _cfg(data: Path, out: Path, **changes):
    raw = {"data": {"path": str(data), "split": {"test": 4, "val": 0}},
           "model": {"channels": [4, 8], "num_res_units": 0, "dropout": 0.2},
           "augmentation": {"enabled": False},
           "training": {"epochs": 1, "iterations_per_epoch": 2, "batch_size": 2, "threads": 1},
           "output": {"dir": str(out), "tensorboard": False}}
    for key, value in changes.items():
        section, name = key.split("__")
        raw[section][name] = value
    return load_config(raw)


class Spy:
    """Wraps ``train`` / ``strategies.select``, recording what they are given."""

    def __init__(self, monkeypatch):
        self.trained, self.pools = [], []
        real_train, real_select = active.train, strategies.select

        def train(cfg, *, data, log):
            self.trained.append({"cfg": cfg, "train": [(v.id, v.label) for v in data.train],
                                 "test": [v.id for v in data.test]})
            return real_train(cfg, data=data, log=log)

        def select(strategy, pool, model, k, *, labelled=(), seed=0):
            self.pools.append({"pool": [(v.id, v.label) for v in pool],
                               "labelled": [v.id for v in labelled], "k": k})
            return real_select(strategy, pool, model, k, labelled=labelled, seed=seed)

        monkeypatch.setattr(active, "train", train)
        monkeypatch.setattr(strategies, "select", select)


def _quiet(line):
    pass


# ----------------------------------------------------------------------------- the loop
def test_rounds_reach_the_budget_warm_started_with_distinct_ids(phantoms, tmp_path):
    loop = ActiveLearning(_cfg(phantoms, tmp_path / "cfg-out"), initial=2, step=3, budget=7,
                          out_dir=tmp_path / "al", log=_quiet)
    assert len(loop.pool) == POOL and loop.schedule == [2, 5, 7]
    run = loop.run("random", seed=0)
    assert run["labels"] == [2, 5, 7] and run["pool"] == POOL
    assert [len(r["selected"]) for r in run["rounds"]] == [2, 3, 2]
    assert len(run["labelled"]) == len(set(run["labelled"])) == 7
    assert set(run["labelled"]) <= {v.id for v in loop.pool}
    assert all(0.0 <= d <= 1.0 for d in run["dice"])
    r0, r1, r2 = run["rounds"]
    assert r0["init_from"] is None
    assert r0["checkpoint"] == str(tmp_path / "al/seed0/round00/best.pt")
    assert r1["init_from"] == r0["checkpoint"] and r2["init_from"] == r1["checkpoint"]
    assert r2["checkpoint"] == str(tmp_path / "al/seed0/random/round02/best.pt")
    written = yaml.safe_load((tmp_path / "al/seed0/random/round01/config.yaml").read_text())
    assert written["training"]["init_from"] == r0["checkpoint"]
    assert written["training"]["resume"] is False and written["training"]["seed"] == 1
    assert r0["select_seconds"] == 0.0 and r1["select_seconds"] > 0.0


def test_round_zero_is_drawn_once_per_seed_and_shared(phantoms, tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    loop = ActiveLearning(_cfg(phantoms, tmp_path), initial=3, step=2, budget=5, log=_quiet)
    first = loop.initial_ids(0)
    assert first == ActiveLearning(_cfg(phantoms, tmp_path / "b"), initial=3, step=2,
                                   budget=5, log=_quiet).initial_ids(0)
    assert first != loop.initial_ids(1) and len(first) == 3
    a, b = loop.run("random", seed=0), loop.run("entropy", seed=0)
    assert len(spy.trained) == 1 + 1 + 1  # round 0 once, one later round per strategy
    assert a["rounds"][0]["selected"] == b["rounds"][0]["selected"] == first
    assert a["dice"][0] == b["dice"][0]
    assert [a["rounds"][0]["reused"], b["rounds"][0]["reused"]] == [False, True]
    loop.run("random", seed=1)
    assert len(spy.trained) == 5 and sorted(i for i, _ in spy.trained[3]["train"]) == sorted(
        loop.initial_ids(1))


def test_training_only_ever_sees_revealed_labels(phantoms, tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    loop = ActiveLearning(_cfg(phantoms, tmp_path), initial=2, step=2, budget=6, log=_quiet)
    run = loop.run("entropy", seed=3)
    test_ids = {v.id for v in loop.data.test}
    revealed = []
    for rnd, call in zip(run["rounds"], spy.trained, strict=True):
        revealed += rnd["selected"]
        ids = [i for i, _ in call["train"]]
        assert sorted(ids) == sorted(revealed)  # exactly the labelled images, nothing else
        assert all(label is not None for _, label in call["train"])
        assert not set(ids) & test_ids and set(call["test"]) == test_ids
    assert len(spy.pools) == 2
    for call, rnd in zip(spy.pools, run["rounds"][1:], strict=True):
        assert all(label is None for _, label in call["pool"])  # the strategy sees no label
        assert len(call["pool"]) == POOL - len(call["labelled"]) and call["k"] == 2
        assert not {i for i, _ in call["pool"]} & set(call["labelled"])
        assert set(rnd["selected"]) <= {i for i, _ in call["pool"]}


def test_candidates_limit_the_images_ranked(phantoms, tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    loop = ActiveLearning(_cfg(phantoms, tmp_path), initial=2, step=2, budget=4, candidates=3,
                          log=_quiet)
    run = loop.run("tta", seed=0)
    (call,) = spy.pools
    assert len(call["pool"]) == 3 and run["rounds"][1]["candidates"] == 3
    assert set(run["rounds"][1]["selected"]) <= {i for i, _ in call["pool"]}
    with pytest.raises(InvalidArgumentError, match="--candidates 1 is smaller than --step 2"):
        ActiveLearning(_cfg(phantoms, tmp_path), initial=2, step=2, budget=4, candidates=1)


def test_full_data_reference_trains_the_whole_pool_once(phantoms, tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    loop = ActiveLearning(_cfg(phantoms, tmp_path), initial=2, step=3, budget=8, log=_quiet)
    ref = loop.full_data(seed=0)
    assert ref["labels"] == POOL and ref["epochs"] == 3  # 1 epoch x 3 rounds of the schedule
    assert loop.full_data(seed=0) == ref and len(spy.trained) == 1
    assert sorted(i for i, _ in spy.trained[0]["train"]) == sorted(v.id for v in loop.pool)
    assert spy.trained[0]["cfg"].training.init_from is None
    assert loop.full_data(seed=0, epochs=1)["epochs"] == 1 and len(spy.trained) == 2


@pytest.mark.parametrize("schedule, message", [
    ((2, 2, 9), "--budget 9 is larger than the pool (8 unlabelled"),
    ((0, 2, 4), "--initial must be at least 1, got 0"),
    ((2, 0, 4), "--step must be at least 1, got 0"),
    ((5, 2, 4), "--initial 5 is larger than --budget 4"),
    ((2.5, 2, 4), "--initial must be a whole number, got 2.5"),
])
def test_bad_schedules_are_named(phantoms, tmp_path, schedule, message):
    initial, step, budget = schedule
    with pytest.raises(InvalidArgumentError) as err:
        ActiveLearning(_cfg(phantoms, tmp_path), initial=initial, step=step, budget=budget,
                       log=_quiet)
    assert message in str(err.value)


def test_bad_strategy_or_data_fail_before_any_training(phantoms, tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    loop = ActiveLearning(_cfg(phantoms, tmp_path), initial=2, step=2, budget=4, log=_quiet)
    with pytest.raises(InvalidArgumentError, match="--strategy: unknown strategy 'uncertain'"):
        loop.run("uncertain")
    no_dropout = ActiveLearning(_cfg(phantoms, tmp_path / "d", model__dropout=0.0), initial=2,
                                step=2, budget=4, log=_quiet)
    with pytest.raises(InvalidArgumentError, match="mc_dropout needs a network with dropout"):
        no_dropout.run("mc_dropout")
    assert spy.trained == []
    with pytest.raises(InvalidArgumentError, match=r"data.split.test: .*\(0 test cases\)"):
        ActiveLearning(_cfg(phantoms, tmp_path / "t", data__split={"test": 0, "val": 0}),
                       initial=2, step=2, budget=4, log=_quiet)
    with pytest.raises(InvalidArgumentError, match="--strategy: at least one"):
        check_strategies([])


# ----------------------------------------------------------------------------- curves
def test_label_schedule_ends_at_the_budget():
    assert label_schedule(initial=10, step=10, budget=50) == [10, 20, 30, 40, 50]
    assert label_schedule(initial=10, step=15, budget=50) == [10, 25, 40, 50]
    assert label_schedule(initial=5, step=3, budget=5) == [5]
    check_schedule(initial=1, step=1, budget=8, pool=8)  # the whole pool is fine


def test_auc_is_the_mean_dice_over_the_label_range():
    assert curve_auc([10, 20, 40], [0.2, 0.4, 0.8]) == pytest.approx(0.5)  # (3 + 12) / 30
    assert curve_auc([10, 20], [0.6, 0.6]) == pytest.approx(0.6)
    assert curve_auc([7], [0.3]) == 0.3
    with pytest.raises(InvalidArgumentError, match="label counts must increase"):
        curve_auc([10, 10], [0.5, 0.6])
    with pytest.raises(InvalidArgumentError, match="as many Dice values"):
        curve_auc([10, 20], [0.5])


def test_labels_to_reach_the_target_or_never():
    labels, dice = [10, 20, 30, 40], [0.5, 0.76, 0.74, 0.9]
    assert labels_to_reach(labels, dice, 0.76) == 20  # reaching exactly counts
    assert labels_to_reach(labels, dice, 0.8) == 40
    assert labels_to_reach(labels, dice, 0.95) is None  # never reached
    assert labels_to_reach(labels, dice, None) is None  # no full-data reference
    assert labels_to_reach(labels, dice, 0.1) == 10


def test_mean_curves_and_wins():
    mean, std = mean_curve([[0.2, 0.6], [0.4, 0.8], [0.3, 0.7]])
    np.testing.assert_allclose(mean, [0.3, 0.7])
    np.testing.assert_allclose(std, [np.sqrt(2 / 300)] * 2)
    with pytest.raises(InvalidArgumentError, match="different lengths"):
        mean_curve([[0.2, 0.6], [0.4]])
    assert wins({0: 0.5, 1: 0.7, 2: 0.6}, {0: 0.4, 1: 0.7, 2: 0.65}) == 1  # a tie is no win
    assert wins({0: 0.5, 5: 0.9}, {0: 0.4}) == 1  # only shared seeds count
