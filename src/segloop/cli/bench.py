"""``segloop bench SUITE``: run a benchmark suite and write its JSON."""

from __future__ import annotations

__all__ = ["register", "run"]

SUITES = ("latency",)


def register(sub) -> None:
    """Add the ``bench`` sub-command and its suites."""
    p = sub.add_parser("bench", help="run a benchmark suite (latency, ...)",
                       description="Run a benchmark suite and write machine-readable JSON "
                       "(common top level: suite, segloop_version, versions, machine, args, "
                       "summary, cases).")
    suites = p.add_subparsers(dest="suite", metavar="SUITE")
    suites.required = True
    lat = suites.add_parser("latency", help="time every tool beside the raw solver it wraps")
    lat.add_argument("--json", metavar="OUT", default=None,
                     help="write the report here (an existing file is kept as OUT.~N~)")
    lat.add_argument("--repeats", type=int, default=20, help="timed calls per measurement")
    lat.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    lat.add_argument("--group", action="append", default=None,
                     choices=("contours", "cuts", "edit"), help="only these tool groups")
    lat.set_defaults(func=run)


def run(args) -> int:
    """Run the chosen suite."""
    from segloop.errors import InvalidArgumentError
    from segloop.io.files import write_json

    if args.suite == "latency":
        from segloop.bench.latency import GROUPS, format_table, run_latency

        if args.repeats < 1:
            raise InvalidArgumentError(f"--repeats must be at least 1, got {args.repeats}")
        report = run_latency(repeats=args.repeats, quick=args.quick,
                             groups=tuple(args.group or GROUPS))
        print(format_table(report))
    if args.json:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    return 0
