"""``segloop config init|check`` and ``segloop train CONFIG``: config-driven training.

``segloop config init --preset 2d|3d|softseg [--out FILE]`` writes a commented
starting config (to stdout without ``--out``; an existing file is kept unless
``--overwrite``, which keeps the old one as a numbered version).
``segloop config check CONFIG [--set KEY=VALUE ...]`` validates a config and
prints it resolved. ``segloop train CONFIG [--set KEY=VALUE ...]`` trains,
evaluates on the test split and writes ``OUTPUT_DIR/metrics.json``; it prints
a line per epoch, and on a terminal (stderr a TTY) a progress line rewritten in
place during the epoch (iteration i/N, running loss, samples/s); Ctrl-C keeps
the finished epochs in ``OUTPUT_DIR/last.pt`` and exits with status 130 (run
the same command again to resume).

torch and MONAI (the ``learn`` extra) are imported inside the commands only.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from pathlib import Path

from segloop.errors import InvalidArgumentError

__all__ = ["ProgressLine", "register", "run_check", "run_init", "run_train"]

_SET_HELP = ("override one key by its dotted name, e.g. training.max_minutes=20 or "
             "data.path=/data/em (repeatable; VALUE is read as YAML, as text for text keys)")


def register(sub) -> None:
    """Add the ``config`` and ``train`` sub-commands."""
    from segloop.learn.presets import PRESETS

    config = sub.add_parser("config", help="write or check a training config",
                            description="Training configs: write a commented starting config "
                            "(init) or validate one (check).")
    actions = config.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    init = actions.add_parser("init", help="write a commented starting config",
                              description="Write a commented starting config; set data.path "
                              "in it (or with --set data.path=... when training).")
    init.add_argument("--preset", choices=PRESETS, default="2d",
                      help="2d (U-Net on images/slices), 3d (volume patches) or softseg "
                      "(soft labels, normalized ReLU, regression loss); default 2d")
    init.add_argument("--out", metavar="FILE", default=None,
                      help="YAML file to write (default: print to the terminal)")
    init.add_argument("--overwrite", action="store_true",
                      help="replace --out if it exists (the old file is kept as a version)")
    init.set_defaults(func=run_init)
    check = actions.add_parser("check", help="validate a config and print it resolved",
                               description="Validate CONFIG (with --set overrides) against "
                               "the schema and print every key with its value.")
    check.add_argument("config", metavar="CONFIG", help="YAML or JSON config file")
    check.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help=_SET_HELP)
    check.set_defaults(func=run_check)

    train = sub.add_parser(
        "train", help="train a U-Net from a config and evaluate it on the test split",
        description="Train the network a config describes, with validation, checkpoints "
        "(OUTPUT_DIR/last.pt, best.pt), metrics.csv, TensorBoard and learning curves, then "
        "evaluate best.pt on the test split into OUTPUT_DIR/metrics.json. An existing "
        "OUTPUT_DIR/last.pt is resumed (training.resume). Ctrl-C keeps the finished epochs.")
    train.add_argument("config", metavar="CONFIG", help="YAML or JSON config file "
                       "(`segloop config init` writes one)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help=_SET_HELP)
    train.set_defaults(func=run_train)


def run_init(args) -> int:
    """Write (or print) a preset."""
    from segloop.learn.presets import preset_text, write_preset

    if args.out is None:
        sys.stdout.write(preset_text(args.preset))
        return 0
    path = write_preset(args.preset, args.out, overwrite=args.overwrite)
    print(f"wrote {path} (preset {args.preset}); set data.path in it, then run "
          f"`segloop train {shlex.quote(str(path))}`")
    return 0


def _learn_extra(command: str) -> None:
    """A one-line error when the ``learn`` extra (torch, MONAI, pydantic) is missing."""
    import importlib.util

    for name in ("pydantic", "torch", "monai"):
        if importlib.util.find_spec(name) is None:
            raise InvalidArgumentError(f"segloop {command} needs {name}: install the learn "
                                       "extra (pip install 'segloop[learn]')")


def run_check(args) -> int:
    """Validate a config and print it resolved."""
    import yaml

    _learn_extra("config check")
    from segloop.learn.config import load_config, to_dict

    cfg = load_config(args.config, overrides=args.set)
    sys.stdout.write(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return 0


class ProgressLine:
    """The progress of an epoch on one terminal line, rewritten in place.

    A ``progress`` callback of :func:`segloop.learn.train.train`; it redraws at
    most every ``every`` seconds, and always on an epoch's last iteration and
    on the first event after :meth:`clear` (which erases the line before other
    output, such as the line of each epoch).

    Examples
    --------
    >>> ProgressLine.text({"stage": "train", "epoch": 2, "epochs": 5, "iteration": 3,
    ...                    "iterations": 10, "loss": 0.4567, "samples_per_second": 12.34})
    'epoch 2/5 [######              ]  3/10  loss 0.4567  12.3 samples/s'
    """

    def __init__(self, stream, *, every: float = 0.2, width: int | None = None):
        self.stream, self.every, self.width = stream, float(every), width
        self.shown, self.last = False, -float("inf")

    def __call__(self, event: dict) -> None:
        """Draw ``event`` (see :func:`segloop.learn.train.train`)."""
        now = time.monotonic()
        last = event.get("stage") != "train" or event["iteration"] >= event["iterations"]
        if now - self.last < self.every and not last:
            return
        self.last = now
        width = self.width or shutil.get_terminal_size().columns
        self.stream.write("\r" + self.text(event)[: max(width - 1, 10)] + "\x1b[K")
        self.stream.flush()
        self.shown = True

    @staticmethod
    def text(event: dict) -> str:
        """The line for ``event``."""
        head = f"epoch {event['epoch']}/{event['epochs']}"
        if event.get("stage") != "train":
            return f"{head} validating..."
        i, n = event["iteration"], event["iterations"]
        done = int(20 * i / n) if n else 20
        count = f"{i:>{len(str(n))}}/{n}"
        return (f"{head} [{'#' * done}{' ' * (20 - done)}] {count}  loss {event['loss']:.4f}  "
                f"{event['samples_per_second']:.1f} samples/s")

    def clear(self) -> None:
        """Erase the progress line (before printing something else); the next event draws."""
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False
        self.last = -float("inf")


def _interrupted(args, cfg) -> str:
    """What Ctrl-C leaves behind and how to go on."""
    again = " ".join(["segloop", "train", shlex.quote(args.config),
                      *(f"--set {shlex.quote(s)}" for s in args.set)])
    last = Path(cfg.output.dir) / "last.pt"
    if not cfg.training.resume:
        return f"segloop train: interrupted (training.resume is false: {again} starts afresh)"
    if not last.exists():
        return ("segloop train: interrupted before the first epoch finished; nothing to resume "
                f"(start again with: {again})")
    return (f"segloop train: interrupted; finished epochs are kept in {last}; resume with: "
            f"{again}")


def run_train(args) -> int:
    """Train from a config; 130 after Ctrl-C."""
    _learn_extra("train")
    from segloop.learn.config import load_config

    cfg = load_config(args.config, overrides=args.set)
    from segloop.learn.train import train  # torch is imported here, after the config is valid

    bar = ProgressLine(sys.stderr) if sys.stderr.isatty() else None

    def log(line: str) -> None:
        if bar is not None:
            bar.clear()
        print(line, flush=True)

    try:
        train(cfg, log=log, progress=bar)
    except KeyboardInterrupt:
        if bar is not None:
            bar.clear()
        print(_interrupted(args, cfg), file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.clear()
    return 0
