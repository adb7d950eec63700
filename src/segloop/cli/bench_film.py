r"""``segloop bench film``: a plain U-Net vs the same U-Net conditioned on metadata (FiLM).

::

    segloop bench film --config configs/film_lgg.yaml --json film.json --plot film.png

The report is :func:`segloop.bench.film.run_film_bench`'s. The config is
parsed (and must have ``model.film``) before torch is imported, so bad input
fails at once.
"""

from __future__ import annotations

__all__ = ["add_parser", "run"]


def add_parser(suites, common):
    """Add ``film`` to the bench sub-parsers (``common`` adds ``--json`` and ``--plot``)."""
    p = suites.add_parser(
        "film", help="FiLM: a plain U-Net vs the same U-Net conditioned on metadata",
        description="Train the config twice on the same data, split, seed and budget: without "
        "model.film (a plain U-Net) and with it (the U-Net modulated by each case's metadata, "
        "e.g. its contrast); report the test Dice of both, overall and per value of each "
        "categorical field, and the FiLM model's Dice with the metadata hidden.")
    p.add_argument("--config", required=True, metavar="CFG",
                   help="a training config with model.film (YAML/JSON; configs/film_*.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. training.max_minutes=2 or data.path=DIR "
                   "(repeatable; VALUE is read as YAML)")
    common(p)
    return p


def run(args):
    """Run the suite: ``(report, write_plot)``."""
    from segloop.errors import InvalidArgumentError
    from segloop.learn.config import load_config

    cfg = load_config(args.config, overrides=args.set)
    if cfg.model.film is None:
        raise InvalidArgumentError("the config has no model.film: nothing to compare (add "
                                   "model.film.fields, e.g. [contrast])", path=args.config)
    from segloop.bench.film import run_film_bench, write_plot  # torch after the config

    report = run_film_bench(cfg, args={"config": args.config, "set": list(args.set)},
                            log=lambda line: print(line, flush=True))
    return report, write_plot
