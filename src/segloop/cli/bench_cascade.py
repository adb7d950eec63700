r"""``segloop bench cascade``: a cascade (locate, crop, segment) vs one whole-image model.

::

    segloop bench cascade --config configs/cascade_acdc.yaml \
        --json cascade_acdc.json --plot cascade_acdc.png

The report is :func:`segloop.bench.cascade.run_cascade_bench`'s. The config
and its stage-1 config are parsed before torch is imported, so bad input
fails at once.
"""

from __future__ import annotations

__all__ = ["add_parser", "run"]


def add_parser(suites, common):
    """Add ``cascade`` to the bench sub-parsers (``common`` adds ``--json`` and ``--plot``)."""
    p = suites.add_parser(
        "cascade", help="a locate-then-segment cascade vs one model on the whole image",
        description="Train, from scratch and with the same recipe and budget, the model of a "
        "cascade config without its cascade section (on whole images) and the cascade "
        "(stage 1 locates, stage 2 segments the crop); predict the same test cases with both, "
        "side by side, on their native grids; report the test Dice and the median inference "
        "seconds per case of each.")
    p.add_argument("--config", required=True, metavar="CFG",
                   help="a cascade (stage-2) config with a cascade section "
                   "(configs/cascade_*.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key, e.g. training.epochs=1 or data.path=DIR (repeatable; "
                   "VALUE is read as YAML); an inline stage-1 config inherits it")
    common(p)
    return p


def run(args):
    """Run the suite: ``(report, write_plot)``."""
    from segloop.learn.cascade_data import locate_config
    from segloop.learn.config import load_config

    cfg = load_config(args.config, overrides=args.set)
    if cfg.cascade is not None:
        locate_config(cfg)
    from segloop.bench.cascade import run_cascade_bench, write_plot  # torch after the configs

    report = run_cascade_bench(cfg, args={"config": args.config, "set": list(args.set)},
                               log=lambda line: print(line, flush=True))
    return report, write_plot
