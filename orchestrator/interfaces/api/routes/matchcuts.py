"""``POST /matchcuts``: a title's best match cuts, or the best across any set of titles, as
``mediamesh matchcuts --json`` prints them (``interfaces/matchcuts.py`` finds them for both)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from mediamesh.features.errors import DefinitionError
from mediamesh.orchestrator.interfaces.api.models import LOOKUP_ERRORS
from mediamesh.orchestrator.interfaces.matchcuts import find_match_cuts

if TYPE_CHECKING:
    from mediamesh.orchestrator.interfaces.api.app import MeshHolder

__all__ = ["MatchCutsOut", "MatchCutsRequest", "router"]


class MatchCutsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assets: list[str] = Field(min_length=1, max_length=1000, description="One title (its pairs) or several")
    flavour: Literal["frame", "motion"] = "frame"
    top: int = Field(default=10, ge=1, le=1000)


class SideOut(BaseModel):
    asset: str
    name: str
    shot: int
    start_time: float
    end_time: float


class PairOut(BaseModel):
    a: SideOut = Field(description="the shot whose end is matched")
    b: SideOut = Field(description="the shot whose start is matched")
    score: float
    flavour: str


class MatchCutsOut(BaseModel):
    pairs: list[PairOut]
    versions: dict[str, str]


def router(meshes: MeshHolder, reader: list[Any]) -> APIRouter:
    routes = APIRouter(tags=["match cutting"], dependencies=reader)

    @routes.post("/matchcuts", response_model=MatchCutsOut, responses=LOOKUP_ERRORS)
    async def matchcuts(request: MatchCutsRequest) -> dict[str, Any]:
        """With one asset, its stored best pairs; with several, only pairs across them, found at query time.
        Whatever they need is computed first (this can take a while for titles never matched before)."""
        mesh = meshes.get()
        ids = list(dict.fromkeys(mesh.store.resolve_asset(a) for a in request.assets))
        if len(ids) == 1:
            k = int(mesh.registry[f"{request.flavour}_match_cuts"].params["k"])
            if request.top > k:
                raise DefinitionError(f"a title keeps its best {k} {request.flavour} match cuts; ask for top <= {k}")
        pairs, versions = await run_in_threadpool(find_match_cuts, mesh, ids, request.flavour, request.top)
        return {"pairs": [p.to_json() for p in pairs], "versions": versions}

    return routes
