"""The FastAPI app: its settings, its mesh (opened on first use, closed at shutdown), its docs and its routes."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import fastapi_offline
from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from starlette.concurrency import run_in_threadpool

from mediamesh.orchestrator.interfaces.api import auth
from mediamesh.orchestrator.interfaces.api.errors import add_error_handlers
from mediamesh.orchestrator.interfaces.api.routes import assets, events, health, matchcuts, search, values
from mediamesh.orchestrator.interfaces.web import mount as mount_pages
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import StoreSettings
from mediamesh.store.landing import LandingReader

__all__ = ["ApiSettings", "MeshHolder", "create_app", "serve"]

log = logging.getLogger("mediamesh.api")

# The Swagger UI (Apache-2.0) and ReDoc (MIT) bundles that the fastapi-offline wheel installs.
_DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"


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


class MeshHolder:
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


def create_app(
    mesh_factory: Callable[[], Mesh], settings: ApiSettings, *, store_settings: StoreSettings | None = None
) -> FastAPI:
    """The API over the mesh ``mesh_factory`` opens (on first use; the app closes it at shutdown).

    ``store_settings`` (default: ``MEDIAMESH_*``) names the S3 endpoint landing buckets are read from.
    """
    meshes = MeshHolder(mesh_factory)
    landing = LandingReader(store_settings or StoreSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(meshes.close)  # the mesh's dispatcher finishes the runs it queued first

    app = FastAPI(
        title="mediamesh",
        summary="Read versioned media features by asset, feature and version; announce new objects.",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    add_error_handlers(app)
    reader, writer = auth.access(settings)
    _add_docs(app, reader)
    app.include_router(health.router(meshes))
    # Routes with a suffix come before the bare asset route: an asset name may contain '/'.
    app.include_router(values.router(meshes, reader))
    app.include_router(assets.router(meshes, reader))
    app.include_router(events.router(meshes, landing, settings, writer))
    app.include_router(search.router(meshes, reader))
    app.include_router(matchcuts.router(meshes, reader))
    mount_pages(app, meshes, settings)  # the shot browser at /, read as the API reads
    return app


def serve(host: str = "127.0.0.1", port: int = 8000, settings: ApiSettings | None = None) -> None:
    """Run the API with uvicorn over the mesh ``MEDIAMESH_*`` describes (the CLI's ``mediamesh serve``)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(Mesh.open, settings or ApiSettings())
    uvicorn.run(app, host=host, port=port, timeout_graceful_shutdown=30)


def _add_docs(app: FastAPI, reader: Sequence[Any]) -> None:
    """Swagger UI at ``/docs`` and ReDoc at ``/redoc``, read like the API's other reads.

    Their scripts and styles come from the ``fastapi-offline`` wheel under ``/docs-assets`` rather than a CDN,
    so the pages work where the service has no internet; those files are the same public bundles for every
    deployment, so they need no token.
    """
    assets_path = "/docs-assets"
    app.mount(assets_path, StaticFiles(directory=_DOCS_ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False, dependencies=list(reader))
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{assets_path}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets_path}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets_path}/favicon.png",
            # No badge from the public validator service: the page makes no request outside the service.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False, dependencies=list(reader))
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{assets_path}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{assets_path}/favicon.png",
            with_google_fonts=False,
        )
