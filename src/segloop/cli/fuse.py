"""``segloop fuse``: fuse the labels of several raters into one.

A thin wrapper of :func:`segloop.fusion.files.fuse_files`.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="segloop")
>>> _ = register(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["fuse", "--raters", "a.nii.gz", "b.nii.gz", "c.nii.gz",
...                           "--method", "staple", "--out", "f.nii.gz"])
>>> len(args.raters), args.method, args.soft, args.func is run
(3, 'staple', 'mean', True)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segloop.fusion.soft import FUSION_METHODS

__all__ = ["register", "run"]

_DESCRIPTION = """\
Fuse the label maps of several raters of one image into one file: majority
vote (a label wins with more votes than any other; ties go to background),
weighted vote (each rater's vote weighted by its agreement with the others),
STAPLE (EM estimate of each rater's sensitivity and specificity; the fused
label is the posterior above 0.5; binary masks, or --class K) or soft (the
soft consensus: the fraction of raters voting foreground, or STAPLE's
posterior with --soft staple; a float label in [0, 1] for SoftSeg training,
written as NIfTI). --raters takes the rater files, a folder holding only
them, or a dataset folder whose cases list raters (labels/<rater>/<name>,
BIDS derivatives/labels-<rater>/ or _rater-<id>, QUBIQ, DRIVE); a dataset
fuses into the folder --out, one <case>_<method> file per case. Every rater
must be on the first one's grid; the output keeps that grid. Existing outputs
are an error unless --overwrite (old files are kept as NAME.~N~)."""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``fuse`` sub-command."""
    p = subparsers.add_parser("fuse", help="fuse several raters' labels (majority, STAPLE, soft)",
                              description=_DESCRIPTION)
    p.add_argument("--raters", required=True, nargs="+", type=Path, metavar="DIR_OR_FILES",
                   help="rater label files of one image, a folder of them, or a dataset folder")
    p.add_argument("--method", default="majority", choices=FUSION_METHODS,
                   help="fusion method (default majority)")
    p.add_argument("--out", required=True, type=Path, metavar="FILE",
                   help="the fused label file (a folder for a dataset of raters)")
    p.add_argument("--soft", default="mean", choices=("mean", "staple"),
                   help="with --method soft: the mean of the raters (default) or STAPLE's "
                   "posterior")
    p.add_argument("--staple-voxels", default="all", choices=("all", "disputed"),
                   help="voxels binary STAPLE estimates from: all (default, classic STAPLE) or "
                   "only where the raters disagree (unanimous voxels keep their label)")
    p.add_argument("--class", dest="class_value", type=int, default=None, metavar="K",
                   help="fuse only label K of multi-label maps (a binary result)")
    p.add_argument("--kind", default=None, metavar="LABEL",
                   help="dataset with raters of several labels: which (e.g. seg-manual)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (the old files are kept as versions)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``segloop fuse``."""
    from segloop.fusion.files import fuse_files

    raters = args.raters[0] if len(args.raters) == 1 else args.raters
    written = fuse_files(raters, args.out, method=args.method, overwrite=args.overwrite,
                         kind=args.kind, class_value=args.class_value, soft=args.soft,
                         staple_voxels=args.staple_voxels,
                         log=lambda line: print(line, file=sys.stderr))
    if isinstance(written, list):
        print(f"wrote {len(written)} fused labels ({args.method}) to {args.out}")
    else:
        print(f"wrote {written} ({args.method})")
    return 0
