"""``segloop demo``: run every capability on the built-in MNI152 data and write a report."""

from __future__ import annotations

__all__ = ["register", "run"]


def register(sub) -> None:
    """Add the ``demo`` sub-command."""
    p = sub.add_parser("demo", help="run the end-to-end demo on built-in real data",
                       description="Run segloop end to end on the MNI152 template that ships "
                       "inside nilearn's wheel (no download) and write a report folder.")
    p.add_argument("--out", default="segloop-demo",
                   help="report folder (default: ./segloop-demo; a previous demo run there "
                   "is moved to <out>.previous)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a folder not made by the demo (kept as a numbered version)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run the demo."""
    from segloop.demo import run_demo

    run_demo(args.out, overwrite=args.overwrite)
    return 0
