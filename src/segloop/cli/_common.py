"""Small helpers shared by the command modules (argument parsing, output)."""

from __future__ import annotations

import argparse

from segloop.io.files import write_json

__all__ = ["add_read_options", "int_at_least", "parse_series", "read_options",
           "write_json"]


def parse_series(value: str | None):
    """A ``--series`` value: an integer index if it looks like one, else a UID/description."""
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def int_at_least(minimum: int):
    """An argparse ``type``: an integer ``>= minimum`` (else a usage error saying so).

    Examples
    --------
    >>> int_at_least(1)("3")
    3
    >>> int_at_least(0)("-1")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: expected an integer >= 0, got -1
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def add_read_options(parser: argparse.ArgumentParser) -> None:
    """Options that tell ``read_image`` how to read the input file."""
    g = parser.add_argument_group("reading the input")
    g.add_argument("--kind", choices=("image", "label", "soft"), default=None,
                   help="read as this kind (default: what the file says, e.g. the NIfTI label "
                   "intent; labels keep integer values and are resampled nearest-neighbour)")
    g.add_argument("--series", default=None,
                   help="DICOM folder holding several series: index, SeriesInstanceUID or "
                   "description of the one to read")
    g.add_argument("--dataset", default=None,
                   help="HDF5: name of the dataset to read (default: image, or label)")
    g.add_argument("--axes", default=None,
                   help="HDF5: order of the stored axes, e.g. xyz (default zyx)")
    g.add_argument("--input-spacing", type=float, nargs="+", metavar="MM", default=None,
                   help="HDF5: voxel size in mm, z y x (files that store none)")


def read_options(args: argparse.Namespace) -> dict:
    """Keyword options for ``read_image`` from the parsed arguments (only those given)."""
    options = {}
    if getattr(args, "series", None) is not None:
        options["series"] = parse_series(args.series)
    if getattr(args, "dataset", None) is not None:
        options["dataset"] = args.dataset
    if getattr(args, "axes", None) is not None:
        options["axes"] = args.axes
    if getattr(args, "input_spacing", None) is not None:
        options["spacing"] = tuple(args.input_spacing)
    return options
