"""``segloop bench train``: test Dice, wall time and throughput beside a plain loop.

:func:`run_train_bench` runs, in one process:

1. **segloop**: :func:`segloop.learn.train.train` on the config, from scratch
   (``training.resume`` is turned off: a benchmark times a whole run; the
   output folder's checkpoints are replaced). It reports the test-split Dice of
   ``OUTPUT_DIR/metrics.json``, the training wall time (``seconds``: the epochs
   with their validations, what ``training.max_minutes`` bounds), the training
   throughput (``samples_per_s``: samples over the seconds spent in the
   training iterations, loader included) and the seconds spent waiting for the
   loader (``loader_seconds``).
2. **the plain loop** (:func:`segloop.bench.plain_loop.plain_loop`): the same
   network (:func:`segloop.learn.networks.build_network`, same seed, its MONAI
   U-Net trained directly), the same loss, optimiser, batch size, patch size,
   threads and device, on the same preprocessed arrays, cut into random
   patches by a bare torch ``DataLoader`` with no augmentation; the same number
   of iterations as segloop ran, or ``reference_iterations`` when that is
   smaller (steady-state throughput needs a few hundred iterations, not a
   whole run). ``ratio`` = segloop ÷ plain samples/s (target ≥ 0.95).

segloop's throughput includes its augmentation and foreground oversampling,
which the plain loop does not do, so the ratio is an upper bound on the
overhead: turn ``augmentation.enabled`` off to compare pipelines alone.
For a quick comparison shorten the run: ``--set training.epochs=2``.

Summary row (one): ``dataset`` (the data folder's name), ``dice``, ``seconds``,
``samples_per_s``, ``reference_samples_per_s``, ``ratio``, plus
``samples_per_s_wall`` / ``ratio_wall`` (samples over the whole training wall
time: the per-epoch checkpoints, CSV, curves and validations count too),
``loader_seconds``, ``loader_share`` (of the iterations' seconds),
``reference_loader_seconds``, ``iterations``, ``reference_iterations``,
``epochs``, ``stopped``, ``total_seconds`` (the whole ``train`` call: data,
training, test), ``batch_size``, ``patch``, ``threads``, ``device``, ``config``
(the file), ``output`` and, for soft labels, ``soft_dice`` / ``hard_dice`` /
``soft_mse`` / ``threshold_dice``.
Cases: one row per test case (``dataset, case, dice, per_class`` and
``soft_dice``), then one row for the plain loop (``case: "plain-loop"``: its
first and last losses).

Examples
--------
>>> row = summary_row({"dice": 0.9, "seconds": 60.0}, {"samples_per_s": 9.0},
...                   {"samples_per_s": 10.0}, dataset="em")
>>> row["dataset"], row["dice"], row["ratio"]
('em', 0.9, 0.9)
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from segloop.bench.plain_loop import plain_loop
from segloop.bench.report import bench_report
from segloop.errors import InvalidArgumentError
from segloop.learn.checkpoint import load_checkpoint
from segloop.learn.config import Config, load_config, to_dict
from segloop.learn.data import prepare_data
from segloop.learn.losses import build_loss
from segloop.learn.networks import build_network
from segloop.learn.optim import build_optimizer
from segloop.learn.sampling import patch_shape
from segloop.learn.train import train

__all__ = ["run_reference", "run_train_bench", "summary_row"]


def _ratio(a, b):
    return None if not a or not b else a / b


def summary_row(metrics: dict, segloop_run: dict, reference: dict | None, *,
                dataset: str) -> dict:
    """The summary row of the suite from train's metrics and the two throughputs."""
    ref = reference or {}
    return {"dataset": dataset, "dice": metrics.get("dice"), "seconds": metrics.get("seconds"),
            "samples_per_s": segloop_run.get("samples_per_s"),
            "reference_samples_per_s": ref.get("samples_per_s"),
            "ratio": _ratio(segloop_run.get("samples_per_s"), ref.get("samples_per_s"))}


def _segloop_throughput(out: Path, metrics: dict, batch_size: int) -> dict:
    """Samples, iterations and seconds of the training iterations (from ``last.pt``)."""
    history = load_checkpoint(out / "last.pt")["history"] if (out / "last.pt").exists() else []
    samples = sum(int(r.get("samples") or 0) for r in history)
    seconds = sum(float(r.get("seconds") or 0.0) for r in history)
    iterations = sum(math.ceil(int(r.get("samples") or 0) / batch_size) for r in history)
    wall = float(history[-1].get("elapsed") or 0.0) if history else 0.0
    return {"samples": samples, "iterations": iterations, "seconds": seconds,
            "samples_per_s": samples / seconds if seconds > 0 else metrics.get(
                "samples_per_second"),
            "samples_per_s_wall": samples / wall if wall > 0 else None,
            "loader_seconds": metrics.get("loader_seconds")}


