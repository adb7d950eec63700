"""``segloop users add|list|remove``: who may use the annotation server.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="segloop")
>>> _ = register(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["users", "add", "ann", "--role", "annotator", "--data", "d"])
>>> args.name, args.role, args.func is run
('ann', 'annotator', True)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segloop.cli.serve import add_workspace_options

__all__ = ["register", "run"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``users`` command and its sub-commands."""
    p = subparsers.add_parser("users", help="add, list or remove users of the server",
                              description="Manage the users of `segloop serve`: each has a "
                              "role (annotator: own labels; reviewer: reads every label; "
                              "admin: users and jobs) and a bearer token, printed once by "
                              "`add` and stored hashed.")
    sub = p.add_subparsers(dest="users_command", metavar="SUBCOMMAND")
    sub.required = True
    add = sub.add_parser("add", help="add a user and print its token (once)")
    add.add_argument("name", help="user (rater) name: letters and digits")
    add.add_argument("--role", required=True, choices=("annotator", "reviewer", "admin"))
    for q in (add, sub.add_parser("list", help="list users and roles"),
              sub.add_parser("remove", help="remove a user (their labels stay)")):
        if q.prog.endswith("remove"):
            q.add_argument("name")
        q.add_argument("--data", type=Path, required=True, metavar="DATASET_DIR",
                       help="the dataset folder the server serves")
        add_workspace_options(q)
        q.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``segloop users ...``."""
    from segloop.server.auth import add_user, list_users, remove_user
    from segloop.server.db import connect, migrate, session_factory
    from segloop.server.settings import ServerSettings

    settings = ServerSettings.create(args.data, workspace=args.workspace, db_url=args.db)
    settings.workspace.mkdir(parents=True, exist_ok=True)
    engine = connect(settings.db_url)
    migrate(engine)
    with session_factory(engine)() as db:
        if args.users_command == "add":
            token = add_user(db, args.name, args.role)
            print(f"added {args.name} ({args.role}); token (shown once, keep it):")
            print(token)
        elif args.users_command == "list":
            for user in list_users(db):
                print(f"{user.name}\t{user.role}")
        else:
            if not remove_user(db, args.name):
                from segloop.errors import InvalidArgumentError

                raise InvalidArgumentError(f"no user {args.name!r}")
            print(f"removed {args.name}")
    engine.dispose()
    return 0
