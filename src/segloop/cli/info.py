"""``segloop info FILE``: shape, spacing, orientation, value range, label values."""

from __future__ import annotations

import json
from pathlib import Path

from segloop.cli._common import add_read_options, read_options

__all__ = ["register", "run"]


def register(sub) -> None:
    """Add the ``info`` sub-command."""
    p = sub.add_parser("info", help="describe an image file or DICOM folder",
                       description="Print shape, spacing, orientation, value range and label "
                       "values of an image file (or a DICOM series folder).")
    p.add_argument("file", help="image file or DICOM folder")
    add_read_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _series_listing(path: str) -> list | None:
    """For a DICOM folder holding several series, their descriptions."""
    if not Path(path).is_dir():
        return None
    from segloop.io.dicom import list_dicom_series

    series = list_dicom_series(path)
    return series if len(series) > 1 else None


def _rows(info: dict) -> list[tuple[str, object]]:
    shape = " x ".join(map(str, info["shape"]))
    rows = [
        ("file", info["path"]), ("format", info["format"]), ("kind", info["kind"]),
        ("shape", shape + ("  (z, y, x)" if len(info["shape"]) == 3 else "  (y, x)")),
        ("channels", info["channels"]), ("dtype", info["dtype"]),
        ("spacing", " x ".join(f"{s:g}" for s in info["spacing"]) + " mm"),
        ("origin", ", ".join(f"{o:g}" for o in info["origin"]) + " mm (LPS)"),
        ("orientation", info["orientation"] + ("  (oblique)" if info["oblique"] else "")),
        ("range", f"[{info['min']:g}, {info['max']:g}], mean {info['mean']:g}"
         if info["min"] is not None else "empty"),
        ("NaN/Inf", info["nonfinite"] or None),
    ]
    if "label_values" in info:
        counts = info["label_counts"]
        shown = ", ".join(f"{v} ({counts[v]} vx)" for v in info["label_values"][:20])
        more = len(info["label_values"]) - 20
        rows.append(("values", shown + (f", ... {more} more" if more > 0 else "")))
    rows += list(info.get("metadata", {}).items())
    return rows


def run(args) -> int:
    """Print the description of one image (or the series of a DICOM folder)."""
    from segloop.io import read_image
    from segloop.io.describe import describe

    if args.series is None:
        listing = _series_listing(args.file)
        if listing:
            if args.json:
                print(json.dumps({"path": args.file, "series": [str(s) for s in listing]},
                                 indent=2))
                return 0
            print(f"{args.file}: {len(listing)} DICOM series; choose one with --series:")
            for i, s in enumerate(listing):
                print(f"  [{i}] {s}")
            return 0
    image = read_image(args.file, kind=args.kind, nonfinite="keep", **read_options(args))
    info = describe(image)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    for key, value in _rows(info):
        if value is not None:
            print(f"{key:>12}  {value}")
    return 0
