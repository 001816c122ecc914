"""Search routes: ``POST /search`` (the gateway's request model as JSON) and ``POST /search/image`` (a picture
uploaded as multipart, with the rest of the request as a JSON form field). Both answer the gateway's
``{"hits", "versions", "notes"}``; ``interfaces/search.py`` does the work, as it does for the CLI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from mediamesh.orchestrator.interfaces.api.models import LOOKUP_ERRORS
from mediamesh.orchestrator.interfaces.search import SearchRequest

if TYPE_CHECKING:
    from mediamesh.orchestrator.interfaces.api.app import MeshHolder

__all__ = ["CueOut", "HitOut", "SearchOut", "router"]

#: The largest picture ``POST /search/image`` takes.
MAX_IMAGE_BYTES = 20_000_000


class CueOut(BaseModel):
    text: str
    start: float
    end: float
    language: str | None


class HitOut(BaseModel):
    asset: str = Field(description="the asset id")
    name: str | None = Field(description="the name it was first ingested under")
    shot: int = Field(description="0-based shot index")
    start_time: float | None
    end_time: float | None
    score: float = Field(description="reciprocal rank fusion over the searchers that found it")
    sources: list[str] = Field(description="the searchers that found it: dialogue, dialogue_semantic, visual, ...")
    cue: CueOut | None = Field(description="for dialogue hits, the cue whose words matched")
    link: str = Field(description="where to read the shot's value")


class SearchOut(BaseModel):
    hits: list[HitOut]
    versions: dict[str, str] = Field(description="index -> the feature@version it searched")
    notes: list[str] = Field(description="one line per source that could not answer")


def router(meshes: MeshHolder, reader: list[Any]) -> APIRouter:
    routes = APIRouter(tags=["search"], dependencies=reader)

    @routes.post("/search", response_model=SearchOut, responses=LOOKUP_ERRORS)
    def search(request: SearchRequest) -> dict[str, Any]:
        """Search dialogue and visuals by text, shots similar to a shot (or to an image of one: kind image with an
        asset and a shot), or shots in a time range; filters, grouping by title and pages as the request says."""
        mesh = meshes.get()
        return mesh.search(_resolved(mesh, request)).to_json()

    @routes.post("/search/image", response_model=SearchOut, responses=LOOKUP_ERRORS)
    async def search_image(
        image: Annotated[UploadFile, File(description="The picture: JPEG, PNG, WebP, ...")],
        request: Annotated[
            str, Form(description='The rest of the request as JSON, e.g. {"top": 5, "assets": ["..."]}')
        ] = "{}",
    ) -> dict[str, Any]:
        """Reverse shot search: the shots whose video embedding is nearest the uploaded picture's."""
        data = await image.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise RequestValidationError(
                [{"loc": ("body", "image"), "msg": f"the image is over {MAX_IMAGE_BYTES} bytes", "type": "value_error"}]
            )
        try:
            fields = json.loads(request or "{}")
            if not isinstance(fields, dict):
                raise ValueError("the request field is a JSON object")
            wanted = SearchRequest(**{**fields, "kind": "image"})
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        except ValueError as exc:
            raise RequestValidationError(
                [{"loc": ("body", "request"), "msg": str(exc), "type": "value_error"}]
            ) from None
        mesh = meshes.get()
        answer = await run_in_threadpool(mesh.search, _resolved(mesh, wanted), image=data)
        return answer.to_json()

    return routes


def _resolved(mesh: Any, request: SearchRequest) -> SearchRequest:
    """The request with its asset references made ids (a name, a prefix), as every other route takes them."""
    changes: dict[str, Any] = {}
    if request.asset is not None:
        changes["asset"] = mesh.store.resolve_asset(request.asset)
    if request.assets is not None:
        changes["assets"] = [mesh.store.resolve_asset(a) for a in request.assets]
    return request.model_copy(update=changes) if changes else request
