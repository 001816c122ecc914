"""Event routes: S3 / MinIO notifications and SeaweedFS filer webhooks announce new objects in landing buckets.

An event's new objects are downloaded from the S3 endpoint the store is configured with, registered under
the name ``s3://BUCKET/KEY`` and answered at once (202); what they lack is computed after the answer, one
run at a time, on a background thread. Events are at-least-once: the same object again is the same asset
and computes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from mediamesh.orchestrator.interfaces.api.errors import RETRY_AFTER_S
from mediamesh.orchestrator.interfaces.api.models import AUTH_ERRORS, ErrorOut, EventResult, EventsOut
from mediamesh.orchestrator.interfaces.events import (
    Announcement,
    FilerEvent,
    S3Notification,
    announcements,
    filer_announcements,
)
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store.landing import LandingObject, LandingReader, NoEndpointError

if TYPE_CHECKING:
    from mediamesh.orchestrator.interfaces.api.app import ApiSettings, MeshHolder

__all__ = ["router"]

_Event = TypeVar("_Event", bound=BaseModel)
_EVENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    400: {"model": ErrorOut, "description": "Malformed JSON."},
    413: {"model": ErrorOut, "description": "The body is too large."},
    415: {"model": ErrorOut, "description": "The body is not JSON."},
    422: {"description": "The JSON is not an event of this kind."},
}


def router(meshes: MeshHolder, landing: LandingReader, settings: ApiSettings, writer: list[Any]) -> APIRouter:
    routes = APIRouter(tags=["events"], dependencies=writer)

    def event_route(
        path: str, model: type[_Event], judge: Callable[[_Event, list[str]], list[Announcement]]
    ) -> Callable[[Callable[[], None]], Callable[..., Any]]:
        """Register a POST route at ``path`` taking ``model`` bodies; ``judge`` reads them into announcements."""

        def decorate(fn: Callable[[], None]) -> Callable[..., Any]:
            async def receive(request: Request) -> EventsOut:
                body = await _read_json(request, settings.max_body_bytes)
                try:
                    event = model.model_validate(body)
                except ValidationError as exc:
                    errors = exc.errors(include_url=False, include_context=False)
                    raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None
                found = judge(event, settings.landing_buckets)
                try:
                    results, queued = await run_in_threadpool(_register_all, meshes.get(), landing, found)
                except NoEndpointError as exc:
                    # The server's configuration is wrong, not the sender's event: it should retry once fixed.
                    retry = {"Retry-After": RETRY_AFTER_S}
                    raise HTTPException(503, f"try again later: {exc}", headers=retry) from None
                return EventsOut(results=results, queued=queued)

            receive.__name__, receive.__doc__ = fn.__name__, fn.__doc__
            schema = {"application/json": {"schema": _inline_schema(model)}}
            route: Callable[..., Any] = routes.post(
                path,
                response_model=EventsOut,
                status_code=202,
                responses=_EVENT_RESPONSES,
                openapi_extra={"requestBody": {"required": True, "content": schema}},
            )(receive)
            return route

        return decorate

    @event_route("/events/s3", S3Notification, announcements)
    def s3_event() -> None:
        """Register the new objects an S3 or MinIO event notification announces, and queue what they lack.

        Only ObjectCreated events in a landing bucket count; other events are ignored. A record that names an
        unsafe key, a foreign bucket or a missing object is an ``error`` for that record alone. When the object
        store or the database is unreachable the answer is 503, so that the sender retries.
        """

    @event_route("/events/seaweedfs", FilerEvent, filer_announcements)
    def seaweedfs_event() -> None:
        """Register the file a SeaweedFS filer webhook event announces (``notification.webhook``), as for S3.

        A file created or rewritten under ``/buckets/BUCKET/`` of a landing bucket counts; folders and other
        events are ignored.
        """

    return routes


def _register_all(mesh: Mesh, landing: LandingReader, found: Sequence[Announcement]) -> tuple[list[EventResult], int]:
    """Take each new object through the one ingest path and queue what its asset lacks (one plan); an
    answer per record."""
    sources = {(a.bucket, a.key): LandingObject(a.bucket, a.key, 0, "") for a in found if a.status == "new"}
    taken = mesh.take(list(sources.values()), trigger="s3-event", wait=False, landing=landing) if sources else []
    by_key = dict(zip(sources, taken, strict=True))
    results: list[EventResult] = []
    for a in found:
        if a.status != "new":
            status: Literal["ignored", "error"] = "ignored" if a.status == "ignored" else "error"
            results.append(EventResult(bucket=a.bucket, key=a.key, status=status, detail=a.detail))
            continue
        r = by_key[(a.bucket, a.key)]
        if r.asset is None:
            failed = bool(r.errors)
            detail = "; ".join(r.errors) if failed else r.detail
            results.append(
                EventResult(bucket=a.bucket, key=a.key, status="error" if failed else "ignored", detail=detail)
            )
            continue
        detail = "; ".join([r.detail, *r.errors]) if r.errors else r.detail
        results.append(
            EventResult(
                bucket=a.bucket, key=a.key, asset=r.asset, status="registered", detail=detail, missing=r.missing
            )
        )
    return results, len({r.asset for r in taken if r.queued})


async def _read_json(request: Request, limit: int) -> Any:
    """The request's JSON body: 415 unless it says JSON, 413 past ``limit`` bytes (declared or sent), 400 when
    malformed."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not (
        media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))
    ):
        raise HTTPException(415, "send the notification as Content-Type: application/json")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise HTTPException(413, f"the body is over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"the body is over {limit} bytes")
    try:
        return json.loads(body, parse_constant=_not_json, parse_float=_finite)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError too
        raise HTTPException(400, f"malformed JSON: {exc}") from None


def _not_json(constant: str) -> Any:
    # Python reads NaN and Infinity, which JSON lacks (and an error message echoing them could not be sent).
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not np.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` inlined, to stand alone in an OpenAPI operation."""
    schema = model.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return dict(inline(schema))
