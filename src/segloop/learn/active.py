"""Active learning, simulated: label a few images, train, pick the next ones, repeat.

:class:`ActiveLearning` plays the loop of DESIGN.md with the ground truth as
the oracle, on one dataset and one label schedule:

* the **pool** is the training split of :func:`segloop.learn.data.prepare_data`
  (sorted by id); the **test split** is the same for every round, strategy and
  seed; the validation split stays as configured (typically none);
* **round 0**: ``initial`` pool images drawn at random with the seed (the same
  for every strategy at that seed), trained from scratch. It is trained once
  per seed and reused by every strategy (:meth:`ActiveLearning.first_round`);
* **round r > 0**: the strategy (:func:`segloop.learn.strategies.select`) picks
  ``step`` images among the unlabelled ones (or a seeded random subset of
  ``candidates`` of them) with the last model (its ``best.pt``), seeing their
  images only (their labels are hidden: ``None``);
  the oracle reveals their labels; the network is retrained on every labelled
  image, warm-started from the last model (``training.init_from``), until
  ``budget`` images are labelled (:func:`~segloop.learn.active_curves.label_schedule`);
* every round trains with the config's recipe (:func:`segloop.learn.train.train`,
  ``training.resume`` off, ``training.seed`` = config seed + 1000 × seed +
  round) and scores the test split (``dice`` of its ``metrics.json``).

:meth:`ActiveLearning.full_data` trains the same recipe from scratch on the
whole pool (by default for as many epochs as the loop's last model went
through): the full-data reference of the benchmark. Runs write under
``out_dir`` (default ``output.dir``): ``seed<S>/round00`` (shared round 0),
``seed<S>/<strategy>/round<R>``, ``full/seed<S>-epochs<E>``, and the array cache in
``cache/`` (unless ``data.cache_dir`` is set).

(:func:`simulate` has a runnable example.)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.learn import strategies
from segloop.learn.active_curves import check_schedule, label_schedule
from segloop.learn.config import Config, load_config, to_dict
from segloop.learn.data import PreparedData, Volume, prepare_data
from segloop.learn.optim import deterministic_runtime
from segloop.learn.predict import load_model
from segloop.learn.train import train

__all__ = ["ActiveLearning", "check_strategies", "simulate"]


def check_strategies(names: Sequence[str], cfg: Config | None = None) -> list[str]:
    """The strategy names, checked against the registry (before any training), once each.

    With ``cfg``, ``mc_dropout`` also needs ``model.dropout > 0``.

    Examples
    --------
    >>> check_strategies(["random", "entropy"])
    ['random', 'entropy']
    >>> check_strategies(["uncertain"])
    Traceback (most recent call last):
    ...
    segloop.errors.InvalidArgumentError: --strategy: unknown strategy 'uncertain' (known: ...)
    """
    names = list(dict.fromkeys(names))
    if not names:
        raise InvalidArgumentError("--strategy: at least one strategy is needed (known: "
                                   f"{', '.join(strategies.STRATEGIES)})")
    for name in names:
        if name not in strategies.STRATEGIES:
            raise InvalidArgumentError(f"--strategy: unknown strategy {name!r} (known: "
                                       f"{', '.join(strategies.STRATEGIES)})")
    if cfg is not None and "mc_dropout" in names and cfg.model.dropout <= 0:
        raise InvalidArgumentError("--strategy: mc_dropout needs a network with dropout "
                                   f"(model.dropout > 0, got {cfg.model.dropout})")
    return names


def _hidden(volume: Volume) -> Volume:
    """The volume as the strategy sees it before the oracle: no label."""
    return dataclasses.replace(volume, label=None)


class ActiveLearning:
    """The simulated loop on one dataset and schedule (see the module docstring).

    Parameters
    ----------
    cfg : Config
        The training config (data, network, recipe of every round).
    initial, step, budget : int
        Labelled images in round 0, added per round, and in the end.
    data : PreparedData, optional
        The prepared splits (default: :func:`~segloop.learn.data.prepare_data` of ``cfg``).
    out_dir : str or pathlib.Path, optional
        Where the rounds write (default ``output.dir``).
    log : callable
        Receives one line per round.
    train_log : callable, optional
        Receives the lines of every training run (default: dropped).
    candidates : int, optional
        Rank at most this many unlabelled images per round, drawn at random
        (seeded per seed and round) from the unlabelled pool; None: all of
        them. The usual shortcut on large pools (Gal et al. 2017 score a random
        subset of the pool): uncertainty with ``mc_dropout`` or ``tta`` costs
        several passes per image.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A bad schedule (:func:`~segloop.learn.active_curves.check_schedule`:
        ``--initial``, ``--step``, ``--budget`` named), ``--candidates``
        below ``--step``, or no test split.
    """

    def __init__(self, cfg: Config, *, initial: int, step: int, budget: int,
                 data: PreparedData | None = None, out_dir=None, log=print, train_log=None,
                 candidates: int | None = None):
        check_schedule(initial=initial, step=step, budget=budget)
        if candidates is not None and (isinstance(candidates, bool) or int(candidates) < step):
            raise InvalidArgumentError(f"--candidates {candidates} is smaller than --step "
                                       f"{step} (the images picked per round)")
        self.candidates = None if candidates is None else int(candidates)
        self.out = Path(out_dir if out_dir is not None else cfg.output.dir)
        raw = to_dict(cfg)
        raw["data"]["cache_dir"] = raw["data"]["cache_dir"] or str(self.out / "cache")
        raw["training"]["resume"] = False
        self.cfg = load_config(raw)
        self.log, self.train_log = log, train_log or (lambda line: None)
        self.data = data if data is not None else prepare_data(self.cfg, log=self.train_log)
        if not self.data.test:
            raise InvalidArgumentError("data.split.test: active learning scores every round on "
                                       "a test split; this config leaves none (0 test cases)")
        self.pool = sorted(self.data.train, key=lambda v: v.id)
        check_schedule(initial=initial, step=step, budget=budget, pool=len(self.pool))
        self.schedule = label_schedule(initial=initial, step=step, budget=budget)
        self._by_id = {v.id: v for v in self.pool}
        self._first: dict[int, dict] = {}
        self._full: dict[tuple[int, int], dict] = {}

    # ------------------------------------------------------------------ training
    def _config(self, seed: int, index: int, out: Path, init_from: str | None) -> Config:
        raw = to_dict(self.cfg)
        raw["output"]["dir"] = str(out)
        raw["training"].update(seed=self.cfg.training.seed + 1000 * seed + index,
                               init_from=init_from)
        return load_config(raw)

    def _train(self, ids: Sequence[str], cfg: Config) -> tuple[dict, float]:
        labelled = [self._by_id[i] for i in sorted(ids)]
        d = self.data
        t = time.perf_counter()
        result = train(cfg, data=PreparedData(labelled, d.val, d.test, d.in_channels,
                                              d.preprocess), log=self.train_log)
        return result, time.perf_counter() - t

    def initial_ids(self, seed: int) -> list[str]:
        """The ``initial`` pool ids of round 0 at ``seed`` (the same for every strategy)."""
        rng = np.random.default_rng([seed, 0])
        chosen = rng.choice(len(self.pool), size=self.schedule[0], replace=False)
        return [self.pool[i].id for i in sorted(chosen)]

    def first_round(self, seed: int) -> dict:
        """Round 0 at ``seed``: trained on the first call, then reused."""
        if seed not in self._first:
            ids = self.initial_ids(seed)
            out = self.out / f"seed{seed}" / "round00"
            result, seconds = self._train(ids, self._config(seed, 0, out, None))
            self._first[seed] = {
                "round": 0, "labels": len(ids), "dice": result["dice"], "selected": ids,
                "train_seconds": seconds, "select_seconds": 0.0, "candidates": None,
                "epochs": result["epochs"], "checkpoint": _checkpoint(out), "init_from": None}
            self.log(f"seed {seed} round 0: {len(ids)} labels, test dice "
                     f"{_fmt(result['dice'])} ({seconds:.1f} s)")
        return dict(self._first[seed], reused=False)

    def full_data(self, *, seed: int = 0, epochs: int | None = None) -> dict:
        """The full-data reference: the recipe from scratch on the whole pool (cached per seed).

        ``epochs`` (default: ``training.epochs`` × the rounds of the schedule,
        as many as the loop's last model went through over its warm starts;
        ``training.max_minutes`` scales alike). Returns ``{"seed", "labels",
        "dice", "seconds", "epochs", "checkpoint"}``.
        """
        factor = len(self.schedule)
        epochs = self.cfg.training.epochs * factor if epochs is None else int(epochs)
        if epochs < 1:
            raise InvalidArgumentError(f"--full-epochs must be at least 1, got {epochs}")
        if (seed, epochs) not in self._full:
            out = self.out / "full" / f"seed{seed}-epochs{epochs}"
            cfg = self._config(seed, 0, out, None)
            minutes = cfg.training.max_minutes
            cfg = load_config(cfg, overrides=[f"training.epochs={epochs}"] + (
                [] if minutes is None else [f"training.max_minutes={minutes * factor}"]))
            result, seconds = self._train([v.id for v in self.pool], cfg)
            self._full[seed, epochs] = {
                "seed": seed, "labels": len(self.pool), "dice": result["dice"],
                "seconds": seconds, "epochs": result["epochs"], "checkpoint": _checkpoint(out)}
            self.log(f"seed {seed} full data: {len(self.pool)} labels, {epochs} epochs, test "
                     f"dice {_fmt(result['dice'])} ({seconds:.1f} s)")
        return dict(self._full[seed, epochs])

    # ------------------------------------------------------------------ the loop
    def _select(self, strategy: str, labelled: list[str], k: int, cfg: Config,
                checkpoint: str, seed: int) -> tuple[list[str], float, int]:
        taken = set(labelled)
        unlabelled = [_hidden(v) for v in self.pool if v.id not in taken]
        if self.candidates is not None and len(unlabelled) > self.candidates:
            keep = np.random.default_rng([seed, 1]).choice(len(unlabelled), self.candidates,
                                                           replace=False)
            unlabelled = [unlabelled[i] for i in sorted(keep)]
        t = time.perf_counter()
        with deterministic_runtime(cfg):
            model = load_model(checkpoint)
            chosen = list(strategies.select(strategy, unlabelled, model, k,
                                            labelled=[self._by_id[i] for i in labelled],
                                            seed=seed))
        seconds = time.perf_counter() - t
        free = {v.id for v in unlabelled}
        if len(chosen) != k or len(set(chosen)) != k or not set(chosen) <= free:
            raise ValueError(f"strategy {strategy!r} returned {chosen[:5]}... for {k} distinct "
                             "unlabelled ids")
        return chosen, seconds, len(unlabelled)

    def run(self, strategy: str, *, seed: int = 0) -> dict:
        """Play the loop with ``strategy`` at ``seed`` up to the budget.

        Returns
        -------
        dict
            ``strategy``, ``seed``, ``pool`` (its size), ``labels`` and
            ``dice`` (the learning curve), ``rounds`` (per round: ``round``,
            ``labels``, ``dice``, ``selected`` (the ids added in that round),
            ``train_seconds``, ``select_seconds`` (choosing those ids),
            ``candidates`` (images ranked), ``epochs``, ``checkpoint``,
            ``init_from``, ``reused`` (round 0 trained for an earlier
            strategy)) and ``labelled`` (every id, in the order they were
            revealed).
        """
        check_strategies([strategy], self.cfg)
        reused = seed in self._first
        rounds = [dict(self.first_round(seed), reused=reused)]
        labelled = list(rounds[0]["selected"])
        for index, count in enumerate(self.schedule[1:], start=1):
            out = self.out / f"seed{seed}" / strategy / f"round{index:02d}"
            previous = rounds[-1]["checkpoint"]
            cfg = self._config(seed, index, out, previous)
            chosen, select_seconds, ranked = self._select(
                strategy, labelled, count - len(labelled), cfg, previous, 1000 * seed + index)
            labelled += chosen
            result, seconds = self._train(labelled, cfg)
            rounds.append({"round": index, "labels": len(labelled), "dice": result["dice"],
                           "selected": chosen, "train_seconds": seconds,
                           "select_seconds": select_seconds, "candidates": ranked,
                           "epochs": result["epochs"], "checkpoint": _checkpoint(out),
                           "init_from": previous,
                           "reused": False})
            self.log(f"seed {seed} {strategy} round {index}: {len(labelled)} labels, test dice "
                     f"{_fmt(result['dice'])} (select {select_seconds:.1f} s, train "
                     f"{seconds:.1f} s)")
        return {"strategy": strategy, "seed": seed, "pool": len(self.pool),
                "labels": [r["labels"] for r in rounds], "dice": [r["dice"] for r in rounds],
                "rounds": rounds, "labelled": labelled}


def _checkpoint(out: Path) -> str:
    """The model a round leaves: ``best.pt`` (``last.pt`` if no epoch was ever best)."""
    best = out / "best.pt"
    return str(best if best.exists() else out / "last.pt")


def _fmt(dice) -> str:
    return "n/a" if dice is None else f"{dice:.4f}"


def simulate(cfg: Config, strategy: str, *, initial: int, step: int, budget: int,
             seed: int = 0, data: PreparedData | None = None, out_dir=None, log=print) -> dict:
    """One active-learning run: :meth:`ActiveLearning.run` of a fresh :class:`ActiveLearning`.

    Several strategies or seeds on one dataset should share one
    :class:`ActiveLearning` (round 0 and the prepared data are reused).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from segloop.data import phantom_2d
    >>> from segloop.io import Image, write_image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(6):
    ...     ph = phantom_2d((32, 32), seed=i, n_blobs=1, thin_structures=False)
    ...     write_image(Image(ph.image), root / "images" / f"{i}.nii.gz")
    ...     write_image(Image(ph.label, kind="label"), root / "labels" / f"{i}.nii.gz")
    >>> cfg = load_config({"data": {"path": str(root), "split": {"test": 2, "val": 0}},
    ...                    "model": {"channels": [4, 8]}, "output": {"dir": str(root / "al")},
    ...                    "training": {"epochs": 1, "iterations_per_epoch": 1,
    ...                                 "batch_size": 2, "threads": 1}})
    >>> run = simulate(cfg, "random", initial=1, step=2, budget=4, log=lambda line: None)
    >>> run["labels"], len(set(run["labelled"])), [r["round"] for r in run["rounds"]]
    ([1, 3, 4], 4, [0, 1, 2])
    """
    loop = ActiveLearning(cfg, initial=initial, step=step, budget=budget, data=data,
                          out_dir=out_dir, log=log)
    return loop.run(strategy, seed=seed)
