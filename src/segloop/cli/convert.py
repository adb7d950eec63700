"""``segloop convert IN OUT``: change format, keeping geometry; optionally reorient/resample."""

from __future__ import annotations

import numpy as np

from segloop.cli._common import add_read_options, read_options
from segloop.errors import InvalidArgumentError

__all__ = ["register", "run"]

#: An integer image with at most this many values, resampled without --kind, is refused:
#: it is probably a label map and linear interpolation would invent labels.
_LABEL_LIKE_VALUES = 64


def register(sub) -> None:
    """Add the ``convert`` sub-command."""
    p = sub.add_parser(
        "convert", help="convert between image formats",
        description="Read IN (a file or DICOM folder) and write OUT in the format its extension "
        "names (.nii.gz, .nrrd, .mha, .png, .tif, .h5, .dcm, or a path without extension for a "
        "DICOM series folder), keeping spacing, origin and orientation. A label map with "
        "--reference DICOM_DIR and OUT ending in .dcm is written as a DICOM-SEG.")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    add_read_options(p)
    p.add_argument("--nonfinite", choices=("error", "zero"), default="error",
                   help="NaN/Inf voxels: refuse the input (default) or replace them by 0")
    p.add_argument("--reorient", metavar="CODE", default=None,
                   help="reorient to axis codes, e.g. RAS (canonical) or LPS")
    p.add_argument("--spacing", type=float, nargs="+", metavar="MM", default=None,
                   help="resample to this spacing (array order: z y x, or y x in 2D)")
    p.add_argument("--reference", metavar="DICOM_DIR", default=None,
                   help="source DICOM series of a label map: write OUT (.dcm) as a DICOM-SEG")
    p.add_argument("--drop-geometry", action="store_true",
                   help="allow PNG/TIFF output of an image placed in space (origin and "
                   "orientation are lost)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT if it exists (the old file is kept as OUT.~N~)")
    p.set_defaults(func=run)


def _check_resample_kind(image, args) -> None:
    arr = image.array
    if args.kind is None and image.kind == "image" and np.issubdtype(arr.dtype, np.integer):
        n = np.unique(arr).size
        if n <= _LABEL_LIKE_VALUES:
            raise InvalidArgumentError(
                f"{args.input} holds {n} distinct integer values and may be a label map: "
                "pass --kind label to resample it nearest-neighbour, or --kind image to "
                "interpolate linearly")


def run(args) -> int:
    """Convert one image."""
    from segloop.io import read_image, reorient, resample, write_image

    image = read_image(args.input, kind=args.kind, nonfinite=args.nonfinite,
                       **read_options(args))
    if args.reorient:
        image = reorient(image, args.reorient)
    if args.spacing:
        _check_resample_kind(image, args)
        image = resample(image, spacing=args.spacing)
    options = {}
    if args.reference:
        options["reference"] = args.reference
    if args.drop_geometry:
        options["drop_geometry"] = True
    write_image(image, args.output, overwrite=args.overwrite, **options)
    print(f"wrote {args.output}: {image}")
    return 0
