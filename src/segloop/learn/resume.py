"""The training checkpoint of a run: what it saves every epoch and where it starts from.

:func:`training_checkpoint` is what ``OUTPUT_DIR/last.pt`` (every epoch) and
``best.pt`` (on a better validation Dice) hold: the keys of
:mod:`segloop.learn.checkpoint` plus the optimiser, the schedule, the RNG
state, the best validation Dice, the elapsed time and the history.
:func:`start_state` resumes from ``last.pt`` when it exists and
``training.resume`` (weights, optimiser, schedule, RNG state, history, elapsed
time; a checkpoint of another architecture, other ``optim.*`` settings or
another ``training.freeze_encoder`` is refused), else loads
``training.init_from`` (a network of the same shape; the output block only
when the classes are the same: :func:`segloop.learn.transfer.transfer_weights`),
else starts afresh. Both take the ``run`` of :func:`segloop.learn.train.train`: a dict
with ``cfg``, ``data`` (:class:`~segloop.learn.data.PreparedData`), ``net``,
``optimizer`` and ``scheduler``.

Examples
--------
>>> import pathlib, tempfile
>>> import torch
>>> from segloop.learn.config import load_config
>>> from segloop.learn.data import PreparedData
>>> from segloop.learn.networks import build_network
>>> cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]}})
>>> net = build_network(cfg, in_channels=1)
>>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
>>> run = {"cfg": cfg, "data": PreparedData([], [], [], 1, {}), "net": net, "optimizer": opt,
...        "scheduler": torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)}
>>> state = start_state(run, pathlib.Path(tempfile.mkdtemp()), print)  # nothing to resume
>>> state
{'epoch': 0, 'best': None, 'elapsed': 0.0, 'history': []}
>>> sorted(training_checkpoint(run, state))  # doctest: +NORMALIZE_WHITESPACE
['best', 'config', 'elapsed', 'epoch', 'history', 'in_channels', 'model', 'optimizer',
 'preprocess', 'scheduler']
"""

from __future__ import annotations

from pathlib import Path

from segloop.errors import InvalidArgumentError
from segloop.learn.checkpoint import load_checkpoint
from segloop.learn.config import Config, to_dict
from segloop.learn.transfer import transfer_weights

__all__ = ["RUN_ONLY", "start_state", "training_checkpoint", "what_learns"]

#: Settings that do not change what a run learns (a finished run that differs only in them
#: is reused by a cascade's stage 1 and by ``segloop bench transfer``'s source).
RUN_ONLY = (("training", "resume"), ("training", "threads"), ("training", "num_workers"),
            ("training", "device"), ("output", "tensorboard"), ("data", "cache_dir"))


def what_learns(cfg: Config) -> dict:
    """``cfg`` as plain data without :data:`RUN_ONLY`: equal for runs that learn the same.

    Examples
    --------
    >>> from segloop.learn.config import load_config
    >>> a = load_config({"data": {"path": "x"}, "training": {"threads": 1}})
    >>> b = load_config({"data": {"path": "x", "cache_dir": "c"}, "training": {"threads": 2}})
    >>> what_learns(a) == what_learns(b), what_learns(a) == what_learns(load_config(
    ...     {"data": {"path": "x"}, "training": {"seed": 7}}))
    (True, False)
    """
    d = to_dict(cfg)
    for section, key in RUN_ONLY:
        d[section].pop(key, None)
    return d


def _architecture(cfg: Config, in_channels: int) -> dict:
    """What decides the network's tensors (dropout does not)."""
    model = {k: v for k, v in to_dict(cfg)["model"].items() if k != "dropout"}
    return {**{f"model.{k}": v for k, v in model.items()},
            "data.dims": cfg.data.dims, "data.classes": list(cfg.data.classes),
            "in_channels": int(in_channels)}


def _optimisation(cfg: Config) -> dict:
    """What the saved optimiser and schedule stand for (momentum: SGD only; which tensors)."""
    optim = to_dict(cfg)["optim"]
    if optim["name"] != "sgd":
        optim.pop("momentum")
    return {**{f"optim.{k}": v for k, v in optim.items()},
            "training.freeze_encoder": cfg.training.freeze_encoder}


def _check_compatible(ck: dict, cfg: Config, in_channels: int, path: Path) -> None:
    """Refuse to resume ``ck`` with ``cfg`` when architecture or optimisation differ."""
    for what, theirs, ours in (
            ("another architecture", _architecture(ck["config"], ck.get("in_channels", 1)),
             _architecture(cfg, in_channels)),
            ("other optimiser settings", _optimisation(ck["config"]), _optimisation(cfg))):
        for key, value in ours.items():
            if theirs.get(key) != value:
                raise InvalidArgumentError(
                    f"was trained with {what} ({key}: {theirs.get(key)!r} there, {value!r} "
                    "here); use another output.dir or set training.resume=false",
                    path=path)


def _init_from(net, path, cfg: Config, in_channels: int, log) -> None:
    """Load ``training.init_from`` into ``net`` (:func:`segloop.learn.transfer.transfer_weights`).

    Logs one line naming how many tensors were loaded and, when the classes
    differ, the output-block tensors left at their fresh initialisation.
    """
    report = transfer_weights(net, path, config=cfg, in_channels=in_channels)
    log(report.line())


def training_checkpoint(run: dict, state: dict) -> dict:
    """The checkpoint of ``run`` after ``state["epoch"]`` (``state``: as :func:`start_state`)."""
    return {"config": run["cfg"], "in_channels": run["data"].in_channels,
            "model": run["net"].state_dict(), "optimizer": run["optimizer"].state_dict(),
            "scheduler": run["scheduler"].state_dict(), "epoch": state["epoch"],
            "best": state["best"], "elapsed": state["elapsed"],
            "preprocess": run["data"].preprocess, "history": state["history"]}


def start_state(run: dict, out: Path, log) -> dict:
    """The state to continue from: a resumed checkpoint, or a fresh start.

    ``{"epoch", "best", "elapsed", "history"}``: the last finished epoch (0
    fresh), the best validation ``{"dice", "epoch"}`` or None, the seconds
    trained and the history rows up to that epoch. ``log`` receives one line
    when resuming or initialising.
    """
    cfg, last = run["cfg"], out / "last.pt"
    state = {"epoch": 0, "best": None, "elapsed": 0.0, "history": []}
    if cfg.training.resume and last.exists():
        ck = load_checkpoint(last)
        _check_compatible(ck, cfg, run["data"].in_channels, last)
        run["net"].load_state_dict(ck["model"])
        if ck.get("optimizer"):
            run["optimizer"].load_state_dict(ck["optimizer"])
        if ck.get("scheduler"):
            run["scheduler"].load_state_dict(ck["scheduler"])
        state = {"epoch": int(ck["epoch"]), "best": ck.get("best"),
                 "elapsed": float(ck.get("elapsed") or 0.0),
                 "history": [r for r in ck.get("history") or [] if r["epoch"] <= ck["epoch"]]}
        log(f"resuming from {last} after epoch {state['epoch']} "
            f"({state['elapsed'] / 60:.1f} min trained)")
    elif cfg.training.init_from:
        _init_from(run["net"], cfg.training.init_from, cfg, run["data"].in_channels, log)
    return state
