"""``segloop bench loop``: active-learning strategies against random labelling.

:func:`run_loop` plays :class:`segloop.learn.active.ActiveLearning` for every
(config, seed, strategy): the same round 0 per seed, the strategy's picks
after it, the test Dice after every round; then the full-data reference
(the same recipe from scratch on the whole pool) for the first
``full_seeds`` seeds. :func:`summary_rows` turns the rounds into one row per
(dataset, strategy):

``dataset``, ``strategy``
    the data folder's name, the strategy;
``auc``
    area under the mean (over seeds) Dice-vs-labels curve divided by the
    label range (:func:`segloop.learn.active_curves.curve_auc`: a mean Dice in
    [0, 1]); ``auc_std`` the standard deviation of the per-seed areas
    (``seed_aucs``, in the order of ``seeds``);
``labels_to_95pct``
    the fewest labels at which the mean curve reaches ``target_dice`` = 0.95 ×
    ``full_dice`` (the mean test Dice of the full-data runs); null when it
    never does or there is no full-data run; ``fraction_to_95pct`` the same as
    a fraction of the ``pool``;
``final_dice``
    the mean Dice at the budget;
``wins_vs_random``
    seeds where the strategy's area beats random's (null for random or
    without a random run);
``labels``, ``mean_dice``, ``std_dice``
    the curve; ``seconds`` (training and selection over every seed, the
    shared round 0 included for every strategy), ``select_seconds``
    (selection only), ``select_seconds_per_round``.

Cases: one row per (strategy, seed, round) (``kind: "round"``: ``labels``,
``dice``, ``selected`` ids, ``train_seconds``, ``select_seconds``,
``candidates`` (images ranked), ``reused``
for a round 0 trained for an earlier strategy), and one per full-data run
(``kind: "full"``). :func:`write_plot` draws Dice against labels.

Examples
--------
>>> cases = [{"kind": "round", "dataset": "d", "strategy": s, "seed": seed, "round": r,
...           "labels": n, "dice": dice, "train_seconds": 1.0, "select_seconds": 0.5 * r}
...          for s, seed, curve in [("random", 0, [0.5, 0.6]), ("random", 1, [0.5, 0.7]),
...                                 ("entropy", 0, [0.5, 0.8]), ("entropy", 1, [0.5, 0.6])]
...          for r, (n, dice) in enumerate(zip([10, 20], curve))]
>>> rows = summary_rows(cases, pools={"d": 100}, full={"d": [0.7]})
>>> [(r["strategy"], r["auc"], r["labels_to_95pct"], r["wins_vs_random"]) for r in rows]
[('random', 0.575, None, None), ('entropy', 0.6, 20, 1)]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from segloop.bench.plots import save_figure
from segloop.bench.report import bench_report
from segloop.errors import InvalidArgumentError
from segloop.learn.active import ActiveLearning, check_strategies
from segloop.learn.active_curves import curve_auc, labels_to_reach, mean_curve, wins
from segloop.learn.config import Config

__all__ = ["TARGET", "run_loop", "summary_rows", "write_plot"]

#: The fraction of the full-data Dice a strategy must reach (``labels_to_95pct``).
TARGET = 0.95


def _dataset(cfg: Config) -> str:
    return Path(cfg.data.path).resolve().name or str(cfg.data.path)


def _round(x, digits: int = 6):
    return None if x is None else round(float(x), digits)


def _strategy_row(dataset: str, strategy: str, rows: list[dict], pool: int | None,
                  full_dice: float | None) -> dict:
    by_seed: dict[int, list[dict]] = {}
    for r in sorted(rows, key=lambda r: (r["seed"], r["round"])):
        by_seed.setdefault(int(r["seed"]), []).append(r)
    seeds = sorted(by_seed)
    schedules = {tuple(r["labels"] for r in by_seed[s]) for s in seeds}
    if len(schedules) != 1:
        raise InvalidArgumentError(f"{dataset} {strategy}: the seeds ran different label "
                                   "schedules; their curves cannot be averaged")
    labels = list(schedules.pop())
    mean, std = mean_curve([[r["dice"] for r in by_seed[s]] for s in seeds])
    seed_aucs = [curve_auc(labels, [r["dice"] for r in by_seed[s]]) for s in seeds]
    target = None if full_dice is None else TARGET * full_dice
    reached = labels_to_reach(labels, mean.tolist(), target)
    select = sum(r.get("select_seconds") or 0.0 for r in rows)
    train = sum(r.get("train_seconds") or 0.0 for r in rows)
    rounds = sum(1 for r in rows if r["round"] > 0)
    return {
        "dataset": dataset, "strategy": strategy, "auc": _round(curve_auc(labels, mean)),
        "labels_to_95pct": reached, "final_dice": _round(mean[-1]),
        "auc_std": _round(np.std(seed_aucs)), "seed_aucs": [_round(a) for a in seed_aucs],
        "fraction_to_95pct": None if reached is None or not pool else _round(reached / pool),
        "full_dice": _round(full_dice), "target_dice": _round(target), "pool": pool,
        "seeds": seeds, "labels": labels, "mean_dice": [_round(m) for m in mean],
        "std_dice": [_round(s) for s in std], "wins_vs_random": None,
        "seconds": _round(train + select, 3), "select_seconds": _round(select, 3),
        "select_seconds_per_round": _round(select / rounds, 3) if rounds else None}


def summary_rows(cases: Sequence[dict], *, pools: dict[str, int] | None = None,
                 full: dict[str, list[float]] | None = None) -> list[dict]:
    """One row per (dataset, strategy) from the round rows of ``cases`` (module docstring).

    ``pools``: pool size per dataset; ``full``: the full-data test Dice of each
    run per dataset (its mean is ``full_dice``).
    """
    pools, full = pools or {}, full or {}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in cases:
        if r.get("kind", "round") == "round":
            groups.setdefault((r["dataset"], r["strategy"]), []).append(r)
    rows = []
    for (dataset, strategy), rs in groups.items():
        dice = [d for d in full.get(dataset, []) if d is not None]
        rows.append(_strategy_row(dataset, strategy, rs, pools.get(dataset),
                                  float(np.mean(dice)) if dice else None))
    for row in rows:
        ref = next((r for r in rows if r["dataset"] == row["dataset"]
                    and r["strategy"] == "random"), None)
        if ref is not None and row["strategy"] != "random":
            row["wins_vs_random"] = wins(dict(zip(row["seeds"], row["seed_aucs"], strict=True)),
                                         dict(zip(ref["seeds"], ref["seed_aucs"], strict=True)))
    return rows


def _case_rows(dataset: str, run: dict) -> list[dict]:
    return [{"kind": "round", "dataset": dataset, "strategy": run["strategy"],
             "seed": run["seed"], **{k: r[k] for k in (
                 "round", "labels", "dice", "selected", "train_seconds", "select_seconds",
                 "candidates", "epochs", "reused")}} for r in run["rounds"]]


def run_loop(configs: Sequence[Config], *, strategies: Sequence[str], initial: int, step: int,
             budget: int, seeds: Sequence[int] = (0, 1, 2), full_seeds: int = 1,
             full_epochs: int | None = None, candidates: int | None = None,
             out_dirs: Sequence | None = None,
             args: dict | None = None, log=print) -> dict:
    """Run the suite on each config (dataset) and assemble its report.

    Parameters
    ----------
    configs : sequence of Config
        One training config per dataset (the recipe of every round).
    strategies : sequence of str
        Strategy names (checked before any training).
    initial, step, budget : int
        The label schedule (the same for every dataset).
    seeds : sequence of int
        Seeds of round 0's draw, the training and the strategies.
    full_seeds : int
        Full-data runs per dataset, on the first seeds (0: none; then
        ``labels_to_95pct`` is null).
    full_epochs : int, optional
        Epochs of a full-data run (default: the config's epochs × the rounds
        of the schedule; :meth:`~segloop.learn.active.ActiveLearning.full_data`).
    candidates : int, optional
        Unlabelled images ranked per round, a seeded random subset of the
        pool (default: all; :class:`~segloop.learn.active.ActiveLearning`).
    out_dirs : sequence, optional
        A folder per config for its runs (default: each ``output.dir``).
    args : dict, optional
        The arguments to record in the report.
    log : callable
        Receives one line per round.

    Returns
    -------
    dict
        The report (:func:`segloop.bench.report.bench_report`, suite ``loop``).
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise InvalidArgumentError(f"--seed: distinct seeds needed, got {seeds}")
    if full_seeds < 0:
        raise InvalidArgumentError(f"--full-seeds must be 0 or more, got {full_seeds}")
    if full_epochs is not None and full_epochs < 1:
        raise InvalidArgumentError(f"--full-epochs must be at least 1, got {full_epochs}")
    for cfg in configs:
        strategies = check_strategies(strategies, cfg)
    names = [_dataset(cfg) for cfg in configs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidArgumentError(f"--config: several configs read the dataset folder "
                                   f"{twice[0]!r}; run them separately")
    loops = [ActiveLearning(cfg, initial=initial, step=step, budget=budget,
                            out_dir=None if out_dirs is None else out_dirs[i],
                            candidates=candidates,
                            log=lambda line, d=dataset: log(f"{d}: {line}"))
             for i, (cfg, dataset) in enumerate(zip(configs, names, strict=True))]
    cases: list[dict] = []
    pools, full, notes = {}, {}, []
    for cfg, dataset, loop in zip(configs, names, loops, strict=True):
        pools[dataset] = len(loop.pool)
        for seed in seeds:
            for strategy in strategies:
                cases += _case_rows(dataset, loop.run(strategy, seed=seed))
        full[dataset], reference = [], "none"
        for seed in seeds[:full_seeds]:
            ref = loop.full_data(seed=seed, epochs=full_epochs)
            full[dataset].append(ref["dice"])
            cases.append({"kind": "full", "dataset": dataset, "strategy": "full-data",
                          "seed": seed, "labels": ref["labels"], "dice": ref["dice"],
                          "train_seconds": ref["seconds"], "epochs": ref["epochs"]})
            reference = (f"{len(full[dataset])} run(s) (seeds {seeds[:full_seeds]}) of the "
                         f"recipe from scratch on the whole pool, {ref['epochs']} epochs (a "
                         f"round: {cfg.training.epochs})")
        notes.append(f"{dataset}: pool {len(loop.pool)} images, test {len(loop.data.test)}, "
                     f"label schedule {loop.schedule}; full-data reference: {reference}")
    summary = summary_rows(cases, pools=pools, full=full)
    for row in summary:
        if row["full_dice"] is not None and row["labels_to_95pct"] is None:
            notes.append(f"{row['dataset']} {row['strategy']}: never reached 95% of the "
                         f"full-data Dice ({row['target_dice']:.4f}) within {budget} labels")
    record = dict(args or {}) | {"strategies": list(strategies), "initial": initial,
                                 "step": step, "budget": budget, "seeds": seeds,
                                 "full_seeds": full_seeds, "full_epochs": full_epochs,
                                 "candidates": candidates}
    return bench_report("loop", args=record, summary=summary, cases=cases, notes=notes)


def write_plot(report: dict, path) -> Path:
    """Dice against labelled images per strategy (mean ± std over seeds), one panel per dataset.

    The full-data Dice is a dashed line, 95% of it a dotted one. Returns the PNG path.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> rep = {"suite": "loop", "summary": [
    ...     {"dataset": "d", "strategy": "random", "labels": [5, 10], "mean_dice": [0.5, 0.7],
    ...      "std_dice": [0.05, 0.02], "auc": 0.6, "full_dice": 0.8, "target_dice": 0.76}]}
    >>> out = write_plot(rep, pathlib.Path(tempfile.mkdtemp()) / "loop.png")
    >>> out.read_bytes()[1:4]
    b'PNG'
    """
    if not isinstance(report, dict) or report.get("suite") != "loop":
        raise InvalidArgumentError("report must be a loop report (suite 'loop')")
    from matplotlib.figure import Figure  # Agg canvas, no global pyplot state

    rows = report.get("summary", [])
    datasets = list(dict.fromkeys(r["dataset"] for r in rows)) or ["(no runs)"]
    fig = Figure(figsize=(5.2 * len(datasets), 4.0))
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets, strict=True):
        mine = [r for r in rows if r["dataset"] == dataset]
        for r in mine:
            x, m, s = (np.asarray(r[k], dtype=float) for k in ("labels", "mean_dice", "std_dice"))
            line, = ax.plot(x, m, marker=".", label=f"{r['strategy']} (AUC {r['auc']:.3f})")
            ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.15, linewidth=0)
        full = next((r["full_dice"] for r in mine if r.get("full_dice") is not None), None)
        if full is not None:
            ax.axhline(full, color="0.3", linestyle="--", linewidth=1,
                       label=f"full data ({full:.3f})")
            ax.axhline(TARGET * full, color="0.5", linestyle=":", linewidth=1,
                       label=f"{TARGET:.0%} of full data")
        pool = next((r.get("pool") for r in mine if r.get("pool")), None)
        ax.set(title=dataset if pool is None else f"{dataset} (pool {pool})",
               xlabel="labelled images", ylabel="test Dice (mean ± sd over seeds)")
        ax.grid(alpha=0.3)
        if mine:
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)
