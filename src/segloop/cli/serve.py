"""``segloop serve DATASET_DIR``: the annotation server.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="segloop")
>>> _ = register(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["serve", "data", "--port", "9000"])
>>> args.host, args.port, args.db, args.func is run
('127.0.0.1', 9000, None, True)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segloop.errors import InvalidArgumentError

__all__ = ["register", "run"]

_DESCRIPTION = """\
Serve a dataset folder (BIDS, images/ + labels/ pairs or any layout segloop
reads) over HTTP: images and slices, every smart tool, versioned labels per
rater (written under the workspace in a BIDS-derivatives layout, every save a
new version), models and background jobs. The workspace (database, labels,
versions) defaults to DATASET_DIR.segloop beside the dataset, which is never
written to; the database to SQLite in it (--db postgresql://USER@HOST/NAME for
PostgreSQL). Add users first with `segloop users add NAME --role ROLE --data
DATASET_DIR`; the API is documented at http://HOST:PORT/docs."""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``serve`` sub-command."""
    p = subparsers.add_parser("serve", help="the annotation server (REST API, /docs)",
                              description=_DESCRIPTION)
    p.add_argument("dataset", type=Path, metavar="DATASET_DIR", help="the dataset folder")
    add_workspace_options(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--model", type=Path, default=None, metavar="CKPT",
                   help="a checkpoint of segloop train for pre-annotation and fine-tuning "
                   "(or a model of segloop export, .onnx: no fine-tuning)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(func=run)
    return p


def add_workspace_options(p: argparse.ArgumentParser) -> None:
    """``--workspace`` and ``--db``, shared with ``segloop users``."""
    p.add_argument("--workspace", type=Path, default=None, metavar="DIR",
                   help="folder of the database, labels and versions (default: "
                   "DATASET_DIR.segloop beside the dataset)")
    p.add_argument("--db", default=None, metavar="URL",
                   help="database URL (default sqlite:///WORKSPACE/segloop.db; or "
                   "postgresql://USER@HOST:PORT/NAME)")


def run(args: argparse.Namespace) -> int:
    """Start the server (blocks until interrupted)."""
    import logging

    import uvicorn

    from segloop.server.app import create_app
    from segloop.server.settings import ServerSettings

    if not 0 < args.port < 65536:
        raise InvalidArgumentError(f"--port {args.port}: expected 1..65535")
    settings = ServerSettings.create(args.dataset, workspace=args.workspace, db_url=args.db,
                                     model=args.model)
    logging.basicConfig(level=args.log_level.upper(), format="%(message)s")
    app = create_app(settings)
    print(f"serving {settings.dataset} ({len(app.state.segloop.datastore.ids())} images) on "
          f"http://{args.host}:{args.port} (API docs: /docs); workspace {settings.workspace}",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                access_log=False)
    return 0
