"""``segloop bench finetune``: BIFSeg scribble fine-tuning vs the model and graph cut.

The parser (:func:`add_parser`) and the runner (:func:`run`) of the suite;
``segloop.cli.bench`` writes the JSON, prints the table and calls the plot.
The config is validated before torch is imported (a bad key fails fast).
"""

from __future__ import annotations

__all__ = ["add_parser", "run"]

_OPTIONS = ("steps", "rounds", "lam", "lr", "weight", "near", "band", "geodesic",
            "intensity")


def add_parser(suites, common):
    """Add the ``finetune`` sub-parser to ``suites``; ``common`` adds --json / --plot."""
    p = suites.add_parser(
        "finetune", help="scribble fine-tuning (BIFSeg) vs the model and graph cut",
        description="On the config's test split (held-back images), play the simulated "
        "annotator with <= --scribbles scribbles (first a foreground skeleton stroke and a "
        "background ring, then one stroke per largest error) for: the model alone, graph cut "
        "on the intensities, the CRF on the CNN's probabilities (bifseg_crf_only) and BIFSeg "
        "(CRF + image-specific fine-tuning). Reports Dice after each scribble, the gain over "
        "the model, and seconds per round.")
    p.add_argument("--config", required=True, metavar="CFG",
                   help="the training config of the model (data, split, pre-processing)")
    p.add_argument("--model", required=True, metavar="CKPT", help="trained checkpoint (best.pt)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. data.path=DIR (repeatable)")
    p.add_argument("--scribbles", type=int, default=5, metavar="N",
                   help="scribbles per case, at least 2 (default 5)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="at most N cases")
    p.add_argument("--slices", type=int, default=3, metavar="N",
                   help="2D models on volumes: slices per volume holding the class (default 3)")
    p.add_argument("--label", type=int, default=1, metavar="K",
                   help="the class to segment, 1-based (default 1)")
    p.add_argument("--method", nargs="+", default=None, metavar="M",
                   help="methods to run (model graphcut bifseg_crf_only bifseg; default all)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a FinetuneSession option: " + ", ".join(_OPTIONS) + " (repeatable)")
    common(p)
    return p


def _options(items) -> dict:
    from segloop.errors import InvalidArgumentError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in _OPTIONS:
            raise InvalidArgumentError(f"--option {item!r}: expected KEY=VALUE with KEY one of "
                                       f"{', '.join(_OPTIONS)}")
        try:
            number = float(value)
        except ValueError:
            raise InvalidArgumentError(f"--option {item!r}: {value!r} is not a number") from None
        out[key] = int(number) if key in ("steps", "rounds") and number.is_integer() else number
    return out


def run(args):
    """Run the suite; ``(report, write_plot)``."""
    from segloop.learn.config import load_config

    cfg = load_config(args.config, overrides=args.set)
    options = _options(args.option)
    from segloop.bench.finetune import METHODS, run_finetune_bench, write_plot

    report = run_finetune_bench(
        cfg, args.model, scribbles=args.scribbles, limit=args.limit, slices=args.slices,
        label=args.label, methods=tuple(args.method or METHODS), options=options,
        config_path=args.config, overrides=args.set, log=lambda line: print(line, flush=True))
    return report, write_plot
