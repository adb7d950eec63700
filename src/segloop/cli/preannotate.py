"""``segloop preannotate``: predict unlabelled images and rank them for labelling.

A thin wrapper of :func:`segloop.learn.queue.preannotate` (torch is imported
only when the command runs); prints the top of the queue as a table.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="segloop")
>>> _ = register(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["preannotate", "--model", "m.pt", "--input", "pool",
...                           "--out", "queue", "--strategy", "tta", "--seed", "3"])
>>> args.strategy, args.seed, args.top, args.overwrite, args.func is run
('tta', 3, 10, False, True)
>>> print(format_queue([{"rank": 1, "id": "b.png", "score": 0.5, "prediction": "p/b_seg.png"},
...                     {"rank": 2, "id": "a.png", "score": 0.25, "prediction": "p/a_seg.png"}]))
rank  score   id     prediction
   1  0.5000  b.png  p/b_seg.png
   2  0.2500  a.png  p/a_seg.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segloop.cli._common import add_read_options, int_at_least, read_options
from segloop.errors import InvalidArgumentError

__all__ = ["format_queue", "register", "run"]

_DESCRIPTION = """\
Pre-annotate images with a checkpoint of `segloop train` and rank them for
labelling. Every --input image is predicted (OUT/predictions/NAME_seg.EXT, on
the input's grid, as `segloop predict` writes it); the images are ranked by a
selection strategy (random, entropy, mc_dropout, tta or coreset; mc_dropout
needs a model trained with dropout) and the queue is written in rank order to
OUT/queue.json (strategy, model, created, items: rank, id, images,
prediction, score) and OUT/queue.csv. --input takes an image file, a folder
of image files, a dataset folder (any layout segloop reads; labels are not
needed) or one file per contrast of the model. --labelled names images that
are already labelled (coreset picks images unlike them). Existing outputs are
an error unless --overwrite (old files are kept as NAME.~N~)."""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``preannotate`` sub-command."""
    p = subparsers.add_parser(
        "preannotate", help="predict unlabelled images and rank them for labelling (queue)",
        description=_DESCRIPTION)
    p.add_argument("--model", required=True, type=Path, metavar="CKPT",
                   help="checkpoint written by segloop train (best.pt, last.pt)")
    p.add_argument("--input", required=True, type=Path, metavar="DIR|FILE", nargs="+",
                   action="extend",
                   help="a folder of images, a dataset folder or an image file; or one file "
                   "per contrast of the model, in the config's order")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="folder for predictions/, queue.json and queue.csv (created)")
    p.add_argument("--strategy", default="entropy", metavar="S",
                   help="random, entropy (default), mc_dropout, tta or coreset")
    p.add_argument("--seed", type=int_at_least(0), default=0, metavar="N",
                   help="seed of the strategy (random order, dropout masks, first core-set "
                   "pick; default 0)")
    p.add_argument("--labelled", type=Path, default=None, metavar="DIR|FILE",
                   help="images already labelled (a folder, dataset or file), for coreset")
    p.add_argument("--top", type=int_at_least(0), default=10, metavar="N",
                   help="queue rows to print (default 10; 0: none)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="default: CUDA when present (and the config allows it), else CPU")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (the old files are kept as versions)")
    add_read_options(p)
    p.set_defaults(func=run)
    return p


def format_queue(rows: list[dict]) -> str:
    """The queue rows (``rank``, ``score``, ``id``, ``prediction``) as an aligned table."""
    cells = [("rank", "score", "id", "prediction")]
    cells += [(str(r["rank"]), f"{r['score']:.4f}", str(r["id"]), str(r["prediction"]))
              for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = []
    for c in cells:
        lines.append("  ".join([c[0].rjust(widths[0]), c[1].ljust(widths[1]),
                                c[2].ljust(widths[2]), c[3]]).rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``segloop preannotate`` with parsed arguments; print the top of the queue."""
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InvalidArgumentError("--device cuda: no CUDA device is available")
    from segloop.learn.queue import preannotate
    from segloop.learn.strategies import check_strategy

    check_strategy(args.strategy)  # before the model is loaded
    inputs = args.input[0] if len(args.input) == 1 else args.input
    options = read_options(args) | ({"kind": args.kind} if args.kind else {})
    queue = preannotate(args.model, inputs, args.out, strategy=args.strategy,
                        labelled=args.labelled if args.labelled is not None else (),
                        seed=args.seed, overwrite=args.overwrite, device=args.device,
                        read_options=options,
                        log=lambda line: print(line, file=sys.stderr))
    shown = queue.items[: args.top]
    if shown:
        print(format_queue([vars(item) for item in shown]))
    if len(queue.items) > len(shown):
        print(f"... {len(queue.items) - len(shown)} more")
    print(f"wrote {queue.json_path} and {queue.csv_path} ({len(queue.items)} images, "
          f"strategy {queue.strategy})")
    return 0
