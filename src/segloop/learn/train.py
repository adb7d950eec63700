"""Training: one config in, a trained model and its test-split metrics out.

:func:`train` runs fixed steps:

1. **set up**: seeds (``training.seed``; every epoch reseeds from (seed, epoch),
   so a resumed epoch draws the same samples), deterministic algorithms,
   threads (``training.threads``, 0: one per core), device (CUDA when present
   with ``training.device: auto``), optimiser and schedule (cosine / poly per
   iteration, linear warm-up) of :mod:`segloop.learn.optim`; the data
   (:func:`segloop.learn.data.prepare_data`), network and loss
   (:func:`segloop.learn.losses.build_loss`);
2. **start**: resume from ``OUTPUT_DIR/last.pt`` when it exists and
   ``training.resume`` (weights, optimiser, schedule, history, elapsed time; a
   checkpoint of another architecture or other ``optim.*`` settings is refused,
   more ``training.epochs`` continue it), else ``training.init_from`` (a
   network of the same shape; its output block only when the classes are the
   same: :mod:`segloop.learn.transfer`), with the encoder frozen when
   ``training.freeze_encoder``: :mod:`segloop.learn.resume`;
3. **epochs**: a progress line per epoch (loss, validation Dice, seconds,
   samples/s, seconds waiting for the loader), and within the epoch an
   optional ``progress`` callback after every iteration (the command line draws
   it as a bar on a terminal); validation Dice every
   ``training.val_every`` epochs on whole slices / volumes (sliding window
   for 3D; :mod:`segloop.learn.scoring`); ``best.pt`` on a better validation
   Dice, then ``last.pt``, after every epoch (in that order: ``last.pt`` never
   names a best epoch that ``best.pt`` does not hold); ``metrics.csv`` (its
   ``lr`` is the learning rate the epoch started with; the schedule steps per
   iteration), TensorBoard scalars and ``learning_curves.png``. Training stops
   after ``training.epochs``, at the ``training.max_minutes`` budget (checked
   between iterations; the epoch in progress counts, is validated and saved) or
   when the validation Dice has not improved for ``training.early_stopping``
   validations;
4. **test**: ``best.pt`` is evaluated on the test split, each case on its
   native grid against its native annotation (:func:`segloop.learn.scoring.score_cases`
   with ``native``), and the result written to ``OUTPUT_DIR/metrics.json``
   (see :func:`train`).

A config with a ``cascade`` section trains its stage 1 first (or reuses its
finished run, or takes its checkpoint), then itself on the cases cropped
around the stage-1 region; its checkpoints embed stage 1 (``cascade_locate``)
and its test metrics score the whole cascade on whole images
(:mod:`segloop.learn.cascade_train`).

Ctrl-C (``KeyboardInterrupt``) propagates after the finished epochs are safe
in ``last.pt`` (the interrupted epoch is redone on resume; during the first
epoch nothing is saved yet); the command line prints how to resume and exits
with status 130. One epoch is :func:`segloop.learn.epoch.run_epoch`, its
optimisation step :func:`segloop.learn.epoch.train_step` (a hook tests may
replace).

From the command line::

    segloop config init --preset 2d --out my.yaml
    segloop train my.yaml --set data.path=DATA --set training.max_minutes=10

(:func:`train` has a runnable example.)
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import yaml

from segloop.errors import InvalidArgumentError
from segloop.learn.checkpoint import load_checkpoint, save_checkpoint
from segloop.learn.config import Config, load_config, to_dict
from segloop.learn.data import PreparedData, prepare_data
from segloop.learn.epoch import epoch_line, run_epoch
from segloop.learn.history import TensorBoard, plot_curves, replace_file, write_csv
from segloop.learn.losses import build_loss
from segloop.learn.networks import build_network
from segloop.learn.optim import (
    build_optimizer,
    build_scheduler,
    deterministic_runtime,
    seed_all,
    select_device,
)
from segloop.learn.predict import Predictor
from segloop.learn.resume import start_state, training_checkpoint
from segloop.learn.sampling import make_loader
from segloop.learn.scoring import score_cases, summarize
from segloop.learn.transfer import freeze_encoder, trainable_parameters

__all__ = ["STOP_REASONS", "train"]


#: Values of ``stopped`` in ``metrics.json`` (an interrupted run writes no metrics: it
#: raises ``KeyboardInterrupt`` and resumes later).
STOP_REASONS = ("epochs", "max_minutes", "early_stopping")


def _validate(run: dict) -> float | None:
    volumes = run["data"].val
    if not volumes:
        return None
    cases = score_cases(run["predictor"], volumes, tta=False)
    return summarize(cases, run["cfg"])["dice"]


def _stale(history: list[dict], best: dict | None) -> int:
    """Validations since the best one."""
    after = best["epoch"] if best else 0
    return sum(1 for r in history if r.get("val_dice") is not None and r["epoch"] > after)


# ------------------------------------------------------------------------------ train


def _write_history(out: Path, history: list[dict]) -> None:
    write_csv(history, out / "metrics.csv")
    if history:
        plot_curves(history, out / "learning_curves.png")


def _loop(run: dict, state: dict, out: Path, log, progress) -> str:
    """The epochs; returns why they stopped."""
    cfg = run["cfg"]
    budget = None if cfg.training.max_minutes is None else cfg.training.max_minutes * 60.0
    started, before = time.perf_counter(), state["elapsed"]

    def elapsed() -> float:
        return before + time.perf_counter() - started

    def out_of_time() -> bool:
        return budget is not None and elapsed() >= budget

    tb = TensorBoard(out / "tb", enabled=cfg.output.tensorboard)
    try:
        for epoch in range(state["epoch"] + 1, cfg.training.epochs + 1):
            if out_of_time():
                return "max_minutes"
            row = run_epoch(run, epoch, out_of_time, progress)
            # the last epoch before the budget stops the run: validated and saved
            stopping = row.pop("stopped_early") or (epoch < cfg.training.epochs and out_of_time())
            if stopping or epoch % cfg.training.val_every == 0 or epoch == cfg.training.epochs:
                if progress is not None and run["data"].val:
                    progress({"stage": "validate", "epoch": epoch,
                              "epochs": cfg.training.epochs})
                row["val_dice"] = _validate(run)
            if not run["data"].val:  # nothing to compare: best.pt is the latest
                improved = True
            else:
                improved = row["val_dice"] is not None and (
                    state["best"] is None or row["val_dice"] > state["best"]["dice"])
            if improved:
                state["best"] = {"dice": row["val_dice"], "epoch": epoch}
            row["elapsed"] = elapsed()
            state.update(epoch=epoch, elapsed=row["elapsed"], history=state["history"] + [row])
            checkpoint = training_checkpoint(run, state)
            if run.get("cascade") is not None:  # one file predicts: stage 1 rides along
                checkpoint["cascade_locate"] = run["cascade"].embedded
            if improved:  # best.pt first: a kill between the two leaves last.pt older, not wrong
                save_checkpoint(out / "best.pt", checkpoint)
            save_checkpoint(out / "last.pt", checkpoint)
            _write_history(out, state["history"])
            tb.log(row)
            log(epoch_line(row, cfg.training.epochs, state["best"]))
            if stopping:
                return "max_minutes"
            patience = cfg.training.early_stopping
            if patience and run["data"].val and _stale(state["history"], state["best"]) >= patience:
                log(f"early stopping: no better validation Dice for {patience} validations")
                return "early_stopping"
    finally:
        tb.close()
    return "epochs"


def _setup(cfg: Config, log, data: PreparedData | None = None) -> dict:
    device = select_device(cfg)
    seed_all(cfg.training.seed)
    if data is None:
        data = prepare_data(cfg, log=log)
    if not data.train:
        raise InvalidArgumentError("no training cases after the split (data.split)",
                                   path=cfg.data.path)
    net = build_network(cfg, in_channels=data.in_channels,
                        metadata=data.preprocess.get("metadata")).to(device)
    if cfg.training.freeze_encoder:  # the optimiser only holds what still trains
        log(f"freeze_encoder: {len(freeze_encoder(net))} encoder tensors frozen")
    forward = net.logits
    if cfg.training.compile:
        forward = torch.compile(net.backbone)
    optimizer = build_optimizer(cfg, trainable_parameters(net))
    loader = make_loader(cfg, data.train, seed=cfg.training.seed)
    steps = len(loader)
    scheduler = build_scheduler(cfg, optimizer, steps_per_epoch=max(1, steps))
    predictor = Predictor(net, cfg, in_channels=data.in_channels, device=device)
    n_params = sum(p.numel() for p in net.parameters())
    n_train = sum(p.numel() for p in trainable_parameters(net))
    trains = "" if n_train == n_params else f" ({n_train:,} trained)"
    log(f"{len(data.train)} training, {len(data.val)} validation, {len(data.test)} test cases; "
        f"{n_params:,} parameters{trains}; {steps} iterations per epoch on {device}")
    return {"cfg": cfg, "device": device, "data": data, "loader": loader, "net": net,
            "forward": forward,
            "loss": build_loss(cfg), "optimizer": optimizer, "scheduler": scheduler,
            "predictor": predictor}


def _test(run: dict, out: Path, state: dict, stopped: str, log) -> dict:
    cfg, best = run["cfg"], out / "best.pt"
    if best.exists():
        run["net"].load_state_dict(load_checkpoint(best)["model"])
    t = time.perf_counter()
    cascade = run.get("cascade")
    if cascade is None:
        cases = score_cases(run["predictor"], run["data"].test, tta=cfg.inference.tta,
                            native=True)
    else:  # whole images through both stages, on their native grid
        from segloop.learn.cascade_train import score_cascade

        cases = score_cascade(cascade.predictor(run["predictor"]), cascade.data.test_cases,
                              tta=cfg.inference.tta)
    result = summarize(cases, cfg)
    if cascade is not None:
        result["cascade"] = {**cascade.info, "left_out": cascade.data.left_out,
                             "fallbacks": sum(c["box"] is None for c in cases)}
    history = state["history"]
    trained = sum(r.get("seconds") or 0.0 for r in history)
    samples = sum(r.get("samples") or 0 for r in history)
    result.update({
        "epochs": state["epoch"], "seconds": state["elapsed"],
        "samples_per_second": samples / trained if trained > 0 else 0.0,
        "loader_seconds": sum(r.get("loader_seconds") or 0.0 for r in history),
        "stopped": stopped, "best": state["best"], "test_cases": len(cases),
        "test_seconds": time.perf_counter() - t, "device": str(run["device"]),
        "checkpoint": str(best) if best.exists() else None})
    text = json.dumps(_finite(result), indent=2, allow_nan=False) + "\n"
    replace_file(out / "metrics.json", text)
    dice = "n/a" if result["dice"] is None else f"{result['dice']:.4f}"
    log(f"test dice {dice} on {len(cases)} cases ({stopped}; {state['epoch']} epochs, "
        f"{state['elapsed'] / 60:.1f} min) -> {out / 'metrics.json'}")
    return result


def _finite(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def train(cfg: Config, *, data: PreparedData | None = None, log=print, progress=None) -> dict:
    """Train the network of ``cfg`` and evaluate it on the test split.

    Parameters
    ----------
    cfg : Config
        The validated config (:func:`segloop.learn.config.load_config`).
    data : PreparedData, optional
        The split volumes to train, validate and test on, already read under
        ``cfg`` (:func:`segloop.learn.data.prepare_data`, or a subset of its
        lists: active learning trains on the labelled part of the pool). None:
        read them from ``data.path``.
    log : callable
        Receives the progress lines (one per epoch, and a few more).
    progress : callable, optional
        Called after every training iteration with ``{"stage": "train",
        "epoch", "epochs", "iteration", "iterations", "loss" (the mean loss of
        the epoch so far), "samples_per_second"}``, and before each validation
        with ``{"stage": "validate", "epoch", "epochs"}`` (a progress bar).

    Returns
    -------
    dict
        What ``OUTPUT_DIR/metrics.json`` holds: ``dice`` (mean foreground Dice
        over the test cases: the mean over classes per case, then over cases;
        hard Dice for soft labels, beside ``soft_dice`` and ``hard_dice``),
        ``per_class``, ``per_case``, ``epochs``, ``seconds`` (training wall
        time, over resumes), ``samples_per_second``, ``loader_seconds``,
        ``stopped`` (``epochs``, ``max_minutes`` or ``early_stopping``),
        ``best`` (validation Dice and epoch of ``best.pt``) and more.

    Raises
    ------
    KeyboardInterrupt
        After Ctrl-C; ``last.pt`` holds every finished epoch (none when it
        comes during the first).
    segloop.errors.SegloopError
        Bad data, a checkpoint of another architecture or a corrupt one (named).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from segloop.data import phantom_2d
    >>> from segloop.io import Image, write_image
    >>> from segloop.learn.config import load_config
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(5):
    ...     ph = phantom_2d((32, 32), seed=i, n_blobs=1, thin_structures=False)
    ...     write_image(Image(ph.image), root / "images" / f"{i}.nii.gz")
    ...     write_image(Image(ph.label, kind="label"), root / "labels" / f"{i}.nii.gz")
    >>> cfg = load_config({"data": {"path": str(root), "split": {"test": 1, "val": 1}},
    ...                    "model": {"channels": [4, 8]}, "output": {"dir": str(root / "run")},
    ...                    "training": {"epochs": 2, "iterations_per_epoch": 2, "batch_size": 2}})
    >>> result = train(cfg, log=lambda line: None)
    >>> result["epochs"], result["stopped"], 0 <= result["dice"] <= 1
    (2, 'epochs', True)
    >>> sorted(p.name for p in (root / "run").glob("*.*"))
    ['best.pt', 'config.yaml', 'last.pt', 'learning_curves.png', 'metrics.csv', 'metrics.json']
    """
    out = Path(cfg.output.dir)
    cascade = None
    if cfg.cascade is not None:  # stage 1 first (trained or reused), then the crops
        from segloop.learn.cascade_train import prepare_cascade

        if data is not None:
            raise InvalidArgumentError("a cascade config reads its own cropped cases; "
                                       "train(cfg) without data=")
        cascade = prepare_cascade(cfg, log=log, progress=progress)
        data = cascade.data.data
        if cfg.training.resume and cascade.resumes_another(out / "last.pt"):
            log(f"{out / 'last.pt'} holds another stage 1: stage 2 starts afresh")
            cfg = load_config(cfg, overrides=["training.resume=false"])
    with deterministic_runtime(cfg) as threads:
        run = _setup(cfg, log, data)
        run["cascade"] = cascade
        replace_file(out / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
        log(f"output in {out}; {threads} threads")
        state = start_state(run, out, log)
        try:
            stopped = _loop(run, state, out, log, progress)
        except KeyboardInterrupt:
            if state["epoch"]:
                log(f"interrupted: {state['epoch']} finished epochs are in {out / 'last.pt'}; "
                    "run the same command again to resume")
            else:
                log("interrupted during the first epoch: no epoch finished, nothing to resume")
            raise
        return _test(run, out, state, stopped, log)
