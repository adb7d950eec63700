"""``segloop bench transfer``: from scratch vs from a source model, with few training images.

:func:`run_transfer_bench` answers "does a model of another structure help
when only N images of this one are labelled?":

1. **the source**: a checkpoint (``--source``), or a source config
   (``--source-config``) trained first with :func:`segloop.learn.train.train`.
   A finished source run is reused: when ``OUTPUT_DIR/best.pt`` and
   ``metrics.json`` of the source config exist and the checkpoint's config is
   that config (the run-only settings of
   :data:`segloop.learn.resume.RUN_ONLY` aside: threads, device, cache...),
   nothing is trained again. A source of
   another shape (dims, input channels, widths...) is refused before any
   training (:func:`segloop.learn.transfer.check_transfer`).
2. **the target**: its config's data are read once
   (:func:`segloop.learn.data.prepare_data`); for each seed ``s`` of
   ``0..seeds-1``, ``train_images`` cases of its training split are drawn at
   random (``numpy.random.default_rng((training.seed, s))``: seeds give other
   subsets) and trained on twice with the same recipe, the same validation
   and test splits and ``training.seed + s``: from scratch, and from the
   source (``training.init_from``; the output block is re-initialised when
   the classes differ), with or without ``training.freeze_encoder``
   (``freeze``: one or both). A *training image* is a case of the dataset: a
   2D image, or a volume whose slices a 2D model trains on.
   Runs go to ``OUTPUT_DIR/seed<s>/<variant>`` of the target config, from
   scratch each time (``training.resume`` off).

Summary row per transfer variant (``transfer`` / ``transfer_frozen``):
``dataset``, ``train_images``, ``dice_scratch``, ``dice_transfer`` (mean
test Dice over seeds), ``seconds_scratch``, ``seconds_transfer`` (mean
training seconds per run), plus ``variant``, ``freeze_encoder``, ``seeds``,
``dice_scratch_per_seed``, ``dice_transfer_per_seed``, ``gain`` (mean
transfer - scratch), ``wins`` (seeds where transfer beats scratch),
``source`` (the checkpoint), ``source_dataset``, ``source_dice`` (its own
test Dice when known). Cases: one row per seed and variant (``train_ids``,
``dice``, ``seconds``, ``epochs``, ``per_class``).

Examples
--------
>>> subsets(["a", "b", "c", "d", "e"], 2, seeds=2, seed=0)
[['d', 'e'], ['c', 'e']]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from segloop.bench.plots import save_figure
from segloop.bench.report import bench_report
from segloop.bench.runs import fmt, mean_of, run_config
from segloop.errors import InvalidArgumentError
from segloop.learn.checkpoint import load_checkpoint
from segloop.learn.config import Config, load_config, to_dict
from segloop.learn.data import PreparedData, prepare_data
from segloop.learn.resume import what_learns
from segloop.learn.train import train
from segloop.learn.transfer import check_transfer

__all__ = ["resolve_source", "run_transfer_bench", "subsets", "write_plot"]



def subsets(ids: list[str], n: int, *, seeds: int, seed: int) -> list[list[str]]:
    """``n`` of ``ids`` per seed ``0..seeds-1`` (drawn with ``default_rng((seed, s))``)."""
    picks = []
    for s in range(seeds):
        rng = np.random.default_rng((seed, s))
        picks.append([ids[i] for i in sorted(rng.choice(len(ids), size=n, replace=False))])
    return picks


def resolve_source(*, checkpoint=None, config: Config | None = None,
                   data: PreparedData | None = None, log=print) -> dict:
    """The source checkpoint: given, reused from a finished run of ``config``, or trained now.

    ``data``: the source config's prepared data, when already read.

    Returns
    -------
    dict
        ``checkpoint`` (the loaded checkpoint), ``path``, ``trained`` (trained
        by this call), ``seconds`` (its training time), ``dice`` (its test
        Dice, when its ``metrics.json`` is there).

    Raises
    ------
    segloop.errors.SegloopError
        A missing or unreadable checkpoint, a bad source config or dataset.
    """
    if (checkpoint is None) == (config is None):
        raise InvalidArgumentError("give one source: --source CKPT or --source-config CFG")
    trained = False
    if checkpoint is not None:
        path = Path(checkpoint)
    else:
        out = Path(config.output.dir)
        path, metrics = out / "best.pt", out / "metrics.json"
        done = path.is_file() and metrics.is_file()
        if done and what_learns(load_checkpoint(path)["config"]) == what_learns(config):
            log(f"source: reusing {path} (finished run of the same config)")
        else:
            log(f"source: training {config.data.path} -> {out}")
            train(load_config(config, overrides=["training.resume=false"]), data=data, log=log)
            trained = True
    ck = load_checkpoint(path)
    metrics = Path(path).with_name("metrics.json")
    result = json.loads(metrics.read_text()) if metrics.is_file() else {}
    return {"checkpoint": ck, "path": str(path), "trained": trained,
            "seconds": result.get("seconds", ck.get("elapsed")), "dice": result.get("dice")}


def _variant_config(cfg: Config, out: Path, seed: int, init_from: str | None,
                    freeze: bool) -> Config:
    return run_config(cfg, out, training={"seed": cfg.training.seed + seed,
                                          "init_from": init_from, "freeze_encoder": freeze})


def run_transfer_bench(cfg: Config, *, source=None, source_config: Config | None = None,
                       train_images: int = 4, seeds: int = 3, freeze=(False,),
                       args: dict | None = None, log=print) -> dict:
    """Scratch vs transfer on ``train_images`` cases of ``cfg``'s data, ``seeds`` times.

    Parameters
    ----------
    cfg : Config
        The target training config.
    source : str or os.PathLike, optional
        A source checkpoint.
    source_config : Config, optional
        Or a source config, trained first unless its finished run is there.
    train_images : int
        Training cases per run (drawn from the target's training split).
    seeds : int
        Runs of each variant (each seed draws other cases).
    freeze : sequence of bool
        Transfer variants: without (False) and/or with (True) a frozen encoder.
    args : dict, optional
        Recorded in the report (the command line).
    log : callable
        Receives progress lines.

    Returns
    -------
    dict
        :func:`segloop.bench.report.bench_report` of suite ``transfer``.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        ``train_images`` larger than the training split or below 1, ``seeds``
        below 1, no freeze variant, a source of another shape (named).
    """
    if seeds < 1:
        raise InvalidArgumentError(f"--seeds must be at least 1, got {seeds}")
    if train_images < 1:
        raise InvalidArgumentError(f"--train-images must be at least 1, got {train_images}")
    freeze = list(dict.fromkeys(bool(f) for f in freeze))
    if not freeze:
        raise InvalidArgumentError("no transfer variant: give --freeze and/or --no-freeze")
    if source_config is not None:  # the shape is known from the configs: fail before reading
        check_transfer(source_config, 1, cfg, 1, what="--source-config")
    data = prepare_data(cfg, log=log)
    if train_images > len(data.train):
        raise InvalidArgumentError(
            f"--train-images {train_images} is larger than the training split "
            f"({len(data.train)} cases of {cfg.data.path})")
    if source is not None:
        ck = load_checkpoint(source)
        check_transfer(ck["config"], int(ck.get("in_channels", 1)), cfg, data.in_channels,
                       what="--source", path=source)
        src = resolve_source(checkpoint=source, log=log)
    else:
        src_data = prepare_data(source_config, log=log)
        check_transfer(source_config, src_data.in_channels, cfg, data.in_channels,
                       what="--source-config")
        src = resolve_source(config=source_config, data=src_data, log=log)
    dataset = Path(cfg.data.path).resolve().name
    by_id = {v.id: v for v in data.train}
    picks = subsets(sorted(by_id), train_images, seeds=seeds, seed=cfg.training.seed)
    variants = [("scratch", None, False)] + [
        ("transfer_frozen" if f else "transfer", src["path"], f) for f in freeze]
    base, cases = Path(cfg.output.dir), []
    for s, ids in enumerate(picks):
        subset = PreparedData([by_id[i] for i in ids], data.val, data.test, data.in_channels,
                              data.preprocess)
        for name, init, frozen in variants:
            run_cfg = _variant_config(cfg, base / f"seed{s}" / name, s, init, frozen)
            log(f"seed {s} {name}: training on {', '.join(ids)}")
            start = time.perf_counter()
            metrics = train(run_cfg, data=subset, log=log)
            cases.append({"dataset": dataset, "seed": s, "variant": name, "train_ids": ids,
                          "dice": metrics.get("dice"), "seconds": metrics.get("seconds"),
                          "total_seconds": time.perf_counter() - start,
                          "epochs": metrics.get("epochs"),
                          "per_class": metrics.get("per_class")})
            log(f"seed {s} {name}: test dice {metrics.get('dice')}")
    summary = [_row(cases, name, frozen, dataset, train_images, seeds, src)
               for name, _, frozen in variants[1:]]
    for row in summary:
        log(f"{row['variant']}: test dice {fmt(row['dice_transfer'])} vs "
            f"{fmt(row['dice_scratch'])} from scratch (gain {fmt(row['gain'], '+.4f')}; "
            f"wins {row['wins']} of {seeds} seeds) with {train_images} training images")
    notes = [f"training images are cases of the training split ({len(data.train)} there); "
             f"the same {train_images} per seed for every variant",
             "source " + ("trained by this run" if src["trained"] else "given or reused")
             + f": {src['path']}"]
    report_args = {**(args or {}), "train_images": train_images, "seeds": seeds,
                   "freeze": freeze, "resolved": to_dict(cfg),
                   "source_resolved": to_dict(src["checkpoint"]["config"])}
    return bench_report("transfer", args=report_args, summary=summary, cases=cases, notes=notes)


def _row(cases, variant, frozen, dataset, n, seeds, src) -> dict:
    scratch = [c["dice"] for c in cases if c["variant"] == "scratch"]
    moved = [c["dice"] for c in cases if c["variant"] == variant]
    pairs = [(a, b) for a, b in zip(scratch, moved, strict=True) if None not in (a, b)]
    ck_cfg = src["checkpoint"]["config"]
    return {"dataset": dataset, "train_images": n, "dice_scratch": mean_of(scratch),
            "dice_transfer": mean_of(moved),
            "seconds_scratch": mean_of(c["seconds"] for c in cases if c["variant"] == "scratch"),
            "seconds_transfer": mean_of(c["seconds"] for c in cases if c["variant"] == variant),
            "variant": variant, "freeze_encoder": frozen, "seeds": seeds,
            "dice_scratch_per_seed": scratch, "dice_transfer_per_seed": moved,
            "gain": mean_of(b - a for a, b in pairs), "wins": sum(b > a for a, b in pairs),
            "source": src["path"], "source_dataset": Path(ck_cfg.data.path).name,
            "source_classes": list(ck_cfg.data.classes), "source_dice": src["dice"],
            "source_seconds": src["seconds"]}


def write_plot(report: dict, path) -> Path:
    """Test Dice per seed, from scratch and per transfer variant (PNG).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> rep = {"suite": "transfer", "summary": [{"dataset": "d", "train_images": 4}],
    ...        "cases": [{"seed": 0, "variant": "scratch", "dice": 0.5},
    ...                  {"seed": 0, "variant": "transfer", "dice": 0.7}]}
    >>> write_plot(rep, pathlib.Path(tempfile.mkdtemp()) / "t.png").stat().st_size > 1000
    True
    """
    if not isinstance(report, dict) or report.get("suite") != "transfer":
        raise InvalidArgumentError("report must be a transfer report (suite 'transfer')")
    from matplotlib.figure import Figure  # Agg canvas, no global pyplot state

    cases = report.get("cases", [])
    variants = list(dict.fromkeys(c["variant"] for c in cases))
    seeds = sorted({c["seed"] for c in cases})
    fig = Figure(figsize=(1.6 + 1.2 * max(1, len(seeds)), 3.6))
    ax = fig.subplots()
    width = 0.8 / max(1, len(variants))
    for k, name in enumerate(variants):
        dice = [next((c["dice"] or 0.0 for c in cases if c["seed"] == s and c["variant"] == name),
                     0.0) for s in seeds]
        ax.bar(np.arange(len(seeds)) + (k - (len(variants) - 1) / 2) * width, dice, width,
               label=name)
    row = (report.get("summary") or [{}])[0]
    ax.set(xticks=range(len(seeds)), xticklabels=[f"seed {s}" for s in seeds], ylim=(0, 1),
           ylabel="test Dice",
           title=f"{row.get('dataset', '')}: {row.get('train_images', '?')} training images")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)
