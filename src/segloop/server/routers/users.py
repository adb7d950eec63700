"""``/api/users``: admins list, add and remove users (tokens are shown once)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from segloop.server.auth import ROLES, add_user, list_users, remove_user
from segloop.server.deps import Admin, State
from segloop.server.errors import ApiError

router = APIRouter(prefix="/api/users", tags=["users"])


class NewUser(BaseModel):
    """A user to add."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")
    role: str = Field(pattern="^(" + "|".join(ROLES) + ")$")


@router.get("")
def users(admin: Admin, st: State) -> list[dict]:
    """Every user: name and role."""
    with st.sessions() as db:
        return [{"name": u.name, "role": u.role} for u in list_users(db)]


@router.post("", status_code=201)
def create(body: NewUser, admin: Admin, st: State) -> dict:
    """Add a user; the answer holds its token, shown this once."""
    with st.sessions() as db:
        token = add_user(db, body.name, body.role)
    return {"name": body.name, "role": body.role, "token": token}


@router.delete("/{name}")
def delete(name: str, admin: Admin, st: State) -> dict:
    """Remove a user (their labels stay)."""
    with st.sessions() as db:
        if not remove_user(db, name):
            raise ApiError(404, f"no user {name!r}")
    return {"removed": name}
