"""``segloop bench raters``: the rater report's speed, the biases it recovers, fusion vs raters.

::

    segloop bench raters --data ../shared/data/qubiq_brain_growth_7raters
        ../shared/data/retina_drive_2raters --region retina_drive_2raters=fov
        --json raters.json --plot raters.png

The report is :func:`segloop.bench.raters.run_raters_bench`'s; ``--region``
values are checked before any dataset is read.
"""

from __future__ import annotations

__all__ = ["add_parser", "parse_regions", "run"]


def add_parser(suites, common):
    """Add ``raters`` to the bench sub-parsers (``common`` adds ``--json`` and ``--plot``)."""
    p = suites.add_parser(
        "raters",
        help="rater report: time on real raters, biases recovered, fusion vs raters",
        description="Time the rater report (STAPLE consensus) on each dataset's real raters; "
        "draw simulated raters of known bias (grown -2..+2 mm, 15%% missed, shifted 2 mm) "
        "from the first rater's masks, run the same report on them and compare the biases and "
        "STAPLE sensitivities/specificities it finds with the true ones; fuse the simulated "
        "raters (majority, weighted, STAPLE) and score the fusion against the real mask "
        "beside the best and the mean rater.",
    )
    p.add_argument(
        "--data",
        nargs="+",
        action="extend",
        required=True,
        metavar="DIR",
        help="dataset folder(s) whose cases list raters (QUBIQ, DRIVE, "
        "images/ + labels/<rater>/, BIDS labels-<rater>)",
    )
    p.add_argument(
        "--region",
        action="append",
        default=[],
        metavar="DATASET=LABEL",
        help="restrict the counts of the dataset folder named DATASET to its label "
        "LABEL, e.g. retina_drive_2raters=fov (repeatable)",
    )
    p.add_argument(
        "--simulate-cases",
        type=int,
        default=12,
        metavar="N",
        help="cases per dataset on which raters are simulated (default 12)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated misses")
    common(p)
    return p


def parse_regions(items) -> dict[str, str]:
    """``["name=label", ...]`` -> ``{name: label}``; a clear error for anything else.

    Examples
    --------
    >>> parse_regions(["retina_drive_2raters=fov"])
    {'retina_drive_2raters': 'fov'}
    """
    from segloop.errors import InvalidArgumentError

    out: dict[str, str] = {}
    for item in items:
        name, sep, label = item.partition("=")
        name, label = name.strip(), label.strip()
        if not sep or not name or not label or "=" in label:
            raise InvalidArgumentError(
                f"--region {item!r}: expected DATASET=LABEL (the dataset "
                "folder's name and a label of its cases), e.g. "
                "retina_drive_2raters=fov"
            )
        if name in out and out[name] != label:
            raise InvalidArgumentError(f"--region: two regions for {name} ({out[name]}, {label})")
        out[name] = label
    return out


def run(args):
    """Run the suite: ``(report, write_plot)``."""
    regions = parse_regions(args.region)
    from segloop.bench.raters import run_raters_bench
    from segloop.bench.raters_plot import write_plot

    report = run_raters_bench(
        args.data,
        regions=regions,
        simulate_cases=args.simulate_cases,
        seed=args.seed,
        log=lambda line: print(line, flush=True),
    )
    return report, write_plot
