"""One training epoch: the optimisation step, the pass over the loader, its summary line.

:func:`run_epoch` reseeds the global generators from ``(training.seed,
epoch)`` (dropout, third-party transforms: the same on a resume), makes the
loader draw that epoch's samples, then for each batch calls :func:`train_step`
(the one optimisation step, a hook tests may replace) and steps the schedule
(per iteration). It returns the epoch's row of the history that
:mod:`segloop.learn.history` writes; :func:`epoch_line` is the line printed
for it. :mod:`segloop.learn.train` runs the epochs.
"""

from __future__ import annotations

import math
import time

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.learn.optim import epoch_seed, seed_all

__all__ = ["epoch_line", "run_epoch", "train_step"]


def train_step(forward, batch: dict, loss_fn, optimizer, device) -> float:
    """One optimisation step on ``batch``.

    Parameters
    ----------
    forward : callable
        Maps an image batch to logits (the network's ``logits``, possibly
        compiled); ``forward(image, meta)`` when the batch has metadata.
    batch : dict
        ``"image"`` ``(B, C, *patch)`` and ``"label"`` tensors, as the loader of
        :func:`segloop.learn.sampling.make_loader` gives them, and for a FiLM
        network ``"meta"`` ``(B, D)``: each sample's metadata vector.
    loss_fn : callable
        ``loss_fn(logits, label)``: a scalar tensor.
    optimizer : torch.optim.Optimizer
        Stepped once (gradients are reset first).
    device : torch.device or str
        Where the batch goes.

    Returns
    -------
    float
        The loss of the batch, before the step.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Conv2d(1, 2, 1)
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.5)
    >>> batch = {"image": torch.ones(2, 1, 4, 4),
    ...          "label": torch.zeros(2, 1, 4, 4, dtype=torch.long)}
    >>> def loss(logits, label):
    ...     return torch.nn.functional.cross_entropy(logits, label[:, 0])
    >>> first = train_step(net, batch, loss, opt, "cpu")
    >>> train_step(net, batch, loss, opt, "cpu") < first
    True
    """
    image = batch["image"].to(device, non_blocking=True)
    label = batch["label"].to(device, non_blocking=True)
    meta = batch.get("meta")
    optimizer.zero_grad(set_to_none=True)
    logits = forward(image) if meta is None else forward(image, meta.to(device, non_blocking=True))
    loss = loss_fn(logits, label)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def run_epoch(run: dict, epoch: int, out_of_time, progress=None) -> dict:
    """Train epoch ``epoch`` (from 1) of ``run``.

    Parameters
    ----------
    run : dict
        The run of :func:`segloop.learn.train.train`: ``cfg``, ``device``,
        ``loader``, ``net``, ``forward``, ``loss``, ``optimizer``, ``scheduler``.
    epoch : int
        Which epoch: its seed and its samples (the same on a resume).
    out_of_time : callable
        ``out_of_time()`` is checked after every iteration but the last; True
        ends the epoch early.
    progress : callable, optional
        Called after every iteration (see :func:`segloop.learn.train.train`).

    Returns
    -------
    dict
        The epoch's row of the history: ``epoch``, ``loss`` (mean over its
        iterations), ``val_dice`` (None: filled by the caller), ``lr`` (the
        learning rate the epoch started with), ``seconds``, ``samples``,
        ``samples_per_second``, ``loader_seconds`` (waiting for batches), and
        ``stopped_early`` (out of time before the last iteration).

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A loss that is not finite (training diverged).
    """
    cfg, device = run["cfg"], run["device"]
    seed_all(epoch_seed(cfg.training.seed, epoch))  # dropout etc.: the same on a resume
    loader = run["loader"]
    if hasattr(loader.sampler, "set_epoch"):  # the samples of this epoch, also on a resume
        loader.sampler.set_epoch(epoch - 1)
    run["net"].train()
    lr = run["optimizer"].param_groups[0]["lr"]  # the schedule steps per iteration
    total = len(loader)
    losses, samples, waited, timed_out = [], 0, 0.0, False
    start = time.perf_counter()
    batches = iter(loader)
    while True:
        t = time.perf_counter()
        batch = next(batches, None)
        waited += time.perf_counter() - t
        if batch is None:
            break
        loss = train_step(run["forward"], batch, run["loss"], run["optimizer"], device)
        if not math.isfinite(loss):
            raise InvalidArgumentError(f"training diverged: the loss is {loss} in epoch {epoch} "
                                       "(lower optim.lr?)")
        run["scheduler"].step()
        losses.append(loss)
        samples += int(batch["image"].shape[0])
        if progress is not None:
            progress({"stage": "train", "epoch": epoch, "epochs": cfg.training.epochs,
                      "iteration": len(losses), "iterations": total,
                      "loss": math.fsum(losses) / len(losses),
                      "samples_per_second": samples / max(time.perf_counter() - start, 1e-9)})
        if len(losses) < total and out_of_time():
            timed_out = True
            break
    del batches
    seconds = time.perf_counter() - start
    return {"epoch": epoch, "loss": float(np.mean(losses)) if losses else None, "val_dice": None,
            "lr": lr, "seconds": seconds, "samples": samples,
            "samples_per_second": samples / seconds if seconds > 0 else 0.0,
            "loader_seconds": waited, "stopped_early": timed_out}


def epoch_line(row: dict, epochs: int, best: dict | None) -> str:
    """The line printed after an epoch: its row (:func:`run_epoch`) and the best validation.

    Examples
    --------
    >>> row = {"epoch": 2, "loss": 0.25, "val_dice": 0.8, "seconds": 3.0,
    ...        "samples_per_second": 12.5, "loader_seconds": 0.1}
    >>> print(epoch_line(row, 10, {"dice": 0.8, "epoch": 2}))
    epoch 2/10  loss 0.2500  val dice 0.8000 (best 0.8000 @ 2)  3.0 s  12.5 samples/s  loader 0.1 s
    """
    val = "" if row["val_dice"] is None else f"  val dice {row['val_dice']:.4f}"
    if best and best.get("dice") is not None:
        val += f" (best {best['dice']:.4f} @ {best['epoch']})"
    loss = "n/a" if row["loss"] is None else f"{row['loss']:.4f}"
    return (f"epoch {row['epoch']}/{epochs}  loss {loss}{val}  {row['seconds']:.1f} s  "
            f"{row['samples_per_second']:.1f} samples/s  loader {row['loader_seconds']:.1f} s")
