"""``segloop export``: a checkpoint as an ONNX model, float32 or int8.

A thin wrapper of :func:`segloop.learn.export.export_model` (torch is
imported only when the command runs). ``segloop predict --model FILE.onnx``
uses the result like the checkpoint.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="segloop")
>>> _ = register(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["export", "--model", "best.pt", "--format", "int8",
...                           "--out", "m.onnx", "--calibration", "32"])
>>> args.format, args.calibration, args.method, args.func is run
('int8', 32, 'minmax', True)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segloop.cli._common import int_at_least
from segloop.errors import InvalidArgumentError

__all__ = ["register", "run"]

_DESCRIPTION = """\
Export a checkpoint of `segloop train` as an ONNX model that `segloop predict
--model FILE.onnx` (and segloop's Python API, load_model) runs with ONNX
Runtime on the CPU, with the checkpoint's own pre-processing, slicing or
sliding window, TTA and post-processing (the file carries its config and a
fingerprint; an edited file is refused). --format onnx writes the float32
network; --format int8 quantizes it after calibrating activation ranges on
--calibration N samples (slices, images or windows) of the checkpoint's
training split (--data DIR when the dataset has moved), then reports how
often the int8 model picks the same class as the float32 one on them. An
existing --out is an error unless --overwrite (the old file is kept as
OUT.~N~). See docs/quantize.md for speed and accuracy."""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``export`` sub-command."""
    p = subparsers.add_parser("export", help="export a checkpoint as an ONNX model (float32 "
                              "or int8)", description=_DESCRIPTION)
    p.add_argument("--model", required=True, type=Path, metavar="CKPT",
                   help="checkpoint written by segloop train (best.pt)")
    p.add_argument("--format", required=True, choices=("onnx", "int8"),
                   help="onnx: float32 graph; int8: post-training quantization")
    p.add_argument("--out", required=True, type=Path, metavar="FILE",
                   help="the .onnx file to write")
    p.add_argument("--calibration", type=int_at_least(1), default=16, metavar="N",
                   help="int8: calibration samples of the training split (default 16)")
    p.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help="int8: the dataset folder (default: the checkpoint's data.path)")
    p.add_argument("--method", choices=("minmax", "percentile"), default="minmax",
                   help="int8: how activation ranges are calibrated (default minmax)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out (the old file is kept as OUT.~N~)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``segloop export`` with parsed arguments."""
    if args.out.suffix.lower() != ".onnx":
        raise InvalidArgumentError("--out: the file name must end in .onnx (segloop predict "
                                   "recognises exported models by it)", path=args.out)
    if args.format == "onnx" and args.data is not None:
        raise InvalidArgumentError("--data: only --format int8 reads data (for calibration)")
    from segloop.learn.export import export_model

    export_model(args.model, args.out, format=args.format, calibration=args.calibration,
                 data=args.data, method=args.method, overwrite=args.overwrite,
                 log=lambda line: print(line, flush=True))
    return 0
