"""Errors to HTTP statuses: one ordered table of error families, the first family an error belongs to wins.

Store and feature errors each belong to one family of ``features/errors.py`` (an unknown feature name is a
NotFoundError as well as a DefinitionError, so it is a 404); the store reports a database or object store it
cannot reach as an UnavailableError, so this module needs to know nothing about SQLAlchemy or S3.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mediamesh.features.errors import (
    AmbiguousError,
    CorruptError,
    DefinitionError,
    MediameshError,
    NotFoundError,
    UnavailableError,
)

__all__ = ["RETRY_AFTER_S", "STATUS_BY_FAMILY", "add_error_handlers", "status_of"]

log = logging.getLogger("mediamesh.api")

STATUS_BY_FAMILY: tuple[tuple[type[MediameshError], int], ...] = (
    (AmbiguousError, 409),
    (NotFoundError, 404),
    (UnavailableError, 503),
    # Damaged bytes stay damaged: asking the client to retry would only hide them.
    (CorruptError, 500),
    (DefinitionError, 422),
)
RETRY_AFTER_S = "5"


def status_of(exc: MediameshError) -> int:
    """The status of the first family ``exc`` belongs to; outside them, 503 if retrying can help, else 500."""
    for family, status in STATUS_BY_FAMILY:
        if isinstance(exc, family):
            return status
    return 503 if exc.retryable else 500


def add_error_handlers(app: FastAPI) -> None:
    """Answer mediamesh errors by family and anything else as a 500 whose details stay in the server log."""

    async def mediamesh_error(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, MediameshError):  # pragma: no cover - registered for MediameshError only
            return await internal_error(request, exc)
        status = status_of(exc)
        where = f"{request.method} {request.url.path}"
        if status == 503:
            log.warning("%s: %s", where, exc)
            return JSONResponse({"detail": f"try again later: {exc}"}, 503, headers={"Retry-After": RETRY_AFTER_S})
        if status == 500 and isinstance(exc, CorruptError):
            log.error("%s: %s", where, exc)
            return JSONResponse({"detail": str(exc)}, 500)
        if status == 500:
            return await internal_error(request, exc)
        return JSONResponse({"detail": str(exc)}, status)

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error; the server log has the details"}, 500)

    app.add_exception_handler(MediameshError, mediamesh_error)
    app.add_exception_handler(Exception, internal_error)
