"""``segloop bench SUITE``: run a benchmark suite and write its JSON (and a plot)."""

from __future__ import annotations

import importlib

__all__ = ["SUITES", "register", "run"]

SUITES = ("latency", "clicks", "interpolation", "train", "loop", "finetune", "transfer", "raters",
          "server", "cascade", "film", "quantize")

#: Suites whose parser and runner live in their own module ``segloop.cli.bench_<suite>``:
#: ``add_parser(suites, common)`` adds the sub-parser, ``run(args) -> (report, plot)`` runs it
#: (``plot``: None or a ``write(report, path)`` function for ``--plot``).
_MODULE_SUITES = ("loop", "finetune", "transfer", "raters", "server", "cascade", "film",
                  "quantize")


def _common(p, *, plot: bool = True) -> None:
    p.add_argument("--json", metavar="OUT", default=None,
                   help="write the report here (an existing file is kept as OUT.~N~)")
    if plot:
        p.add_argument("--plot", metavar="PNG", default=None, help="write a figure here")


def register(sub) -> None:
    """Add the ``bench`` sub-command and its suites."""
    p = sub.add_parser("bench",
                       help="run a benchmark suite (" + ", ".join(SUITES) + ")",
                       description="Run a benchmark suite and write machine-readable JSON "
                       "(common top level: suite, segloop_version, versions, machine, args, "
                       "summary, cases).")
    suites = p.add_subparsers(dest="suite", metavar="SUITE")
    suites.required = True

    lat = suites.add_parser("latency", help="time every tool beside the raw solver it wraps")
    _common(lat, plot=False)
    lat.add_argument("--repeats", type=int, default=20, help="timed calls per measurement")
    lat.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    lat.add_argument("--group", action="append", default=None,
                     choices=("contours", "cuts", "edit"), help="only these tool groups")

    clk = suites.add_parser("clicks", help="interactions to reach Dice 0.85/0.9 per tool",
                            description="Play every click-driven tool (and its peers) with the "
                            "simulated annotator on real images; report NoC@85/NoC@90, Dice "
                            "after 1/3/5 interactions and the polygon baseline.")
    clk.add_argument("--data", nargs="+", action="extend", required=True, metavar="DIR",
                     help="dataset folder(s) (any layout segloop dataset recognises)")
    clk.add_argument("--tool", nargs="+", action="extend", default=None, metavar="T",
                     help="tools/peers to run (default: all click-driven tools and peers)")
    clk.add_argument("--target", nargs="+", type=float, default=[0.85, 0.9], metavar="DICE")
    clk.add_argument("--max", type=int, default=20, dest="max_interactions",
                     help="interaction cap (a failure counts as the cap)")
    clk.add_argument("--limit", type=int, default=None, help="max objects per dataset")
    clk.add_argument("--dims", nargs="+", type=int, default=[2], choices=(2, 3),
                     help="2D slices and/or 3D volumes")
    clk.add_argument("--seed", type=int, default=0)
    clk.add_argument("--workers", type=int, default=None, metavar="N",
                     help="processes playing objects side by side (default: the CPU count, "
                     "at most 4); results do not depend on it")
    _common(clk)

    itp = suites.add_parser("interpolation", help="slice interpolation: Dice vs slices given",
                            description="Give the truth on every K-th slice, interpolate, and "
                            "score the slices not given, for segloop and its peers.")
    itp.add_argument("--data", nargs="+", action="extend", required=True, metavar="DIR")
    itp.add_argument("--every", nargs="+", type=int, default=[2, 3, 5, 7, 10], metavar="K")
    itp.add_argument("--axis", type=int, default=0, choices=(0, 1, 2))
    itp.add_argument("--method", nargs="+", action="extend", default=None, metavar="M")
    itp.add_argument("--target", nargs="+", type=float, default=[0.85, 0.9], metavar="DICE")
    itp.add_argument("--limit", type=int, default=None, help="max cases per dataset")
    _common(itp)

    trn = suites.add_parser("train", help="train from a config: test Dice, wall time, "
                            "samples/s beside a plain PyTorch loop",
                            description="Train the network a config describes (from scratch; "
                            "the output folder's checkpoints are replaced), evaluate it on the "
                            "test split, then time a minimal plain PyTorch/MONAI loop with the "
                            "same network, loss, optimiser, batch and arrays; report Dice, "
                            "wall time, samples/s of both and their ratio. For a short "
                            "throughput comparison use --set training.epochs=N.")
    trn.add_argument("--config", required=True, metavar="CFG",
                     help="YAML or JSON training config (configs/*.yaml)")
    trn.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override one key by its dotted name, e.g. training.max_minutes=2 "
                     "(repeatable; VALUE is read as YAML)")
    trn.add_argument("--data", metavar="DIR", default=None,
                     help="the dataset folder (the same as --set data.path=DIR)")
    trn.add_argument("--reference-iterations", type=int, default=None, metavar="N",
                     help="at most N plain-loop iterations (default: as many as segloop ran; "
                     "0: no plain loop)")
    _common(trn, plot=False)
    parsers = [lat, clk, itp, trn]
    for name in _MODULE_SUITES:
        module = importlib.import_module(f"segloop.cli.bench_{name}")
        parsers.append(module.add_parser(suites, _common))
    for parser in parsers:
        parser.set_defaults(func=run)


def _run_train(args) -> dict:
    from segloop.learn.config import load_config

    overrides = list(args.set) + ([f"data.path={args.data}"] if args.data else [])
    cfg = load_config(args.config, overrides=overrides)
    from segloop.bench.train import run_train_bench  # torch after the config is valid

    return run_train_bench(cfg, reference_iterations=args.reference_iterations,
                           config_path=args.config, overrides=overrides,
                           log=lambda line: print(line, flush=True))


def run(args) -> int:
    """Run the chosen suite."""
    import os

    from segloop.bench.report import SUMMARY_KEYS, format_rows
    from segloop.errors import InvalidArgumentError
    from segloop.io.files import write_json

    plot = None
    if args.suite in _MODULE_SUITES:
        report, plot = importlib.import_module(f"segloop.cli.bench_{args.suite}").run(args)
        print(format_rows(report["summary"], SUMMARY_KEYS[args.suite]))
    elif args.suite == "train":
        report = _run_train(args)
        print(format_rows(report["summary"], SUMMARY_KEYS["train"]))
    elif args.suite == "latency":
        from segloop.bench.latency import GROUPS, format_table, run_latency

        if args.repeats < 1:
            raise InvalidArgumentError(f"--repeats must be at least 1, got {args.repeats}")
        report = run_latency(repeats=args.repeats, quick=args.quick,
                             groups=tuple(args.group or GROUPS))
        print(format_table(report))
    elif args.suite == "clicks":
        from segloop.bench import clicks

        report = clicks.run_clicks(args.data, tools=args.tool, targets=tuple(args.target),
                                   max_interactions=args.max_interactions, limit=args.limit,
                                   dims=tuple(args.dims), seed=args.seed,
                                   workers=args.workers or min(os.cpu_count() or 1, 4))
        print(format_rows(report["summary"], SUMMARY_KEYS["clicks"]))
        plot = clicks.write_plot
    else:
        from segloop.bench import interpolation

        report = interpolation.run_interpolation(
            args.data, every=tuple(args.every), axis=args.axis, methods=args.method,
            targets=tuple(args.target), limit=args.limit)
        print(format_rows(report["summary"], SUMMARY_KEYS["interpolation"]))
        plot = interpolation.write_plot
    if args.json:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    if plot is not None and getattr(args, "plot", None):
        plot(report, args.plot)
        print(f"wrote {args.plot}")
    return 0
