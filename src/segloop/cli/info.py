"""``segloop info FILE``: shape, spacing, orientation, value range, label values."""

from __future__ import annotations

import json

from segloop.cli._common import parse_series

__all__ = ["register", "run"]


def register(sub) -> None:
    """Add the ``info`` sub-command."""
    p = sub.add_parser("info", help="describe an image file or DICOM folder",
                       description="Print shape, spacing, orientation, value range and label "
                       "values of an image file (or a DICOM series folder).")
    p.add_argument("file", help="image file or DICOM folder")
    p.add_argument("--kind", choices=("image", "label", "soft"), default=None,
                   help="read as this kind (default: what the file says)")
    p.add_argument("--series", default=None,
                   help="DICOM series to read: index, SeriesInstanceUID or description")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _series_listing(path) -> list | None:
    """For a DICOM folder holding several series, their descriptions."""
    from pathlib import Path

    if not Path(path).is_dir():
        return None
    from segloop.io.dicom import list_dicom_series

    series = list_dicom_series(path)
    return series if len(series) > 1 else None


def run(args) -> int:
    """Print the description of one image."""
    from segloop.io import read_image
    from segloop.io.describe import describe

    series = parse_series(args.series)
    if series is None:
        listing = _series_listing(args.file)
        if listing:
            print(f"{args.file}: {len(listing)} DICOM series; choose one with --series:")
            for i, s in enumerate(listing):
                print(f"  [{i}] {s}")
            return 0
    options = {"series": series} if series is not None else {}
    image = read_image(args.file, kind=args.kind, nonfinite="keep", **options)
    info = describe(image)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    rows = [
        ("file", info["path"]), ("format", info["format"]), ("kind", info["kind"]),
        ("shape", " x ".join(map(str, info["shape"]))
         + ("  (z, y, x)" if len(info["shape"]) == 3 else "  (y, x)")),
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
    for key, value in info.get("metadata", {}).items():
        rows.append((key, value))
    for key, value in rows:
        if value is not None:
            print(f"{key:>12}  {value}")
    return 0
