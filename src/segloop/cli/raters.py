"""``segloop raters report``: how each rater of a dataset agrees with the consensus.

A thin wrapper of :func:`segloop.fusion.report_files.write_rater_report`.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="segloop")
>>> _ = register(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["raters", "report", "--data", "d", "--out", "r",
...                           "--region", "fov"])
>>> args.consensus, args.region, args.func is run
('majority', 'fov', True)
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from segloop.errors import InvalidArgumentError

__all__ = ["format_raters", "register", "run"]

_DESCRIPTION = """\
Measure every rater of a dataset against the consensus of the raters: per
rater, the mean over its cases (and the spread) of the Dice with the
consensus, sensitivity and specificity, volume bias (signed relative volume
difference) and boundary bias (mean signed surface distance in mm; > 0: the
rater draws outside the consensus), with STAPLE's sensitivity and specificity
estimates; the pairwise inter-rater Dice matrix; with --group-by, agreement
within vs between groups of raters (a column of raters.tsv in the dataset
folder, or of --groups FILE: a tab-separated table with a `rater` column).
The consensus is the per-case majority vote (default: the median boundary of
the raters) or STAPLE pooled over the cases (--consensus staple; on the
voxels where the raters disagree only with --staple-voxels disputed; classic
STAPLE drifts towards the widest raters, see docs/raters.md);
--leave-one-out compares each rater with the consensus of the others (its
own mask left out). Raters come from labels/<rater>/<name> folders, BIDS
derivatives/labels-<rater>/ or _rater-<id> labels, QUBIQ or DRIVE. Cases with
fewer than two raters are skipped (listed in the report). Writes
OUT/report.json, raters.csv, cases.csv, agreement.png, bias.png and
overlay.png."""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``raters`` command and its ``report`` sub-command."""
    p = subparsers.add_parser("raters", help="rater bias and consistency report",
                              description="Analyse several raters of the same images.")
    sub = p.add_subparsers(dest="raters_command", metavar="SUBCOMMAND")
    sub.required = True
    r = sub.add_parser("report", help="per-rater agreement, bias and consistency",
                       description=_DESCRIPTION)
    r.add_argument("--data", required=True, type=Path, metavar="DIR", help="the dataset folder")
    r.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="the report folder (created)")
    r.add_argument("--consensus", default="majority", choices=("majority", "staple"),
                   help="how each case's consensus is built (default majority)")
    r.add_argument("--staple-voxels", default="all", choices=("all", "disputed"),
                   help="voxels STAPLE estimates from: all (default, classic STAPLE) or only "
                   "where the raters disagree (unanimous voxels keep their label)")
    r.add_argument("--leave-one-out", action="store_true",
                   help="compare each rater with the consensus of the other raters")
    r.add_argument("--region", default=None, metavar="LABEL",
                   help="a label of each case restricting the counts, e.g. fov (DRIVE)")
    r.add_argument("--class", dest="class_value", type=int, default=None, metavar="K",
                   help="score label K of multi-label rater maps")
    r.add_argument("--kind", default=None, metavar="LABEL",
                   help="raters of which label, when there are several (e.g. seg-manual)")
    r.add_argument("--group-by", default=None, metavar="COLUMN",
                   help="rater attribute for within/between-group agreement (e.g. centre)")
    r.add_argument("--groups", type=Path, default=None, metavar="FILE",
                   help="rater table (TSV with a rater column; default DATA/raters.tsv)")
    r.add_argument("--format", default=None, metavar="NAME",
                   help="dataset layout (default: detected)")
    r.add_argument("--limit", type=int, default=None, metavar="N",
                   help="score at most N cases (quick runs)")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an existing report (old files are kept as versions)")
    r.set_defaults(func=run)
    return p


def _cell(value) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) \
        else f"{value:+.3f}" if isinstance(value, float) else str(value)


def format_raters(report: dict) -> str:
    """One line per rater: n, Dice, sensitivity, specificity, volume and boundary bias.

    Examples
    --------
    >>> row = {"n_cases": 2, "dice_vs_consensus": 0.9, "sensitivity": 0.8, "specificity": 0.99,
    ...        "volume_bias": -0.1, "boundary_bias_mm": -0.5, "staple_sensitivity": 0.81,
    ...        "staple_specificity": 0.99}
    >>> print(format_raters({"raters": {"r1": row}}))
    rater  n  dice    sens    spec    vol_bias  bnd_mm  staple_p  staple_q
    r1     2  +0.900  +0.800  +0.990  -0.100    -0.500  +0.810    +0.990
    """
    keys = ("n_cases", "dice_vs_consensus", "sensitivity", "specificity", "volume_bias",
            "boundary_bias_mm", "staple_sensitivity", "staple_specificity")
    header = ("rater", "n", "dice", "sens", "spec", "vol_bias", "bnd_mm", "staple_p", "staple_q")
    rows = [header] + [(r, *(_cell(v.get(k)) for k in keys)) for r, v in report["raters"].items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def run(args: argparse.Namespace) -> int:
    """Run ``segloop raters report``."""
    from segloop.fusion.rater_cases import rater_groups
    from segloop.fusion.report_files import write_rater_report

    if args.limit is not None and args.limit < 1:
        raise InvalidArgumentError(f"--limit must be >= 1, got {args.limit}")
    groups = None
    if args.group_by:
        table = args.groups if args.groups is not None else args.data / "raters.tsv"
        if not table.is_file():
            raise InvalidArgumentError(f"--group-by {args.group_by}: no rater table {table} "
                                       "(give one with --groups FILE)")
        groups = rater_groups(table, args.group_by)
    elif args.groups is not None:
        raise InvalidArgumentError("--groups FILE needs --group-by COLUMN")
    report = write_rater_report(
        args.data, args.out, overwrite=args.overwrite, consensus=args.consensus,
        region=args.region, class_value=args.class_value, kind=args.kind, groups=groups,
        group_attribute=args.group_by, format=args.format, limit=args.limit,
        leave_one_out=args.leave_one_out, staple_voxels=args.staple_voxels,
        log=lambda line: print(line, file=sys.stderr))
    print(format_raters(report))
    pair = report["pairwise"]["mean_dice"]
    print(f"mean inter-rater Dice {pair:.3f}" if pair is not None else "no rater pair")
    if report["groups"]:
        g = report["groups"]
        print(f"groups by {g['attribute']}: within {_cell(g['within'])}, "
              f"between {_cell(g['between'])}")
    print(f"wrote {args.out}/report.json, raters.csv, cases.csv and 3 figures "
          f"({report['n_cases']} cases, {report['seconds']:.1f} s)")
    return 0
