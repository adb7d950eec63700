"""Users, roles and bearer tokens.

A token is 32 random bytes (URL-safe text) shown once when the user is
added; only its SHA-256 is stored, so a leaked database does not give access.
(A fast hash is right here: the token is random and long, not a password.)

Roles, each including the rights of the one before:

``annotator``
    reads images, runs tools and models, reads and writes *its own* labels.
``reviewer``
    also reads every rater's labels and their consensus.
``admin``
    also manages users and background jobs (training, prediction).

Examples
--------
>>> from segloop.server.db import connect, migrate, session_factory
>>> engine = connect("sqlite://"); _ = migrate(engine)
>>> Session = session_factory(engine)
>>> with Session() as db:
...     token = add_user(db, "ann", "annotator")
...     user = user_for_token(db, token)
>>> user.name, allowed(user.role, "reviewer"), len(token) > 40
('ann', False, True)
"""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from segloop.errors import InvalidArgumentError
from segloop.server.db import User

__all__ = ["ROLES", "add_user", "allowed", "hash_token", "list_users", "remove_user",
           "user_for_token"]

#: Roles in increasing order of rights.
ROLES = ("annotator", "reviewer", "admin")
_NAME = re.compile(r"^[A-Za-z0-9]{1,64}$")


def hash_token(token: str) -> str:
    """The stored form of a token (hex SHA-256)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def allowed(role: str, needed: str) -> bool:
    """Whether ``role`` has at least the rights of ``needed``."""
    return ROLES.index(role) >= ROLES.index(needed)


def check_name(name: str) -> str:
    """A user (rater) name: letters and digits, 1-64 (it names label folders)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgumentError(f"user name {name!r}: letters and digits only, 1 to 64 "
                                   "(it names the rater's label folder)")
    return name


def add_user(db: Session, name: str, role: str) -> str:
    """Add a user; return its token (shown once, stored hashed).

    Raises
    ------
    InvalidArgumentError
        A bad name or role, or a name already taken.
    """
    check_name(name)
    if role not in ROLES:
        raise InvalidArgumentError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if db.scalar(select(User).where(User.name == name)) is not None:
        raise InvalidArgumentError(f"user {name!r} exists already")
    token = secrets.token_urlsafe(32)
    db.add(User(name=name, role=role, token_hash=hash_token(token)))
    db.commit()
    return token


def remove_user(db: Session, name: str) -> bool:
    """Remove a user (their labels stay); whether one was removed."""
    user = db.scalar(select(User).where(User.name == name))
    if user is None:
        return False
    db.delete(user)
    db.commit()
    return True


def list_users(db: Session) -> list[User]:
    """Every user, by name."""
    return list(db.scalars(select(User).order_by(User.name)))


def user_for_token(db: Session, token: str) -> User | None:
    """The user holding ``token``, or None."""
    if not token or len(token) > 256:
        return None
    return db.scalar(select(User).where(User.token_hash == hash_token(token)))
