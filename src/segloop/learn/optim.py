"""Optimisation set-up of a training run: device, runtime, seeds, optimiser and schedule.

What :func:`segloop.learn.train.train` fixes before its first step:
:func:`select_device` (CUDA when present with ``training.device: auto``),
:func:`deterministic_runtime` (threads, deterministic algorithms; the global
settings are restored afterwards), :func:`seed_all` / :func:`epoch_seed` (every
epoch reseeds from (seed, epoch), so a resumed epoch draws the same samples),
:func:`build_optimizer` (Adam, AdamW or SGD) and :func:`build_scheduler`
(linear warm-up, then cosine, poly or constant, per iteration).

Examples
--------
>>> from segloop.learn.config import load_config
>>> cfg = load_config({"data": {"path": "x"}, "optim": {"name": "sgd", "lr": 0.1},
...                    "training": {"device": "cpu"}})
>>> opt = build_optimizer(cfg, [torch.zeros(1, requires_grad=True)])
>>> type(opt).__name__, opt.defaults["nesterov"], select_device(cfg).type
('SGD', True, 'cpu')
>>> epoch_seed(0, 1) == epoch_seed(0, 1) != epoch_seed(0, 2)
True
"""

from __future__ import annotations

import contextlib
import math
import os
import random

import numpy as np
import torch
from torch.utils import deterministic

from segloop.errors import InvalidArgumentError
from segloop.learn.config import Config

__all__ = ["build_optimizer", "build_scheduler", "deterministic_runtime", "epoch_seed",
           "seed_all", "select_device"]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` of a run seeded with ``seed`` (the same on a resume)."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, epoch]).generate_state(1)[0])


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators.

    For third-party code that draws from them (MONAI transforms, dropout...).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)


def select_device(cfg: Config) -> torch.device:
    """The device of ``training.device`` (``auto``: CUDA when present, else CPU)."""
    wanted = cfg.training.device
    if wanted == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError("training.device: cuda asked for but no CUDA device is "
                                   "available (use auto or cpu)")
    return torch.device("cuda" if wanted != "cpu" and torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def deterministic_runtime(cfg: Config):
    """Threads and deterministic algorithms for the run; the global settings are restored.

    Yields the number of threads (``training.threads``, 0: one per core).
    """
    threads = cfg.training.threads or os.cpu_count() or 1
    old = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
           torch.is_deterministic_algorithms_warn_only_enabled(),
           torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
           deterministic.fill_uninitialized_memory)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    # filling every new buffer with NaN (a debugging aid of the deterministic mode) costs up
    # to a quarter of a CPU training step and changes no result
    deterministic.fill_uninitialized_memory = False
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield threads
    finally:
        torch.set_num_threads(old[0])
        torch.use_deterministic_algorithms(old[1], warn_only=old[2])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = old[3], old[4]
        deterministic.fill_uninitialized_memory = old[5]


def build_optimizer(cfg: Config, params) -> torch.optim.Optimizer:
    """The optimiser of ``cfg.optim`` (Adam, AdamW or SGD with Nesterov momentum)."""
    o = cfg.optim
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.momentum > 0,
                               weight_decay=o.weight_decay)
    kind = torch.optim.Adam if o.name == "adam" else torch.optim.AdamW
    return kind(params, lr=o.lr, weight_decay=o.weight_decay)


def build_scheduler(cfg: Config, optimizer, *, steps_per_epoch: int):
    """A per-iteration schedule: linear warm-up, then cosine, poly (power 0.9) or constant.

    Examples
    --------
    >>> from segloop.learn.config import load_config
    >>> cfg = load_config({"data": {"path": "x"}, "training": {"epochs": 4},
    ...                    "optim": {"lr": 1.0, "warmup_epochs": 1, "schedule": "cosine"}})
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = build_scheduler(cfg, opt, steps_per_epoch=2)
    >>> lrs = []
    >>> for _ in range(8):
    ...     lrs.append(round(opt.param_groups[0]["lr"], 3)); opt.step(); sched.step()
    >>> lrs
    [0.5, 1.0, 1.0, 0.933, 0.75, 0.5, 0.25, 0.067]
    """
    o = cfg.optim
    total = max(1, cfg.training.epochs * steps_per_epoch)
    warm = min(o.warmup_epochs * steps_per_epoch, total - 1)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        if o.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t))
        if o.schedule == "poly":
            return (1.0 - t) ** 0.9
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
