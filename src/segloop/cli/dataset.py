"""``segloop dataset DIR``: what a dataset folder holds, and what is wrong with it."""

from __future__ import annotations

import textwrap

__all__ = ["format_summary", "register", "run"]


def register(sub) -> None:
    """Add the ``dataset`` sub-command."""
    p = sub.add_parser(
        "dataset",
        help="list the cases of a dataset folder and its problems",
        description="Detect the layout of a dataset folder (BIDS, images/ + labels/ pairs, or "
        "the source layout of a shared data set) and print its subjects, sessions, contrasts, "
        "labelled/unlabelled counts, metadata columns and problems. Problems found by listing "
        "the files (labels without an image, duplicates, empty files, unreadable sidecars or "
        "dataset_description.json...) are always reported; --check also reads every pair. "
        "Exit status: 0 when the folder could be listed, even with problems (1 with --strict "
        "if any problem was found); 1 for an error (no such folder, unknown layout...).",
    )
    p.add_argument("folder", help="the dataset folder")
    p.add_argument(
        "--format",
        default=None,
        metavar="NAME",
        help="layout to use instead of detecting it (e.g. bids, pairs, brats2013)",
    )
    p.add_argument(
        "--label-suffix",
        default=None,
        metavar="S",
        help="main label: a BIDS label suffix (default seg-manual) or a label name "
        "of the layout (e.g. rater2)",
    )
    p.add_argument("--json", default=None, metavar="OUT", help="also write the summary as JSON")
    p.add_argument(
        "--check",
        action="store_true",
        help="read every image/label pair and check that the grids match (slow)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 when any problem is found (default: print them, exit 0)",
    )
    p.set_defaults(func=run)


def _listing(values, limit: int = 20) -> str:
    values = [str(v) for v in values]
    if not values:
        return "none"
    shown = ", ".join(values) if len(values) <= limit else f"{', '.join(values[:limit])}, ..."
    return f"{len(values)}: {shown}"


def _wrapped(text: str, indent: int) -> str:
    return textwrap.fill(text, width=100, initial_indent="", subsequent_indent=" " * indent)


def format_summary(summary: dict, *, detected: bool = True) -> str:
    """The text report of a :meth:`~segloop.io.dataset.Dataset.summary`.

    Examples
    --------
    >>> s = {"layout": "pairs", "root": "/d", "cases": 2, "subjects": ["a", "b"],
    ...      "sessions": [], "contrasts": {}, "label": "label",
    ...      "labels": {"label": {"labelled": 1, "unlabelled": 1}},
    ...      "metadata_columns": {}, "datasets": [], "problems": []}
    >>> print(format_summary(s))
    layout      pairs (detected)
    root        /d
    cases       2
    subjects    2: a, b
    sessions    none
    contrasts   none
    labels      main: label
      label  1 labelled, 1 unlabelled
    metadata    none
    problems    none
    """
    n = summary["cases"]
    rows = [
        ("layout", f"{summary['layout']} ({'detected' if detected else 'given'})"),
        ("root", summary["root"]),
        ("datasets", ", ".join(summary["datasets"]) if len(summary["datasets"]) > 1 else None),
        ("cases", str(n)),
        ("subjects", _listing(summary["subjects"])),
        ("sessions", _listing(summary["sessions"])),
        ("contrasts", ", ".join(f"{k} {v}" for k, v in summary["contrasts"].items()) or "none"),
        ("labels", f"main: {summary['label'] or 'none'}"),
    ]
    lines = [f"{key:<10}  {_wrapped(value, 12)}" for key, value in rows if value is not None]
    width = max((len(k) for k in summary["labels"]), default=0)
    for name, counts in summary["labels"].items():
        lines.append(
            f"  {name:<{width}}  {counts['labelled']} labelled, {counts['unlabelled']} unlabelled"
        )
    for kind, raters in summary.get("raters", {}).items():
        counts = ", ".join(r if c == n else f"{r} ({c})" for r, c in raters.items())
        lines.append(f"{'raters':<10}  {_wrapped(f'{kind}: {len(raters)}: {counts}', 12)}")
    columns = [k if c == n else f"{k} ({c})" for k, c in summary["metadata_columns"].items()]
    lines.append(f"{'metadata':<10}  {_wrapped(', '.join(columns) or 'none', 12)}")
    problems = summary["problems"]
    lines.append(f"{'problems':<10}  {len(problems) if problems else 'none'}")
    lines += [f"  {p}" for p in problems]
    return "\n".join(lines)


def run(args) -> int:
    """Print the summary of one dataset folder (and write it as JSON when asked).

    Returns 1 when ``--strict`` is given and a problem was found, else 0.
    """
    import sys

    from segloop.cli._common import write_json
    from segloop.io.dataset import open_dataset

    dataset = open_dataset(
        args.folder, format=args.format, label_suffix=args.label_suffix, check_geometry=args.check
    )
    summary = dataset.summary()
    print(format_summary(summary, detected=args.format is None))
    if args.json:
        write_json(summary, args.json)
    n = len(summary["problems"])
    if args.strict and n:
        print(f"segloop dataset: {n} problem{'s' * (n != 1)} found (--strict)", file=sys.stderr)
        return 1
    return 0
