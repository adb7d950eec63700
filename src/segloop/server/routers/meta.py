"""``GET /health`` and ``GET /api/info``: is the server up, what does it serve."""

from __future__ import annotations

from fastapi import APIRouter

from segloop import __version__
from segloop.server.deps import CurrentUser, State

router = APIRouter(tags=["meta"])


@router.get("/health")
def health() -> dict:
    """Liveness: no authentication, no database access."""
    return {"status": "ok", "version": __version__}


@router.get("/api/info")
def info(user: CurrentUser, st: State) -> dict:
    """The dataset served, the caller, and what the start-up reconciliation did."""
    return {"version": __version__, "dataset": str(st.settings.dataset),
            "layout": st.datastore.dataset.layout, "images": len(st.datastore.ids()),
            "user": user.name, "role": user.role, "model": str(st.settings.model)
            if st.settings.model else None, "reconcile": st.extras.get("reconcile", {})}
