"""``segloop bench loop``: active learning, every strategy against random labelling.

::

    segloop bench loop --config configs/al_nuclei96.yaml --initial 10 --step 15
        --budget 100 --seeds 3 --json loop.json --plot loop.png

Every round trains the config's recipe (:mod:`segloop.learn.active`); the
report is :func:`segloop.bench.loop.run_loop`'s. The configs are parsed (and
the schedule checked) before torch is imported, so bad input fails at once.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_parser", "run"]

#: Strategy names (the registry of segloop.learn.strategies; listed here for the help only).
_NAMES = "random, entropy, mc_dropout, tta, coreset"


def add_parser(suites, common):
    """Add ``loop`` to the bench sub-parsers (``common`` adds ``--json`` and ``--plot``)."""
    p = suites.add_parser(
        "loop", help="active learning: test Dice vs labelled images per strategy",
        description="Simulate active learning with the ground truth as the oracle: label "
        "--initial random pool images, train, let the strategy pick --step more with the last "
        "model, reveal their labels, retrain warm-started, up to --budget; the test Dice after "
        "every round, over several seeds. Reports per strategy the area under the mean "
        "learning curve, the labels needed to reach 95% of the full-data Dice (the same "
        "recipe on the whole pool) and the final Dice.")
    p.add_argument("--config", nargs="+", action="extend", required=True, metavar="CFG",
                   help="training config(s) (YAML/JSON; configs/al_*.yaml); one panel each")
    p.add_argument("--strategy", nargs="+", action="extend", default=None, metavar="S",
                   help=f"strategies to compare ({_NAMES}; default: all)")
    p.add_argument("--initial", type=int, required=True, metavar="N",
                   help="random pool images labelled before the first training")
    p.add_argument("--step", type=int, required=True, metavar="K",
                   help="images the strategy picks per round")
    p.add_argument("--budget", type=int, required=True, metavar="B",
                   help="labelled images at the end (at most the pool)")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=None, metavar="N",
                       help="run seeds 0..N-1 (default 3)")
    seeds.add_argument("--seed", type=int, nargs="+", action="extend", default=None,
                       metavar="S", help="run these seeds")
    full = p.add_mutually_exclusive_group()
    full.add_argument("--full-seeds", type=int, default=1, metavar="N",
                      help="full-data reference runs, on the first N seeds (default 1)")
    full.add_argument("--no-full", dest="full_seeds", action="store_const", const=0,
                      help="no full-data reference (labels_to_95pct is then null)")
    p.add_argument("--candidates", type=int, default=None, metavar="N",
                   help="rank at most N unlabelled images per round, a seeded random subset of "
                   "the pool (default: all; mc_dropout and tta cost several passes per image)")
    p.add_argument("--full-epochs", type=int, default=None, metavar="N",
                   help="epochs of a full-data run (default: the config's training.epochs x "
                   "the rounds of the schedule, as many as the loop's last model went through)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key by its dotted name, e.g. training.epochs=1 or "
                   "data.path=DIR (repeatable; VALUE is read as YAML)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="the dataset folder (the same as --set data.path=DIR)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="where the rounds' runs go (default runs/bench_loop/<config name>; "
                   "one sub-folder per config when several)")
    common(p)
    return p


def _seeds(args) -> list[int]:
    from segloop.errors import InvalidArgumentError

    if args.seed is not None:
        return list(args.seed)
    n = 3 if args.seeds is None else args.seeds
    if n < 1:
        raise InvalidArgumentError(f"--seeds must be at least 1, got {n}")
    return list(range(n))


def _out_dirs(args) -> list[Path]:
    stems = [Path(c).stem for c in args.config]
    if args.out is None:
        return [Path("runs") / "bench_loop" / s for s in stems]
    if len(stems) == 1:
        return [Path(args.out)]
    return [Path(args.out) / s for s in stems]


def run(args):
    """Run the suite: ``(report, write_plot)``."""
    from segloop.learn.active_curves import check_schedule
    from segloop.learn.config import load_config

    check_schedule(initial=args.initial, step=args.step, budget=args.budget)
    seeds = _seeds(args)
    overrides = list(args.set) + ([f"data.path={args.data}"] if args.data else [])
    configs = [load_config(c, overrides=overrides) for c in args.config]
    from segloop.bench.loop import run_loop, write_plot  # torch after the configs are valid
    from segloop.learn.strategies import STRATEGIES

    report = run_loop(configs, strategies=args.strategy or list(STRATEGIES),
                      initial=args.initial, step=args.step, budget=args.budget, seeds=seeds,
                      full_seeds=args.full_seeds, full_epochs=args.full_epochs,
                      candidates=args.candidates,
                      out_dirs=_out_dirs(args),
                      args={"config": list(args.config), "set": overrides,
                            "out": [str(d) for d in _out_dirs(args)]},
                      log=lambda line: print(line, flush=True))
    return report, write_plot
