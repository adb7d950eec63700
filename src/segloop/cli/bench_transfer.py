r"""``segloop bench transfer``: from scratch vs from a source model, with few training images.

::

    segloop bench transfer --config configs/transfer_acdc_rv.yaml \
        --source-config configs/transfer_acdc_lv.yaml --train-images 4 --seeds 3 \
        --json transfer.json --plot transfer.png

The report is :func:`segloop.bench.transfer.run_transfer_bench`'s. The
configs are parsed (and the numbers checked) before torch is imported, so bad
input fails at once.
"""

from __future__ import annotations

__all__ = ["add_parser", "run"]


def add_parser(suites, common):
    """Add ``transfer`` to the bench sub-parsers (``common`` adds ``--json`` and ``--plot``)."""
    p = suites.add_parser(
        "transfer", help="transfer learning: from scratch vs from a source model, few images",
        description="Train the target config on --train-images cases of its training split, "
        "from scratch and from a source model (a checkpoint, or a source config trained first "
        "and reused while its finished run matches), with the same recipe, the same cases and "
        "the same test split, for several seeds (each draws other cases); report the test "
        "Dice of each. The source must have the same network shape; its output block is "
        "re-initialised when the classes differ.")
    p.add_argument("--config", required=True, metavar="CFG",
                   help="the target training config (YAML/JSON; configs/transfer_*.yaml)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--source", metavar="CKPT", help="a segloop checkpoint to start from")
    src.add_argument("--source-config", metavar="CFG",
                     help="a source training config: trained first (OUTPUT_DIR/best.pt), or "
                     "its finished run reused")
    p.add_argument("--train-images", type=int, default=4, metavar="N",
                   help="training cases per run (images, or volumes a 2D model slices; "
                   "default 4)")
    p.add_argument("--seeds", type=int, default=3, metavar="N",
                   help="runs of each variant, each on other cases (default 3)")
    p.add_argument("--freeze", action="store_true",
                   help="transfer with a frozen encoder (training.freeze_encoder); with "
                   "--no-freeze too: both variants")
    p.add_argument("--no-freeze", action="store_true",
                   help="transfer training every layer (the default when neither is given, "
                   "unless the config sets training.freeze_encoder)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a target config key, e.g. training.epochs=2 or data.path=DIR "
                   "(repeatable; VALUE is read as YAML)")
    p.add_argument("--source-set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of --source-config (repeatable)")
    common(p)
    return p


def run(args):
    """Run the suite: ``(report, write_plot)``."""
    from segloop.errors import InvalidArgumentError
    from segloop.learn.config import load_config

    for name, value in (("--train-images", args.train_images), ("--seeds", args.seeds)):
        if value < 1:
            raise InvalidArgumentError(f"{name} must be at least 1, got {value}")
    if args.source_set and not args.source_config:
        raise InvalidArgumentError("--source-set needs --source-config")
    cfg = load_config(args.config, overrides=args.set)
    source_cfg = (load_config(args.source_config, overrides=args.source_set)
                  if args.source_config else None)
    if args.freeze or args.no_freeze:
        freeze = [False] * args.no_freeze + [True] * args.freeze
    else:
        freeze = [cfg.training.freeze_encoder]
    from segloop.bench.transfer import run_transfer_bench, write_plot  # torch after the configs

    report = run_transfer_bench(
        cfg, source=args.source, source_config=source_cfg, train_images=args.train_images,
        seeds=args.seeds, freeze=freeze,
        args={"config": args.config, "set": list(args.set), "source": args.source,
              "source_config": args.source_config, "source_set": list(args.source_set)},
        log=lambda line: print(line, flush=True))
    return report, write_plot
