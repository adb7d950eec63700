"""``segloop evaluate``: score predicted label files against reference labels.

Two modes. Files: a thin wrapper of :func:`segloop.metrics.evaluate.evaluate`:
it parses the options, prints one table row per case and label, then the
mean per label over the cases, and writes the JSON report when ``--json`` is
given. Model: ``--model CKPT --out DIR [--split test]`` runs
:func:`segloop.learn.evaluate.evaluate_split` (torch is imported only then).
User errors propagate as :class:`~segloop.errors.SegloopError` for the main
command to print.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="segloop")
>>> _ = register(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["evaluate", "--pred", "p.nii.gz", "--truth", "t.nii.gz",
...                           "--labels", "1", "2"])
>>> args.labels, args.func is run
([1, 2], True)
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from segloop.errors import InvalidArgumentError, OutputExistsError
from segloop.metrics.evaluate import Evaluation, evaluate
from segloop.metrics.multiclass import DEFAULT_METRICS, METRICS

__all__ = ["format_lesion_table", "format_table", "register", "run"]

_DESCRIPTION = """\
Score predicted label maps against reference label maps, per case and label:
Dice, IoU, precision, recall, signed relative volume difference (rvd), HD95,
Hausdorff distance and average symmetric surface distance (assd), the
distances in mm (the truth's spacing). --pred and --truth are two files, or
two folders whose files are paired by name. Empty masks: both empty is a
perfect match; one empty gives dice 0 and infinite distances (null in JSON,
left out of the means and counted).

With --model CKPT --out DIR instead, a checkpoint of `segloop train` is
evaluated on a split of its own dataset (re-created from its config, so the
same test cases; scored like training's metrics.json, on each case's native
grid): per-case Dice, HD95, ASSD and lesion detection per class in
DIR/cases.csv, the means (top-level "dice") in DIR/metrics.json, and the
worst/median/best cases in DIR/gallery.png."""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command to an ``argparse`` sub-parser set.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers()`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The new sub-parser; its ``func`` default is :func:`run`.
    """
    parser = subparsers.add_parser(
        "evaluate",
        help="score predicted labels against reference labels (Dice, HD95, ASSD...)",
        description=_DESCRIPTION,
    )
    parser.add_argument("--pred", type=Path, help="predicted label file or folder")
    parser.add_argument("--truth", type=Path, help="reference label file or folder")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --json file (with --model: the --out files)")
    parser.add_argument(
        "--labels",
        type=int,
        nargs="+",
        metavar="LABEL",
        help="labels to score (default: every non-zero label present in either file)",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        choices=METRICS,
        default=list(DEFAULT_METRICS),
        metavar="METRIC",
        help=f"metrics to compute, among {', '.join(METRICS)} "
        f"(default: {' '.join(DEFAULT_METRICS)})",
    )
    parser.add_argument(
        "--lesions",
        action="store_true",
        help="also count lesions (connected components): detected, false positives",
    )
    model = parser.add_argument_group("evaluating a model on a split of its dataset")
    model.add_argument("--model", type=Path, metavar="CKPT",
                       help="checkpoint of segloop train (instead of --pred/--truth)")
    model.add_argument("--split", choices=("test", "val", "train"), default="test",
                       help="which split of the checkpoint's dataset (default: test)")
    model.add_argument("--out", type=Path, metavar="DIR",
                       help="folder for cases.csv, metrics.json and gallery.png")
    model.add_argument("--data", type=Path, metavar="DIR",
                       help="the dataset folder, if not the config's data.path")
    model.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                       help="test-time augmentation (default: the config's inference.tta)")
    parser.set_defaults(func=run)
    return parser


