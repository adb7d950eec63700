"""``segloop convert IN OUT``: change format, keeping geometry; optionally reorient/resample."""

from __future__ import annotations

from segloop.cli._common import parse_series

__all__ = ["register", "run"]


def register(sub) -> None:
    """Add the ``convert`` sub-command."""
    p = sub.add_parser(
        "convert", help="convert between image formats",
        description="Read IN (a file or DICOM folder) and write OUT in the format its extension "
        "names (.nii.gz, .nrrd, .mha, .png, .tif, .h5, or a folder for a DICOM series), keeping "
        "spacing, origin and orientation. An existing OUT is kept as a numbered version.")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--kind", choices=("image", "label", "soft"), default=None,
                   help="read as this kind (labels keep integer values; resampled nearest)")
    p.add_argument("--series", default=None, help="DICOM series: index, UID or description")
    p.add_argument("--reorient", metavar="CODE", default=None,
                   help="reorient to axis codes, e.g. RAS (canonical) or LPS")
    p.add_argument("--spacing", type=float, nargs="+", metavar="MM", default=None,
                   help="resample to this spacing (array order: z y x, or y x in 2D)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT if it exists (the old file is kept as OUT.~N~)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Convert one image."""
    from segloop.io import read_image, reorient, resample, write_image

    series = parse_series(args.series)
    options = {"series": series} if series is not None else {}
    image = read_image(args.input, kind=args.kind, **options)
    if args.reorient:
        image = reorient(image, args.reorient)
    if args.spacing:
        image = resample(image, spacing=args.spacing)
    write_image(image, args.output, overwrite=args.overwrite)
    print(f"wrote {args.output}: {image}")
    return 0
