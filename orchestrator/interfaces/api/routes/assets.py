"""Asset routes: the list (paged in the database), one asset, and its features' states."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from mediamesh.orchestrator.interfaces.api.models import (
    AUTH_ERRORS,
    LOOKUP_ERRORS,
    AssetOut,
    AssetStatusOut,
    FeatureStateOut,
)
from mediamesh.store import AssetNotFoundError, Store

if TYPE_CHECKING:
    from mediamesh.orchestrator.interfaces.api.app import MeshHolder

__all__ = ["AssetRef", "lookup_asset", "router"]

AssetRef = Annotated[
    str, PathParam(description="An asset id, a unique id prefix (4+ hex digits) or a name it was registered under.")
]


def lookup_asset(store: Store, ref: str) -> str:
    """An asset id from an id, a unique prefix or a recorded name: the database alone answers, never a file
    on the server, so no answer depends on which paths exist here."""
    if not ref or len(ref) > 4096:
        raise AssetNotFoundError(f"no asset matches {ref[:80]!r}")
    return store.resolve_asset(ref)


def router(meshes: MeshHolder, reader: list[Any]) -> APIRouter:
    routes = APIRouter(tags=["assets"], dependencies=reader)

    @routes.get("/assets", response_model=list[AssetOut], responses=AUTH_ERRORS)
    def list_assets(
        limit: Annotated[int, Query(ge=1, le=1000, description="At most this many, oldest first.")] = 100,
        offset: Annotated[int, Query(ge=0, le=2**31, description="Skip this many.")] = 0,
    ) -> list[AssetOut]:
        """Every registered asset, oldest first."""
        records = meshes.get().store.assets(offset=offset, limit=limit)
        return [AssetOut(id=a.id, size=a.size, names=list(a.names), created_at=a.created_at) for a in records]

    # The status route comes before the bare asset route: an asset name may contain '/'.
    @routes.get("/assets/{asset:path}/status", response_model=AssetStatusOut, responses=LOOKUP_ERRORS)
    def status(asset: AssetRef) -> AssetStatusOut:
        """Each feature@version of the asset: stored, running, failed, waiting or missing, with timing and worker."""
        mesh = meshes.get()
        asset_id, states = mesh.status(lookup_asset(mesh.store, asset))
        return AssetStatusOut(
            asset=asset_id,
            names=list(mesh.store.asset(asset_id).names),
            features=[FeatureStateOut.model_validate(s, from_attributes=True) for s in states],
        )

    @routes.get("/assets/{asset:path}", response_model=AssetOut, responses=LOOKUP_ERRORS)
    def get_asset(asset: AssetRef) -> AssetOut:
        """One asset, by id, unique id prefix or name."""
        mesh = meshes.get()
        record = mesh.store.asset(lookup_asset(mesh.store, asset))
        return AssetOut(id=record.id, size=record.size, names=list(record.names), created_at=record.created_at)

    return routes