def _run_model(args: argparse.Namespace) -> int:
    if args.pred is not None or args.truth is not None or args.json is not None:
        raise InvalidArgumentError("--model evaluates a split; it does not take --pred, "
                                   "--truth or --json (results go to --out)")
    if args.out is None:
        raise InvalidArgumentError("--model needs --out DIR")
    from segloop.learn.evaluate import evaluate_split

    result = evaluate_split(args.model, args.split, args.out, data_path=args.data,
                            tta=args.tta, overwrite=args.overwrite)
    hd = result["hd95"]
    print(f"{args.split}: {result['n_cases']} cases, dice {result['dice']:.4f}, pooled dice "
          f"{result['dice_pooled']:.4f}, hd95 {'n/a' if hd is None else f'{hd:.2f}'}")
    for name, c in result["classes"].items():
        print(f"  {name}: dice {c['dice']:.4f}, lesions detected {c['lesions']['tp_truth']}/"
              f"{c['lesions']['n_truth']}, false {c['lesions']['fp_pred']}")
    print(f"wrote {args.out / 'cases.csv'}, {args.out / 'metrics.json'}, "
          f"{args.out / 'gallery.png'}")
    return 0


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _layout(header: list[str], rows: list[list[str]]) -> str:
    """Align a table: first two columns to the left, the rest to the right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 or i == len(cells) - 1 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def format_table(result: Evaluation) -> str:
    """The per-case table, then the mean of each label over the cases.

    Parameters
    ----------
    result : Evaluation
        What :func:`~segloop.metrics.evaluate.evaluate` returned.

    Returns
    -------
    str
        A text table; a footnote tells how many values were infinite or
        undefined and left out of each mean.
    """
    header = ["case", "label", *result.metrics, "notes"]
    rows = []
    for case in result.cases:
        for label, scores in case.metrics.items():
            notes = "; ".join(case.notes.get(label, []))
            rows.append([case.name, str(label), *(_fmt(v) for v in scores.values()), notes])
    footnotes = []
    for label, per_metric in result.summary.items():
        n_cases = max(s.n + s.n_nan + s.n_inf for s in per_metric.values())
        means = [_fmt(s.mean) for s in per_metric.values()]
        rows.append([f"mean ({n_cases} case{'s' * (n_cases != 1)})", str(label), *means, ""])
        for metric, s in per_metric.items():
            left_out = [
                f"{n} {what}" for n, what in ((s.n_inf, "infinite"), (s.n_nan, "undefined")) if n
            ]
            if left_out:
                footnotes.append(
                    f"label {label} {metric}: mean of {s.n} finite values; "
                    f"left out {' and '.join(left_out)}"
                )
    return "\n".join([_layout(header, rows), *footnotes])


def format_lesion_table(result: Evaluation) -> str:
    """The lesion counts per case and label, then their totals per label.

    Parameters
    ----------
    result : Evaluation
        An evaluation run with ``lesions=True``.

    Returns
    -------
    str
        A text table with ``n_truth``, ``n_pred``, ``tp_truth``, ``fp_pred``,
        ``tpr`` and ``fdr``.
    """
    fields = ["n_truth", "n_pred", "tp_truth", "fp_pred", "tpr", "fdr"]
    rows = [
        [case.name, str(label), *(_fmt(getattr(d, f)) for f in fields), ""]
        for case in result.cases
        for label, d in case.lesions.items()
    ]
    rows += [
        ["total", str(label), *(_fmt(getattr(d, f)) for f in fields), ""]
        for label, d in result.lesion_summary.items()
    ]
    return _layout(["case", "label", *fields, ""], rows)


def run(args: argparse.Namespace) -> int:
    """Run ``segloop evaluate`` with parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        From the parser built by :func:`register`.

    Returns
    -------
    int
        0 on success (errors are raised as ``SegloopError``).
    """
    if args.model is not None:
        return _run_model(args)
    if args.pred is None or args.truth is None:
        raise InvalidArgumentError("give --pred and --truth (label files or folders), or "
                                   "--model CKPT --out DIR (a split of the model's dataset)")
    if args.json is not None and args.json.exists() and not args.overwrite:
        raise OutputExistsError("exists; pass --overwrite to replace it", path=args.json)
    result = evaluate(
        args.pred, args.truth, labels=args.labels, metrics=args.metrics, lesions=args.lesions
    )
    for problem in result.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(format_table(result))
    if args.lesions:
        print()
        print(format_lesion_table(result))
    if args.json is not None:
        result.write_json(args.json, overwrite=args.overwrite)
        print(f"wrote {args.json}")
    return 0
