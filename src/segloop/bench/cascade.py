"""``segloop bench cascade``: a locate-then-segment cascade vs one model on the whole image.

:func:`run_cascade_bench` takes a cascade config (a stage-2 config with a
``cascade`` section, e.g. ``configs/cascade_acdc.yaml``) and trains, each from
scratch (``training.resume`` off):

1. **single**: the same config without ``cascade``, on the whole images, with
   the same recipe and budget, into ``OUTPUT_DIR/single``;
2. **cascade**: stage 1 (``cascade.locate``, into ``OUTPUT_DIR/locate``) then
   stage 2 on the crops (``OUTPUT_DIR``): one :func:`segloop.learn.train.train`.

Then both models predict the **same test cases** (the config's test split),
each read once on its native grid, side by side in one run: per case the
single model and the cascade (their order alternating from case to case),
each timed on the in-memory image (pre-processing, inference and the way back
to the input grid; the cascade's stage 1, crop and paste included), after one
untimed warm-up prediction of each. Both are scored against the native
annotation (:func:`segloop.learn.scoring.score_case`).

Summary row: ``dataset``, ``dice_single``, ``dice_cascade`` (mean over test
cases of the mean over classes), ``seconds_single``, ``seconds_cascade``
(median inference seconds per test case), plus ``speedup`` (single ÷
cascade seconds), ``per_class_single``, ``per_class_cascade``,
``train_seconds_single``, ``train_seconds_cascade`` (stage 1 + stage 2),
``train_seconds_locate``, ``locate_dice`` (stage 1's own test Dice),
``crop_fraction`` (mean share of a test image's voxels the cascade's stage 2
sees), ``fallbacks`` (test cases where stage 1 found nothing), ``test_cases``,
``classes``. Cases: one row per test case (``id``, ``dice_single``,
``dice_cascade``, ``per_class_*``, ``seconds_*``, ``box``, ``crop_fraction``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from segloop.bench.plots import save_figure
from segloop.bench.report import bench_report
from segloop.bench.runs import mean_of, run_config
from segloop.errors import InvalidArgumentError
from segloop.learn.cascade_data import locate_config, split_cases
from segloop.learn.config import Config, load_config
from segloop.learn.data import contrast_sources, read_volume
from segloop.learn.optim import deterministic_runtime
from segloop.learn.predict import load_model
from segloop.learn.scoring import score_case
from segloop.learn.train import train

__all__ = ["run_cascade_bench", "single_config", "write_plot"]


def single_config(cfg: Config) -> Config:
    """The single-stage model of cascade config ``cfg``: no cascade, into ``OUTPUT_DIR/single``.

    Examples
    --------
    >>> cfg = load_config({"data": {"path": "d"}, "output": {"dir": "runs/c"},
    ...                    "cascade": {"locate": "l.pt"}})
    >>> one = single_config(cfg)
    >>> one.cascade, one.output.dir, one.training.resume
    (None, 'runs/c/single', False)
    """
    return run_config(cfg, Path(cfg.output.dir) / "single", data={"cache_dir": None},
                      cascade=None)


def _timed(predictor, images, tta):
    start = time.perf_counter()
    pred = predictor.predict(images, tta=tta)
    return pred, time.perf_counter() - start


def _compare(single, cascade, cases, cfg: Config, log) -> list[dict]:
    """Both models on each test case, timed side by side and scored on the native grid."""
    d = cfg.data
    native = d.model_copy(update={"spacing": None, "crop_foreground": False})
    tta, rows, warm = cfg.inference.tta, [], False
    for k, case in enumerate(cases):
        images = [case.read_image(n) for n in contrast_sources(case, d)]
        truth = read_volume(case, native).label
        if truth is None:
            continue
        if not warm:  # first calls pay for allocations and lazy set-up: not timed
            single.predict(images, tta=tta)
            cascade.predict(images, tta=tta)
            warm = True
        order = (("single", single), ("cascade", cascade))
        timed = dict((name, _timed(p, images, tta)) for name, p in order[::1 - 2 * (k % 2)])
        row = {"id": case.id}
        for name in ("single", "cascade"):
            pred, seconds = timed[name]
            score = score_case(pred.label.array, truth, classes=d.classes,
                               soft=d.soft_labels)
            row |= {f"dice_{name}": score["dice"], f"per_class_{name}": score["per_class"],
                    f"seconds_{name}": seconds}
        box = timed["cascade"][0].label.metadata.get("cascade_box")
        row["box"] = box
        row["crop_fraction"] = (1.0 if box is None else float(
            np.prod([b - a for a, b in box]) / np.prod(images[0].shape)))
        log(f"{case.id}: dice single {row['dice_single']:.4f} cascade "
            f"{row['dice_cascade']:.4f}; seconds {row['seconds_single']:.3f} / "
            f"{row['seconds_cascade']:.3f}")
        rows.append(row)
    return rows


def run_cascade_bench(cfg: Config, *, args: dict | None = None, log=print) -> dict:
    """Train the single model and the cascade of ``cfg``, predict the test cases with both.

    Parameters
    ----------
    cfg : Config
        A cascade config (with a ``cascade`` section).
    args : dict, optional
        Recorded in the report (the command line).
    log : callable
        Receives progress lines.

    Returns
    -------
    dict
        :func:`segloop.bench.report.bench_report` of suite ``cascade`` (see the
        module docstring).

    Raises
    ------
    segloop.errors.InvalidArgumentError
        Not a cascade config, a bad stage-1 config (named) or no test case.
    """
    if cfg.cascade is None:
        raise InvalidArgumentError("--config: not a cascade config (it has no cascade section)")
    locate_config(cfg)  # a bad stage-1 key fails before any training
    cases = split_cases(cfg)["test"]
    if not cases:
        raise InvalidArgumentError("no test case (data.split.test)", path=cfg.data.path)
    out = Path(cfg.output.dir)
    log(f"single: training the whole-image model into {out / 'single'}")
    single_result = train(single_config(cfg), log=log)
    log(f"cascade: training stage 1 then stage 2 into {out}")
    cascade_result = train(load_config(cfg, overrides=["training.resume=false"]), log=log)
    single = load_model(out / "single" / "best.pt")
    cascade = load_model(out / "best.pt")
    log(f"predicting {len(cases)} test cases with both, side by side")
    with deterministic_runtime(cfg):
        rows = _compare(single, cascade, cases, cfg, log)
    if not rows:
        raise InvalidArgumentError("no labelled test case", path=cfg.data.path)
    info = cascade_result.get("cascade", {})
    locate_seconds = info.get("seconds") or 0.0
    row = {"dataset": Path(cfg.data.path).name,
           "dice_single": mean_of(r["dice_single"] for r in rows),
           "dice_cascade": mean_of(r["dice_cascade"] for r in rows),
           "seconds_single": float(np.median([r["seconds_single"] for r in rows])),
           "seconds_cascade": float(np.median([r["seconds_cascade"] for r in rows]))}
    row["speedup"] = row["seconds_single"] / max(row["seconds_cascade"], 1e-12)
    row |= {f"per_class_{name}": {c: mean_of(r[f"per_class_{name}"][c] for r in rows)
                                  for c in cfg.data.classes} for name in ("single", "cascade")}
    row |= {"train_seconds_single": single_result["seconds"],
            "train_seconds_cascade": locate_seconds + cascade_result["seconds"],
            "train_seconds_locate": locate_seconds, "locate_dice": info.get("dice"),
            "crop_fraction": mean_of(r["crop_fraction"] for r in rows),
            "fallbacks": sum(r["box"] is None for r in rows), "test_cases": len(rows),
            "classes": list(cfg.data.classes), "locate": info.get("path"),
            "margin_mm": cfg.cascade.margin_mm}
    log(f"{row['dataset']}: dice single {row['dice_single']:.4f}, cascade "
        f"{row['dice_cascade']:.4f}; median seconds per case {row['seconds_single']:.3f} / "
        f"{row['seconds_cascade']:.3f} ({row['speedup']:.2f}x)")
    return bench_report("cascade", args=args or {}, summary=[row], cases=rows)


def write_plot(report: dict, path) -> Path:
    """Per test case: Dice and inference seconds, single model vs cascade (PNG).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> rep = {"suite": "cascade", "summary": [{"dataset": "d"}],
    ...        "cases": [{"id": "a", "dice_single": 0.5, "dice_cascade": 0.7,
    ...                   "seconds_single": 0.2, "seconds_cascade": 0.1}]}
    >>> write_plot(rep, pathlib.Path(tempfile.mkdtemp()) / "c.png").stat().st_size > 1000
    True
    """
    if not isinstance(report, dict) or report.get("suite") != "cascade":
        raise InvalidArgumentError("report must be a cascade report (suite 'cascade')")
    from matplotlib.figure import Figure  # Agg canvas, no global pyplot state

    cases = report.get("cases", [])
    x = np.arange(len(cases))
    fig = Figure(figsize=(2.0 + 0.5 * max(1, len(cases)), 5.0))
    axes = fig.subplots(2, 1, sharex=True)
    for ax, key, label in ((axes[0], "dice", "test Dice"), (axes[1], "seconds", "seconds")):
        for k, name in enumerate(("single", "cascade")):
            ax.bar(x + (k - 0.5) * 0.4, [c.get(f"{key}_{name}") or 0.0 for c in cases], 0.4,
                   label=name)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set(ylim=(0, 1.2), yticks=np.linspace(0, 1, 6),
                title=(report.get("summary") or [{}])[0].get("dataset", ""))
    axes[0].legend(fontsize=7, loc="upper left", ncol=2)
    axes[1].set_xticks(x, [c["id"] for c in cases], rotation=90, fontsize=6)
    fig.tight_layout()
    return save_figure(fig, path)
