"""``segloop predict``: segment files with a trained checkpoint.

A thin wrapper of :func:`segloop.learn.predict_files.predict_paths` (torch is
imported only when the command runs).

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="segloop")
>>> _ = register(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["predict", "--model", "m.pt", "--input", "a.png",
...                           "--output", "out", "--mc", "4", "--no-tta"])
>>> args.mc, args.soft, args.tta, args.func is run
(4, False, False, True)
>>> parser.parse_args(["predict", "--model", "m.pt", "--input", "flair.nii.gz", "t1c.nii.gz",
...                    "--output", "out"]).input
[PosixPath('flair.nii.gz'), PosixPath('t1c.nii.gz')]
>>> parser.parse_args(["predict", "--model", "m.pt", "--input", "a.png", "--output", "out",
...                    "--meta", "contrast=T2w", "--meta", "age=41"]).meta
[('contrast', 'T2w'), ('age', '41')]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segloop.cli._common import add_read_options, int_at_least, read_options
from segloop.errors import InvalidArgumentError

__all__ = ["register", "run"]

_DESCRIPTION = """\
Segment an image file, or every image file of a folder, with a checkpoint of
`segloop train`. A model of several contrasts (data.contrasts, e.g. flair and
t1c) takes one --input file per contrast in the config's order (--input
flair.nii.gz t1c.nii.gz, or --input repeated), or a dataset folder whose cases
have them (read as in training; outputs named by case id). A folder without
loose image files is read as a dataset for any model. For each input NAME.EXT
it writes NAME_seg.EXT (class
indices: 0 background, i the i-th class of the config; the input's shape,
spacing, origin and direction; NIfTI in, NIfTI out; PNG in, PNG out; JPEG
gives PNG, HDF5 and DICOM give NIfTI). --soft adds NAME_prob.EXT (one class)
or NAME_prob-CLASS.EXT (several): float32, or a 16-bit PNG holding
round(p * 65535). --uncertainty (or --mc N) adds NAME_entropy.nii.gz,
NAME_variance.nii.gz and uncertainty.json {file name: {mean_entropy,
volume_cv, inter_sample_dice}}, from N MC-dropout passes (default: the
config's inference.mc_samples) plus the flipped passes with --tta, or the
flipped passes alone when there are no MC passes. Existing outputs are an
error unless --overwrite (old files are kept as NAME.~N~). A FiLM model
(model.film) is conditioned on each input's metadata: --meta KEY=VALUE
(repeatable) gives a field's value for every input; fields not given come
from the image itself (and, for a dataset folder, from each case's own
metadata as in training: model.film.table, sidecars, participants.tsv, its
contrast); --meta overrides them. A field without a value is encoded as
missing (or refused: model.film.on_missing: error)."""


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. contrast=T2w), got {text!r}")
    return key.strip(), value.strip()


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``predict`` sub-command."""
    p = subparsers.add_parser(
        "predict", help="segment images with a trained model (labels, probabilities, "
        "uncertainty)", description=_DESCRIPTION)
    p.add_argument("--model", required=True, type=Path, metavar="CKPT",
                   help="checkpoint written by segloop train (best.pt, last.pt)")
    p.add_argument("--input", required=True, type=Path, metavar="FILE|DIR", nargs="+",
                   action="extend",
                   help="an image file, a folder of image files or a dataset folder; or one "
                   "file per contrast of the model, in the config's order")
    p.add_argument("--output", required=True, type=Path, metavar="DIR",
                   help="folder for the results (created)")
    p.add_argument("--soft", action="store_true", help="also write the probabilities")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="test-time augmentation: average the flipped passes "
                   "(default: the config's inference.tta)")
    p.add_argument("--mc", type=int_at_least(0), default=0, metavar="N",
                   help="MC-dropout passes for the uncertainty (implies --uncertainty)")
    p.add_argument("--uncertainty", action="store_true",
                   help="write entropy and variance maps and uncertainty.json")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="default: CUDA when present (and the config allows it), else CPU")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (the old files are kept as versions)")
    p.add_argument("--meta", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                   help="a metadata value of a FiLM model for every input, e.g. contrast=T2w "
                   "(repeatable; fields not given come from the images / cases)")
    add_read_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``segloop predict`` with parsed arguments; print each written file."""
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InvalidArgumentError("--device cuda: no CUDA device is available")
    from segloop.learn.predict_files import predict_paths

    inputs = args.input[0] if len(args.input) == 1 else args.input
    meta = {}
    for key, value in args.meta:
        if key in meta and meta[key] != value:
            raise InvalidArgumentError(f"--meta {key}: given twice ({meta[key]!r}, {value!r})")
        meta[key] = value
    written = predict_paths(args.model, inputs, args.output, soft=args.soft, meta=meta or None,
                            tta=args.tta, mc=args.mc, uncertainty=args.uncertainty,
                            overwrite=args.overwrite, device=args.device,
                            read_options=read_options(args) | (
                                {"kind": args.kind} if args.kind else {}))
    for path in written:
        print(f"wrote {path}")
    return 0
