"""``segloop config init|check`` and ``segloop train CONFIG``: config-driven training.

``segloop config init --preset 2d|3d|softseg [--out FILE]`` writes a commented
starting config (to stdout without ``--out``; an existing file is kept unless
``--overwrite``, which keeps the old one as a numbered version).
``segloop config check CONFIG [--set KEY=VALUE ...]`` validates a config and
prints it resolved. ``segloop train CONFIG [--set KEY=VALUE ...]`` trains,
evaluates on the test split and writes ``OUTPUT_DIR/metrics.json``; Ctrl-C
keeps the finished epochs in ``OUTPUT_DIR/last.pt`` and exits with status 130
(run the same command again to resume).

torch and MONAI (the ``learn`` extra) are imported inside the commands only.
"""

from __future__ import annotations

import shlex
import sys

from segloop.errors import InvalidArgumentError

__all__ = ["register", "run_check", "run_init", "run_train"]

_SET_HELP = ("override one key by its dotted name, e.g. training.max_minutes=20 or "
             "data.path=/data/em (repeatable; VALUE is read as YAML)")


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


def run_train(args) -> int:
    """Train from a config; 130 after Ctrl-C."""
    _learn_extra("train")
    from segloop.learn.config import load_config

    cfg = load_config(args.config, overrides=args.set)
    from segloop.learn.train import train  # torch is imported here, after the config is valid

    try:
        train(cfg, log=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        again = " ".join(["segloop", "train", shlex.quote(args.config),
                          *(f"--set {shlex.quote(s)}" for s in args.set)])
        print(f"segloop train: interrupted; finished epochs are kept in "
              f"{cfg.output.dir}/last.pt; resume with: {again}", file=sys.stderr)
        return 130
    return 0
