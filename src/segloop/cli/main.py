"""Entry point of the ``segloop`` command.

Each sub-command lives in its own module of :mod:`segloop.cli` with a
``register(subparsers)`` function that adds its parser and sets
``func=run``. User errors (:class:`~segloop.errors.SegloopError`) are
printed on one line and exit with status 1; argparse usage errors exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from segloop import __version__
from segloop.errors import SegloopError

__all__ = ["COMMANDS", "build_parser", "main"]

#: Sub-command modules of :mod:`segloop.cli`, in the order ``--help`` lists them.
COMMANDS = ("info", "convert", "dataset", "evaluate", "tools", "segment", "fuse", "raters",
            "learn", "predict", "export", "preannotate", "serve", "users", "bench", "demo")


def build_parser() -> argparse.ArgumentParser:
    """Build the ``segloop`` argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="segloop",
        description="Medical image segmentation with the expert in the loop.",
    )
    parser.add_argument("--version", action="version", version=f"segloop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"segloop.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 for a user error, 2 for a usage error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SegloopError as exc:
        message = " ".join(str(exc).split())  # always one line
        print(f"segloop {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"segloop {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
