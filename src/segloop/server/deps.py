"""What every route receives: the server state, the calling user, role checks.

Examples
--------
>>> needs("reviewer").__name__
'needs_reviewer'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from segloop.server.auth import ROLES, allowed, user_for_token
from segloop.server.datastore import Datastore
from segloop.server.db import User
from segloop.server.errors import ApiError
from segloop.server.settings import ServerSettings
from segloop.server.storage import LabelStore

__all__ = ["Admin", "Annotator", "AppState", "CurrentUser", "Reviewer", "State", "current_user",
           "needs", "own_rater", "state"]

_bearer = HTTPBearer(auto_error=False, description="the token `segloop users add` printed")


@dataclass
class AppState:
    """Everything the routes share (one per app)."""

    settings: ServerSettings
    engine: Engine
    sessions: sessionmaker
    datastore: Datastore
    labels: LabelStore
    extras: dict[str, Any] = field(default_factory=dict)  # tool sessions, jobs, models


def state(request: Request) -> AppState:
    """The app's :class:`AppState`."""
    return request.app.state.segloop


def current_user(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None,
                                        Depends(_bearer)]) -> User:
    """The user of the bearer token; 401 without a valid one."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "missing bearer token (Authorization: Bearer TOKEN; "
                       "`segloop users add NAME --role ROLE` prints one)")
    with state(request).sessions() as db:
        user = user_for_token(db, credentials.credentials)
    if user is None:
        raise ApiError(401, "invalid or revoked token")
    request.state.user = user.name
    return user


def needs(role: str):
    """A dependency: the current user, who must have at least ``role``'s rights (403)."""
    if role not in ROLES:
        raise ValueError(role)

    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if not allowed(user.role, role):
            raise ApiError(403, f"this needs the {role} role; {user.name} is {user.role}")
        return user

    check.__name__ = f"needs_{role}"
    return check


def own_rater(user: User, rater: str, *, write: bool) -> None:
    """Annotators read and write only their own labels; reviewers read all; admins write all."""
    if rater == user.name:
        return
    if write and user.role != "admin":
        raise ApiError(403, f"{user.name} may not write {rater}'s label (only their own)")
    if not write and not allowed(user.role, "reviewer"):
        raise ApiError(403, f"{user.name} ({user.role}) may read only their own labels, "
                       f"not {rater}'s")


#: Route parameter types: ``def route(user: Annotator, st: State)``.
State = Annotated[AppState, Depends(state)]
CurrentUser = Annotated[User, Depends(current_user)]
Annotator = Annotated[User, Depends(needs("annotator"))]
Reviewer = Annotated[User, Depends(needs("reviewer"))]
Admin = Annotated[User, Depends(needs("admin"))]
