"""The HTTP API: the reads of the Python API over HTTP, and the endpoint that takes S3 event notifications.

``create_app(mesh_factory, settings)`` builds the FastAPI app (the schema at ``/openapi.json``, Swagger UI at
``/docs`` and ReDoc at ``/redoc``, both served from files installed with the package, so they work offline);
``serve(host, port, settings)`` runs it with uvicorn. The app opens its mesh on first use and closes it at
shutdown. Writes need the bearer token ``MEDIAMESH_API_TOKEN``; reads need it too unless
``MEDIAMESH_API_OPEN_READS`` is true. Status codes:

    400 malformed JSON or header          409 an asset prefix matches several assets
    401 no bearer token                   413 body over MEDIAMESH_API_MAX_BODY_BYTES
    403 wrong bearer token                415 a body that is not JSON
    404 unknown asset, feature, version   422 a bad parameter or a body of the wrong shape
    500 a stored value is corrupt (its bytes fail their checksum; run ``mediamesh verify``), or a bug
    503 no token configured, or the database or object store is unreachable (retry later)

An event's new objects are downloaded from the S3 endpoint the store is configured with, registered under
the name ``s3://BUCKET/KEY`` and answered at once (202); what they lack is computed after the answer, one
run at a time, on a background thread. Events are at-least-once: the same object again is the same asset
and computes nothing.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import mimetypes
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import fastapi_offline
import numpy as np
import sqlalchemy.exc
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from starlette.concurrency import run_in_threadpool

from mediamesh.features.errors import DefinitionError, MediameshError
from mediamesh.features.values import ArrayValue, DedupMap, FileValue, JsonValue, ShotEmbeddings, ShotTable, TimedText
from mediamesh.orchestrator.execution.dispatch import Dispatcher, dispatcher
from mediamesh.orchestrator.execution.planner import plan
from mediamesh.orchestrator.interfaces.events import (
    Announcement,
    FilerEvent,
    S3Notification,
    announcements,
    filer_announcements,
)
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import (
    VERIFY_ON_READ_BYTES,
    AmbiguousAssetError,
    ArtefactNotFoundError,
    AssetNotFoundError,
    CorruptValueError,
    Store,
    StoreSettings,
    ValueNotFoundError,
    ValueRecord,
)
from mediamesh.store.landing import LandingObjectError, LandingReader

__all__ = ["ApiSettings", "create_app", "serve"]

log = logging.getLogger("mediamesh.api")

_Event = TypeVar("_Event", bound=BaseModel)
_NO_TOKEN = "no API token configured: set MEDIAMESH_API_TOKEN"
# The Swagger UI (Apache-2.0) and ReDoc (MIT) bundles that the fastapi-offline wheel installs.
_DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
# Version strings are free-form, but never carry control characters.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
_bearer = HTTPBearer(auto_error=False, description="The token set in MEDIAMESH_API_TOKEN.")
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
_AssetRef = Annotated[
    str, PathParam(description="An asset id, a unique id prefix (4+ hex digits) or a name it was registered under.")
]
_FeatureName = Annotated[
    str, PathParam(description="A feature of the registry or one only stored (read without its code), e.g. shots.")
]
_Version = Annotated[
    str | None,
    Query(
        description="Feature version; default: the promoted version, else the registry's current, else the newest.",
        min_length=1,
        max_length=100,
        pattern=_PRINTABLE,
    ),
]


class ApiSettings(BaseSettings):
    """The API's configuration, from ``MEDIAMESH_API_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="MEDIAMESH_API_", extra="ignore")

    token: SecretStr | None = Field(default=None, description="Bearer token for writes (and reads, unless open).")
    open_reads: bool = Field(default=False, description="Let reads through without the token.")
    landing_buckets: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Buckets whose new objects are ingested: a JSON list or comma-separated."
    )
    max_body_bytes: int = Field(default=1_000_000, gt=0, description="The largest request body accepted.")

    @field_validator("token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("landing_buckets", mode="before")
    @classmethod
    def _split_buckets(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            items = json.loads(text) if text.startswith("[") else text.split(",")
            return [str(item).strip() for item in items if str(item).strip()]
        return value


# ---- response models


class ErrorOut(BaseModel):
    detail: str


class HealthOut(BaseModel):
    status: str


class AssetOut(BaseModel):
    id: str = Field(description="SHA-256 of the asset's bytes.")
    size: int
    names: list[str] = Field(description="Every name the bytes were registered under (paths, s3:// URIs).")
    created_at: datetime


class FeatureStateOut(BaseModel):
    feature: str
    version: str
    state: str = Field(description="stored, running, failed, waiting (for a checkpoint) or missing.")
    key: str
    duration_s: float | None = None
    worker: str | None = None
    at: datetime | None = None
    detail: str = ""


class AssetStatusOut(BaseModel):
    asset: str
    names: list[str]
    features: list[FeatureStateOut]


class ShotRange(BaseModel):
    start: int = Field(description="First shot index returned.")
    stop: int = Field(description="One past the last shot index returned (end exclusive).")
    total: int = Field(description="How many shots the title has.")


class FeatureValueOut(BaseModel):
    """A stored value: ``value`` for tables (and a media file's metadata); ``data``, ``shape``, ``dtype`` and
    ``meta`` for arrays. ``shots`` says which shots a per-shot value was sliced to."""

    asset: str
    feature: str
    version: str
    key: str
    payload: Literal["json", "array", "file"]
    shots: ShotRange | None = None
    value: Any = None
    shape: list[int] | None = None
    dtype: str | None = None
    meta: dict[str, Any] | None = None
    data: Any = None


class LineageInput(BaseModel):
    name: str = Field(description="The input's parameter name.")
    key: str = Field(description="The input value's key (the asset id for 'source').")
    ref: str | None = Field(default=None, description="feature@version of the input value; null for root inputs.")


class ProvenanceOut(BaseModel):
    key: str
    asset: str
    feature: str
    version: str
    current: bool = Field(description="Whether the registry's current definition identifies this value.")
    params: dict[str, Any]
    model_fingerprint: str | None
    code_fingerprint: str
    payload_kind: str
    blob_key: str
    shape: list[int] | None
    dtype: str | None
    bytes: int
    checksum: str
    inputs: list[LineageInput]
    worker: str
    device: str
    started_at: datetime
    finished_at: datetime
    duration_s: float
    created_at: datetime


class EventResult(BaseModel):
    bucket: str
    key: str
    asset: str | None = None
    status: Literal["registered", "ignored", "error"]
    detail: str = ""
    missing: int = Field(default=0, description="Values the asset lacks, queued to compute after this answer.")


class EventsOut(BaseModel):
    results: list[EventResult]
    queued: int = Field(description="Assets queued for computing.")


# ---- the app


def create_app(
    mesh_factory: Callable[[], Mesh], settings: ApiSettings, *, store_settings: StoreSettings | None = None
) -> FastAPI:
    """The API over the mesh ``mesh_factory`` opens (on first use; the app closes it at shutdown).

    ``store_settings`` (default: ``MEDIAMESH_*``) names the S3 endpoint landing buckets are read from.
    """
    meshes = _MeshHolder(mesh_factory)
    runs = dispatcher()
    landing = LandingReader(store_settings or StoreSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(runs.shutdown)
            meshes.close()

    app = FastAPI(
        title="mediamesh",
        summary="Read versioned media features by asset, feature and version; announce new objects.",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    _add_error_handlers(app)

    def write_access(credentials: _Credentials) -> None:
        _check_token(settings, credentials)

    def read_access(credentials: _Credentials) -> None:
        if not settings.open_reads:
            _check_token(settings, credentials)

    reader, writer = [Depends(read_access)], [Depends(write_access)]
    _add_docs(app, reader)
    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorOut, "description": "No bearer token."},
        403: {"model": ErrorOut, "description": "Wrong bearer token."},
        503: {"model": ErrorOut, "description": "No token configured, or a service is unreachable."},
    }
    not_found: dict[int | str, dict[str, Any]] = {
        **errors,
        404: {"model": ErrorOut, "description": "Unknown asset, feature or version."},
        409: {"model": ErrorOut, "description": "The asset prefix matches several assets."},
    }

    @app.get("/health", response_model=HealthOut, tags=["service"])
    def health() -> HealthOut:
        """Liveness: the process answers."""
        return HealthOut(status="ok")

    @app.get("/ready", response_model=HealthOut, tags=["service"], responses={503: {"model": ErrorOut}})
    def ready() -> HealthOut:
        """Readiness: the database answers a trivial query."""
        try:
            _ping(meshes.get().store)
        except Exception as exc:  # any failure means not ready; the reason goes to the log, not the caller
            log.warning("not ready: %s: %s", type(exc).__name__, exc)
            raise HTTPException(503, "the database is unreachable") from None
        return HealthOut(status="ready")

    @app.get("/assets", response_model=list[AssetOut], tags=["assets"], responses=errors, dependencies=reader)
    def list_assets(
        limit: Annotated[int, Query(ge=1, le=1000, description="At most this many, oldest first.")] = 100,
        offset: Annotated[int, Query(ge=0, le=2**31, description="Skip this many.")] = 0,
    ) -> list[AssetOut]:
        """Every registered asset, oldest first."""
        records = meshes.get().store.assets()[offset : offset + limit]
        return [AssetOut(id=a.id, size=a.size, names=list(a.names), created_at=a.created_at) for a in records]

    # Routes with a suffix come before the bare asset route: an asset name may contain '/'.
    @app.get(
        "/assets/{asset:path}/features/{feature}/provenance",
        response_model=ProvenanceOut,
        tags=["values"],
        dependencies=reader,
        responses=not_found,
    )
    def provenance(asset: _AssetRef, feature: _FeatureName, version: _Version = None) -> ProvenanceOut:
        """What produced a value: its identity, lineage, worker, device and timings."""
        mesh = meshes.get()
        record, current = mesh.find(_resolve_asset(mesh.store, asset), feature, version)
        inputs = []
        for name, key in mesh.store.lineage(record.key):
            upstream = mesh.store.value(key)
            inputs.append(LineageInput(name=name, key=key, ref=upstream.ref if upstream is not None else None))
        return ProvenanceOut(
            key=record.key,
            asset=record.asset_id,
            feature=record.feature,
            version=record.version,
            current=current,
            params=record.params,
            model_fingerprint=record.model_fingerprint,
            code_fingerprint=record.code_fingerprint,
            payload_kind=record.payload_kind,
            blob_key=record.blob_key,
            shape=record.shape,
            dtype=record.dtype,
            bytes=record.bytes,
            checksum=record.checksum,
            inputs=inputs,
            worker=record.worker,
            device=record.device,
            started_at=record.started_at,
            finished_at=record.finished_at,
            duration_s=record.duration_s,
            created_at=record.created_at,
        )

    @app.get(
        "/assets/{asset:path}/features/{feature}",
        response_model=FeatureValueOut,
        tags=["values"],
        dependencies=reader,
        responses={
            **not_found,
            200: {
                "description": "JSON for tables and arrays; .npy for arrays with format=npy; the file for media.",
                "content": {"application/octet-stream": {}, "video/mp4": {}},
            },
            422: {"description": "A bad parameter, or a slice or format the value does not have."},
            500: {"model": ErrorOut, "description": "The stored value is corrupt; `mediamesh verify` finds it."},
        },
    )
    def read_value(
        asset: _AssetRef,
        feature: _FeatureName,
        version: _Version = None,
        start: Annotated[int | None, Query(ge=0, description="First shot index (per-shot values).")] = None,
        stop: Annotated[int | None, Query(ge=0, description="One past the last shot index (end exclusive).")] = None,
        t0: Annotated[
            float | None, Query(ge=0, allow_inf_nan=False, description="Seconds: shots that end after t0.")
        ] = None,
        t1: Annotated[
            float | None, Query(ge=0, allow_inf_nan=False, description="Seconds: shots that start before t1.")
        ] = None,
        format: Annotated[
            Literal["json", "npy"] | None,
            Query(description="json (tables, arrays, a media file's metadata) or npy (arrays); default: natural."),
        ] = None,
    ) -> FeatureValueOut | Response:
        """A stored value, optionally sliced by shot indices or by a time range (shots overlapping [t0, t1))."""
        by_shot = start is not None or stop is not None
        by_time = t0 is not None or t1 is not None
        if by_shot and by_time:
            raise HTTPException(422, "slice by shot indices (start, stop) or by time (t0, t1), not both")
        if start is not None and stop is not None and stop < start:
            raise HTTPException(422, f"stop ({stop}) is before start ({start})")
        if t0 is not None and t1 is not None and t1 <= t0:
            raise HTTPException(422, f"t1 ({t1}) must be after t0 ({t0})")
        mesh = meshes.get()
        record, _current = mesh.find(_resolve_asset(mesh.store, asset), feature, version)
        if record.payload_kind == "file" and (by_shot or by_time):
            raise HTTPException(422, f"{record.ref} is a media file; it cannot be sliced by shot or time")
        if format == "npy" and record.payload_kind != "array":
            raise HTTPException(422, f"{record.ref} is not an array; format=npy is for arrays")
        value = mesh.load(record)
        return _value_response(mesh, record, value, start=start, stop=stop, t0=t0, t1=t1, format=format)

    @app.get(
        "/assets/{asset:path}/status",
        response_model=AssetStatusOut,
        tags=["assets"],
        responses=not_found,
        dependencies=reader,
    )
    def status(asset: _AssetRef) -> AssetStatusOut:
        """Each feature@version of the asset: stored, running, failed, waiting or missing, with timing and worker."""
        mesh = meshes.get()
        asset_id, states = mesh.status(_resolve_asset(mesh.store, asset))
        return AssetStatusOut(
            asset=asset_id,
            names=list(mesh.store.asset(asset_id).names),
            features=[
                FeatureStateOut(
                    feature=s.feature,
                    version=s.version,
                    state=s.state,
                    key=s.key,
                    duration_s=s.duration_s,
                    worker=s.worker,
                    at=s.at,
                    detail=s.detail,
                )
                for s in states
            ],
        )

    @app.get("/assets/{asset:path}", response_model=AssetOut, tags=["assets"], responses=not_found, dependencies=reader)
    def get_asset(asset: _AssetRef) -> AssetOut:
        """One asset, by id, unique id prefix or name."""
        mesh = meshes.get()
        record = mesh.store.asset(_resolve_asset(mesh.store, asset))
        return AssetOut(id=record.id, size=record.size, names=list(record.names), created_at=record.created_at)

    event_responses: dict[int | str, dict[str, Any]] = {
        **errors,
        400: {"model": ErrorOut, "description": "Malformed JSON."},
        413: {"model": ErrorOut, "description": "The body is too large."},
        415: {"model": ErrorOut, "description": "The body is not JSON."},
        422: {"description": "The JSON is not an event of this kind."},
    }

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
                results, queued = await run_in_threadpool(_register_all, meshes.get(), landing, runs, found)
                return EventsOut(results=results, queued=queued)

            receive.__name__, receive.__doc__ = fn.__name__, fn.__doc__
            schema = {"application/json": {"schema": _inline_schema(model)}}
            route: Callable[..., Any] = app.post(
                path,
                response_model=EventsOut,
                status_code=202,
                tags=["events"],
                dependencies=writer,
                responses=event_responses,
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

    return app


def serve(host: str = "127.0.0.1", port: int = 8000, settings: ApiSettings | None = None) -> None:
    """Run the API with uvicorn over the mesh ``MEDIAMESH_*`` describes (the CLI's ``mediamesh serve``)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(Mesh.open, settings or ApiSettings())
    uvicorn.run(app, host=host, port=port, timeout_graceful_shutdown=30)


# ---- access, errors and bodies


def _check_token(settings: ApiSettings, credentials: HTTPAuthorizationCredentials | None) -> None:
    if settings.token is None:
        raise HTTPException(503, _NO_TOKEN)
    if credentials is None:
        raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    expected = settings.token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(
            403, "the bearer token is wrong", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )


def _add_docs(app: FastAPI, reader: Sequence[Any]) -> None:
    """Swagger UI at ``/docs`` and ReDoc at ``/redoc``, read like the API's other reads.

    Their scripts and styles come from the ``fastapi-offline`` wheel under ``/docs-assets`` rather than a CDN,
    so the pages work where the service has no internet; those files are the same public bundles for every
    deployment, so they need no token.
    """
    assets = "/docs-assets"
    app.mount(assets, StaticFiles(directory=_DOCS_ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False, dependencies=list(reader))
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets}/favicon.png",
            # No badge from the public validator service: the page makes no request outside the service.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False, dependencies=list(reader))
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{assets}/favicon.png",
            with_google_fonts=False,
        )


def _add_error_handlers(app: FastAPI) -> None:
    async def mediamesh_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, AssetNotFoundError | ValueNotFoundError | ArtefactNotFoundError | DefinitionError):
            # A DefinitionError here is an unknown feature name; its message carries the "Did you mean".
            return JSONResponse({"detail": str(exc)}, 404)
        if isinstance(exc, AmbiguousAssetError):
            return JSONResponse({"detail": str(exc)}, 409)
        if isinstance(exc, CorruptValueError):
            # Damaged bytes stay damaged: asking the client to retry would only hide them.
            log.error("%s %s: %s", request.method, request.url.path, exc)
            return JSONResponse({"detail": str(exc)}, 500)
        if getattr(exc, "retryable", False):
            log.warning("%s %s: %s", request.method, request.url.path, exc)
            return JSONResponse({"detail": f"try again later: {exc}"}, 503, headers={"Retry-After": "5"})
        return await internal_error(request, exc)

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: the database is unreachable: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": "the database is unreachable; try again later"}, 503, headers={"Retry-After": "5"}
        )

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error; the server log has the details"}, 500)

    app.add_exception_handler(MediameshError, mediamesh_error)
    app.add_exception_handler(sqlalchemy.exc.OperationalError, database_unavailable)
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, database_unavailable)
    app.add_exception_handler(Exception, internal_error)


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


# ---- the mesh and reads


class _MeshHolder:
    """The app's mesh, opened on first use so that the API starts (and answers /health) before the database."""

    def __init__(self, factory: Callable[[], Mesh]) -> None:
        self._factory = factory
        self._mesh: Mesh | None = None
        self._lock = threading.Lock()

    def get(self) -> Mesh:
        with self._lock:
            if self._mesh is None:
                try:
                    self._mesh = self._factory()
                except Exception as exc:  # whatever opening failed on, the store is not there to serve
                    log.warning("cannot open the store: %s: %s", type(exc).__name__, exc)
                    raise HTTPException(503, "the store cannot be opened; try again later") from None
            return self._mesh

    def close(self) -> None:
        with self._lock:
            if self._mesh is not None:
                self._mesh.close()
                self._mesh = None


def _ping(store: Store) -> None:
    """One trivial query: a lookup of a key no value has."""
    store.stored_keys(["0" * 64])


def _resolve_asset(store: Store, ref: str) -> str:
    """An asset id from an id, a unique prefix or a recorded name: the database alone answers, never a file
    on the server, so no answer depends on which paths exist here."""
    if not ref or len(ref) > 4096:
        raise AssetNotFoundError(f"no asset matches {ref[:80]!r}")
    return store.resolve_asset(ref)


def _value_response(
    mesh: Mesh,
    record: ValueRecord,
    value: Any,
    *,
    start: int | None,
    stop: int | None,
    t0: float | None,
    t1: float | None,
    format: Literal["json", "npy"] | None,
) -> FeatureValueOut | Response:
    """The value as the caller asked: sliced to the shots wanted, as JSON, .npy or the media file itself."""
    by_shot, by_time = start is not None or stop is not None, t0 is not None or t1 is not None
    out = FeatureValueOut(
        asset=record.asset_id,
        feature=record.feature,
        version=record.version,
        key=record.key,
        payload="json",
    )
    headers = {"X-Mediamesh-Key": record.key}
    if isinstance(value, FileValue | Path):  # a Path is a media file read without its feature's code
        if format == "json":
            meta = value.to_meta() if isinstance(value, FileValue) else record.meta
            return out.model_copy(update={"payload": "file", "value": meta})
        suffix = type(value).suffix if isinstance(value, FileValue) else ""
        path = value.path if isinstance(value, FileValue) else value
        media_type = mimetypes.guess_type(f"value{suffix}")[0] or "application/octet-stream"
        filename = f"{record.asset_id[:12]}-{record.ref}{suffix}"
        if record.bytes > VERIFY_ON_READ_BYTES:
            # Too large to hash before answering (load did not): hashed as it streams, and a mismatch aborts the
            # download, so the client never holds a complete wrong file.
            disposition = f'attachment; filename="{filename}"'
            return StreamingResponse(
                mesh.store.stream_value(record),
                media_type=media_type,
                headers={**headers, "Content-Length": str(record.bytes), "Content-Disposition": disposition},
            )
        return FileResponse(path, media_type=media_type, filename=filename, headers=headers)
    per_shot = isinstance(value, ShotTable | TimedText | DedupMap | ShotEmbeddings)
    if (by_shot or by_time) and not per_shot:
        raise HTTPException(422, f"{record.ref} is not a per-shot value; it cannot be sliced by shot or time")
    shots: ShotRange | None = None
    if per_shot:
        total = _shot_count(value)
        if by_time:
            table = value if isinstance(value, ShotTable) else _shot_table_of(mesh, record)
            lo, hi = _overlapping(table, t0, t1)
        else:
            lo, hi = min(start or 0, total), min(total if stop is None else stop, total)
        shots = ShotRange(start=lo, stop=max(lo, hi), total=total)
    if isinstance(value, ArrayValue | np.ndarray):
        array = value.data if isinstance(value, ArrayValue) else value
        if shots is not None:
            array = array[shots.start : shots.stop]
        if format == "npy":
            buf = io.BytesIO()
            np.save(buf, array, allow_pickle=False)
            disposition = f'attachment; filename="{record.asset_id[:12]}-{record.ref}.npy"'
            return Response(
                buf.getvalue(),
                media_type="application/octet-stream",
                headers={**headers, "Content-Disposition": disposition},
            )
        if array.dtype.kind not in "biuf":
            raise HTTPException(422, f"{record.ref} holds {array.dtype} values, which JSON cannot carry; use npy")
        meta = value.meta if isinstance(value, ArrayValue) else {}
        return out.model_copy(
            update={
                "payload": "array",
                "shots": shots,
                "shape": list(array.shape),
                "dtype": str(array.dtype),
                "meta": meta,
                "data": _json_rows(array),
            }
        )
    if isinstance(value, JsonValue):
        return out.model_copy(update={"shots": shots, "value": _json_value(value, shots)})
    if isinstance(value, dict | list):  # a JSON document read without its feature's code, as it is stored
        return out.model_copy(update={"value": value})
    raise HTTPException(422, f"{record.ref} has no HTTP representation")  # pragma: no cover - every kind is above


def _shot_count(value: Any) -> int:
    if isinstance(value, ShotTable):
        return len(value.shots)
    if isinstance(value, TimedText):
        return len(value.per_shot)
    if isinstance(value, DedupMap):
        return len(value.representative)
    return int(value.data.shape[0]) if value.data.ndim else 0


def _shot_table_of(mesh: Mesh, record: ValueRecord) -> ShotTable:
    """The shot table a per-shot value was computed from, found by walking its lineage."""
    seen: set[str] = set()
    frontier = [record.key]
    while frontier:
        key = frontier.pop(0)
        for _, input_key in mesh.store.lineage(key):
            if input_key in seen:
                continue
            seen.add(input_key)
            upstream = mesh.store.value(input_key)
            if upstream is None:  # a root input: the asset, its subtitles, its title
                continue
            output = mesh.registry[upstream.feature].output if upstream.feature in mesh.registry else None
            if isinstance(output, type) and issubclass(output, ShotTable):
                table: ShotTable = mesh.store.load(upstream, output)
                return table
            frontier.append(input_key)
    raise HTTPException(422, f"{record.ref} was not computed from a shot table; slice it by shot indices")


def _overlapping(table: ShotTable, t0: float | None, t1: float | None) -> tuple[int, int]:
    """The shots overlapping [t0, t1), as an index range; shots are contiguous in time, so the range is too."""
    low, high = t0 if t0 is not None else 0.0, t1 if t1 is not None else float("inf")
    hits = [i for i, s in enumerate(table.shots) if s.end_time > low and s.start_time < high]
    if not hits:
        before = sum(1 for s in table.shots if s.end_time <= low)
        return before, before
    return hits[0], hits[-1] + 1


def _json_value(value: JsonValue, shots: ShotRange | None) -> Any:
    """A table as JSON, sliced to ``shots``; timed text keeps only the cues its shots refer to, with their index."""
    lo, hi = (shots.start, shots.stop) if shots is not None else (0, None)
    if isinstance(value, ShotTable):
        return {"fps": value.fps, "shots": value.records()[lo:hi]}
    if isinstance(value, TimedText):
        per_shot = [list(p) for p in value.per_shot[lo:hi]]
        wanted = sorted({i for p in per_shot for i in p}) if shots is not None else range(len(value.cues))
        cues = [
            {"index": i, "start": value.cues[i].start, "end": value.cues[i].end, "text": value.cues[i].text}
            for i in wanted
        ]
        return {"cues": cues, "per_shot": per_shot, "origin": value.origin, "language": value.language}
    if isinstance(value, DedupMap):
        return {"representative": list(value.representative[lo:hi]), "method": value.method}
    return value.to_json()


def _json_rows(array: np.ndarray[Any, Any]) -> Any:
    """The array as nested lists; NaN and infinities (which JSON lacks) become null."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        rows = array.astype(object)
        rows[~np.isfinite(array)] = None
        return rows.tolist()
    return array.tolist()


# ---- S3 events


def _register_all(
    mesh: Mesh, landing: LandingReader, runs: Dispatcher, found: Sequence[Announcement]
) -> tuple[list[EventResult], int]:
    """Register each new object (download, hash, store); queue a run for what the registered assets lack."""
    results: list[EventResult] = []
    done: dict[tuple[str, str], EventResult] = {}
    names: dict[str, str] = {}
    for a in found:
        if a.status != "new":
            status: Literal["ignored", "error"] = "ignored" if a.status == "ignored" else "error"
            results.append(EventResult(bucket=a.bucket, key=a.key, status=status, detail=a.detail))
            continue
        if (a.bucket, a.key) not in done:
            done[(a.bucket, a.key)] = _register_one(mesh.store, landing, a.bucket, a.key)
        result = done[(a.bucket, a.key)]
        results.append(result)
        if result.asset is not None:
            names.setdefault(result.asset, f"s3://{a.bucket}/{a.key}")
    if not names:
        return results, 0
    the_plan = plan(mesh.store, mesh.registry, list(names), mesh.default_targets())
    missing = {asset: sum(1 for v in the_plan.missing if v.asset == asset) for asset in names}
    results = [r.model_copy(update={"missing": missing[r.asset]}) if r.asset in missing else r for r in results]
    queued = runs.submit(mesh, [a for a, n in missing.items() if n], names, trigger="s3-event")
    return results, len(queued)


def _register_one(store: Store, landing: LandingReader, bucket: str, key: str) -> EventResult:
    name = f"s3://{bucket}/{key}"
    with tempfile.TemporaryDirectory(prefix="mediamesh-landing-") as tmp:
        path = Path(tmp) / "object"
        try:
            sha256 = landing.download(bucket, key, path)
        except LandingObjectError as exc:
            return EventResult(bucket=bucket, key=key, status="error", detail=str(exc))
        asset, new = store.register_asset(path, name=name, sha256=sha256)
    detail = "new bytes" if new else "known bytes; the name is recorded"
    return EventResult(bucket=bucket, key=key, asset=asset.id, status="registered", detail=detail)