def run_reference(cfg: Config, *, iterations: int, log=print) -> dict:
    """The plain loop on the training split of ``cfg`` (see the module docstring).

    Returns
    -------
    dict
        What :func:`segloop.bench.plain_loop.plain_loop` returns, plus ``patch``
        and ``threads``.
    """
    data = prepare_data(cfg, log=lambda line: None)  # the cache of the run: no re-reading
    patch = patch_shape(cfg, data.train)
    threads = cfg.training.threads or os.cpu_count() or 1
    device = torch.device("cuda" if cfg.training.device != "cpu" and torch.cuda.is_available()
                          else "cpu")
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(cfg.training.seed)
        model = build_network(cfg, in_channels=data.in_channels,
                              metadata=data.preprocess.get("metadata")).backbone.to(device)
        forward = torch.compile(model) if cfg.training.compile else model
        labels = [v.label for v in data.train]
        if any(lab is None for lab in labels):
            raise InvalidArgumentError("a training case has no label", path=cfg.data.path)
        log(f"plain loop: {iterations} iterations of {cfg.training.batch_size} patches "
            f"{'x'.join(map(str, patch))} on {device}, {threads} threads")
        run = plain_loop(forward, build_loss(cfg), build_optimizer(cfg, model.parameters()),
                         [v.image for v in data.train], labels, patch=patch,
                         batch_size=cfg.training.batch_size, iterations=iterations,
                         slice_axes=[v.slice_axis for v in data.train],
                         num_workers=cfg.training.num_workers, seed=cfg.training.seed,
                         device=device)
    finally:
        torch.set_num_threads(old)
    return {**run, "patch": list(patch), "threads": threads}


def run_train_bench(cfg: Config, *, reference_iterations: int | None = None,
                    config_path: str | None = None, overrides=(), log=print) -> dict:
    """Train with segloop, then time the plain loop; the suite's report.

    Parameters
    ----------
    cfg : Config
        The validated config (:func:`segloop.learn.config.load_config`).
    reference_iterations : int, optional
        At most this many plain-loop iterations (None: as many as segloop ran;
        0: no plain loop, ``ratio`` None).
    config_path, overrides
        Recorded in ``args`` (the command that produced the report).
    log : callable
        Receives progress lines.

    Returns
    -------
    dict
        :func:`segloop.bench.report.bench_report` of suite ``train``.

    Raises
    ------
    segloop.errors.SegloopError
        A bad config, dataset or output folder (one line naming it).
    """
    if reference_iterations is not None and reference_iterations < 0:
        raise InvalidArgumentError(f"--reference-iterations must be 0 or more, got "
                                   f"{reference_iterations}")
    cfg = load_config(cfg, overrides=["training.resume=false"])
    out = Path(cfg.output.dir)
    dataset = Path(cfg.data.path).resolve().name
    start = time.perf_counter()
    metrics = train(cfg, log=log)
    total = time.perf_counter() - start
    ours = _segloop_throughput(out, metrics, cfg.training.batch_size)
    n_ref = ours["iterations"] if reference_iterations is None else min(
        reference_iterations, max(ours["iterations"], 1))
    reference = run_reference(cfg, iterations=n_ref, log=log) if n_ref > 0 else None
    row = summary_row(metrics, ours, reference, dataset=dataset)
    row.update({
        "samples_per_s_wall": ours["samples_per_s_wall"],
        "ratio_wall": _ratio(ours["samples_per_s_wall"], reference and reference["samples_per_s"]),
        "loader_seconds": ours["loader_seconds"],
        "loader_share": (ours["loader_seconds"] or 0.0) / ours["seconds"] if ours["seconds"]
        else None,
        "reference_loader_seconds": reference and reference["loader_seconds"],
        "iterations": ours["iterations"], "reference_iterations": reference and n_ref,
        "epochs": metrics.get("epochs"), "stopped": metrics.get("stopped"),
        "total_seconds": total, "batch_size": cfg.training.batch_size,
        "patch": reference["patch"] if reference else None,
        "threads": cfg.training.threads or os.cpu_count(), "device": metrics.get("device"),
        "config": config_path, "output": str(out)})
    if cfg.data.soft_labels:
        row.update({k: metrics.get(k) for k in ("soft_dice", "hard_dice", "soft_mse",
                                                 "threshold_dice")})
    cases = [{"dataset": dataset, "case": c["id"], "dice": c["dice"],
              "per_class": c["per_class"],
              **({"soft_dice": c["soft_dice"]} if "soft_dice" in c else {})}
             for c in metrics.get("per_case", [])]
    if reference:
        losses = reference["losses"]
        cases.append({"dataset": dataset, "case": "plain-loop", "iterations": n_ref,
                      "seconds": reference["seconds"], "loss_first": losses[0],
                      "loss_last": float(np.mean(losses[-max(1, len(losses) // 10):]))})
    notes = ["samples_per_s: segloop's training iterations (loader, augmentation, step); "
             "reference: a bare torch DataLoader of random patches of the same arrays, no "
             "augmentation, same network/loss/optimiser/batch/threads"
             + ("" if reference is None or n_ref == ours["iterations"]
                else f"; the plain loop ran {n_ref} of segloop's {ours['iterations']} "
                "iterations")]
    if reference is None:
        notes.append("no plain loop (reference iterations 0): ratio is null")
    args = {"config": config_path, "set": list(overrides),
            "reference_iterations": reference_iterations, "resolved": to_dict(cfg)}
    if reference is not None and row["ratio"] is not None:
        log(f"{dataset}: dice {row['dice']}, {row['samples_per_s']:.2f} samples/s vs plain "
            f"{row['reference_samples_per_s']:.2f} (ratio {row['ratio']:.3f})")
    return bench_report("train", args=args, summary=[row], cases=cases, notes=notes)
