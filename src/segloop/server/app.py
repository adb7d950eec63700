"""The FastAPI application: state, middleware (access log, body limit), routers.

:func:`create_app` opens (and migrates) the database, opens the dataset,
reconciles label files with the database and mounts one router per
resource (:mod:`segloop.server.routers`).  The OpenAPI description is served
at ``/openapi.json`` and rendered at ``/docs``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware

from segloop import __version__
from segloop.server.datastore import Datastore
from segloop.server.db import connect, migrate, session_factory
from segloop.server.deps import AppState
from segloop.server.errors import error_response, install_error_handlers
from segloop.server.settings import ServerSettings
from segloop.server.storage import LabelStore

__all__ = ["ROUTERS", "create_app"]

access_log = logging.getLogger("segloop.server.access")

#: Router modules of :mod:`segloop.server.routers`, mounted in this order.
ROUTERS = ("meta", "users", "images", "tools", "labels", "models", "jobs")


class _BodyLimit(BaseHTTPMiddleware):
    """413 for a request whose declared or actual body exceeds the limit."""

    def __init__(self, app, limit: int):
        super().__init__(app)
        self.limit = limit

    async def dispatch(self, request: Request, call_next):
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return error_response(400, "invalid Content-Length header")
            if int(declared) > self.limit:
                return error_response(413, f"request body of {int(declared)} bytes exceeds the "
                                      f"limit of {self.limit} bytes")
        elif request.method in ("POST", "PUT", "PATCH"):
            body = await request.body()  # chunked: read (bounded below) and check
            if len(body) > self.limit:
                return error_response(413, f"request body exceeds the limit of {self.limit} "
                                      "bytes")
        return await call_next(request)


class _AccessLog(BaseHTTPMiddleware):
    """One JSON line per request: user, method, route, status, duration."""

    async def dispatch(self, request: Request, call_next):
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            access_log.info(json.dumps({
                "user": getattr(request.state, "user", None), "method": request.method,
                "path": request.url.path, "route": getattr(route, "path", None),
                "status": status, "ms": round(1000 * (time.perf_counter() - start), 2)}))


def create_app(settings: ServerSettings) -> FastAPI:
    """The application serving ``settings.dataset`` (see the module docstring)."""
    import importlib

    settings.workspace.mkdir(parents=True, exist_ok=True)
    engine = connect(settings.db_url)
    migrate(engine)
    sessions = session_factory(engine)
    datastore = Datastore(settings.dataset)
    labels = LabelStore(datastore, settings.workspace, sessions, suffix=settings.label_suffix)
    app = FastAPI(title="segloop annotation server", version=__version__,
                  description="Images, smart tools, versioned labels per rater, models and "
                  "jobs over HTTP. Authenticate with `Authorization: Bearer TOKEN`.")
    app.state.segloop = AppState(settings, engine, sessions, datastore, labels)
    app.state.segloop.extras["reconcile"] = labels.reconcile()
    install_error_handlers(app)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(_AccessLog)
    static = Path(__file__).parent / "static"
    if (static / "index.html").is_file():  # the web page (issue 6): / and /static/...
        app.mount("/static", StaticFiles(directory=static), name="static")

        @app.get("/", include_in_schema=False)
        def index() -> FileResponse:
            return FileResponse(static / "index.html", media_type="text/html")

    for name in ROUTERS:
        module = importlib.import_module(f"segloop.server.routers.{name}")
        app.include_router(module.router)
        if hasattr(module, "setup"):  # start-up work of a router (e.g. jobs left by a crash)
            module.setup(app.state.segloop)
    return app
