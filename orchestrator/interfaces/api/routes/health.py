"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException

from mediamesh.orchestrator.interfaces.api.models import ErrorOut, HealthOut
from mediamesh.store import Store

if TYPE_CHECKING:
    from mediamesh.orchestrator.interfaces.api.app import MeshHolder

__all__ = ["router"]

log = logging.getLogger("mediamesh.api")


def router(meshes: MeshHolder) -> APIRouter:
    routes = APIRouter(tags=["service"])

    @routes.get("/health", response_model=HealthOut)
    def health() -> HealthOut:
        """Liveness: the process answers."""
        return HealthOut(status="ok")

    @routes.get("/ready", response_model=HealthOut, responses={503: {"model": ErrorOut}})
    def ready() -> HealthOut:
        """Readiness: the database answers a trivial query."""
        try:
            _ping(meshes.get().store)
        except Exception as exc:  # any failure means not ready; the reason goes to the log, not the caller
            log.warning("not ready: %s: %s", type(exc).__name__, exc)
            raise HTTPException(503, "the database is unreachable") from None
        return HealthOut(status="ready")

    return routes


def _ping(store: Store) -> None:
    """One trivial query: a lookup of a key no value has."""
    store.stored_keys(["0" * 64])
