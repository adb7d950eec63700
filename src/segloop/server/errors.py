"""Errors the API answers with, and how every error becomes a JSON body.

Every error response is ``{"error": message, "status": code}`` (plus
``"details"`` for request validation): a user error of the library
(:class:`~segloop.errors.SegloopError`) is a 400, 404 or 413 naming what is
wrong; an unexpected exception is a 500 whose body says only "internal
error" (the traceback goes to the server log, never to the client).

Examples
--------
>>> err = ApiError(409, "label changed since version 3")
>>> err.status, err.message
(409, 'label changed since version 3')
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from segloop.errors import FileMissingError, ImageTooLargeError, SegloopError

__all__ = ["ApiError", "error_response", "install_error_handlers"]

log = logging.getLogger("segloop.server")


class ApiError(Exception):
    """An error answered with ``status`` and ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str, **extra) -> JSONResponse:
    """The JSON error body every error response has."""
    return JSONResponse({"error": message, "status": status, **extra}, status_code=status)


def _validation_details(exc: RequestValidationError) -> list[dict]:
    out = []
    for err in exc.errors()[:20]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        out.append({"field": loc, "problem": str(err.get("msg", "invalid"))})
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Make every error a JSON body (see the module docstring)."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message)

    @app.exception_handler(SegloopError)
    async def _segloop(request: Request, exc: SegloopError):
        status = 413 if isinstance(exc, ImageTooLargeError) else \
            404 if isinstance(exc, FileMissingError) else 400
        return error_response(status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        details = _validation_details(exc)
        first = details[0] if details else {"field": "body", "problem": "invalid"}
        message = f"invalid request: {first['field']}: {first['problem']}"
        return error_response(422, message, details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return error_response(exc.status_code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error (logged on the server)")
