"""The shot browser's routes: pages rendered from Jinja2 templates, and the pictures and media they show.

Reads are guarded as the API guards them: with open reads the pages are public; otherwise the API token is asked
for once (``/login``) and a session cookie derived from it is kept, since a browser cannot add a bearer header to
an ``<img>`` or a ``<video>``. Tiles come from each title's one sprite sheet (CSS ``background-position``), so a
page of a 2,000-shot title is one picture request. Values are immutable, so what is drawn from one is cached by
its key.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from PIL import Image
from starlette.concurrency import run_in_threadpool

from mediamesh.features.errors import MediameshError, NotFoundError
from mediamesh.features.values import DedupMap, EncodedMedia, MatchCuts, ShotTable, ShotThumbnails, TimedText
from mediamesh.orchestrator.interfaces import pictures, reads
from mediamesh.orchestrator.mesh import FeatureState, Mesh
from mediamesh.store import AssetRecord, ValueRecord

if TYPE_CHECKING:
    from mediamesh.orchestrator.interfaces.api.app import ApiSettings, MeshHolder

__all__ = ["STATIC_PATH", "mount"]

STATIC_PATH = "/ui-static"
COOKIE = "mediamesh_session"
_HERE = Path(__file__).parent
_templates = Jinja2Templates(directory=_HERE / "templates")
_PAGE_SIZE = 100
_SIMILAR = 6
#: The largest picture the search page takes (as ``POST /search/image``).
_MAX_IMAGE_BYTES = 20_000_000


def mount(app: FastAPI, meshes: MeshHolder, settings: ApiSettings) -> None:
    """Add the pages at ``/`` and their script and styles at ``STATIC_PATH``."""
    app.mount(STATIC_PATH, StaticFiles(directory=_HERE / "static"), name="ui-static")
    app.include_router(_router(meshes, settings))


class _Drawn:
    """Pictures drawn from immutable values, by value key and what was asked: a small LRU."""

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], draw: Callable[[], bytes]) -> bytes:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        data = draw()  # outside the lock: two first requests may both draw, and store the same bytes
        with self._lock:
            self._items[key] = data
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return data


def _router(meshes: MeshHolder, settings: ApiSettings) -> APIRouter:
    session = _session_value(settings)

    def page_access(request: Request) -> None:
        if settings.open_reads:
            return
        if session is None:
            raise HTTPException(503, "no API token configured: set MEDIAMESH_API_TOKEN")
        given = request.cookies.get(COOKIE, "")
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            given = _derive(bearer[7:].strip())
        if not hmac.compare_digest(given.encode(), session.encode()):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(303, "sign in first", headers={"Location": f"/login?next={quote(target, safe='')}"})

    guarded = APIRouter(include_in_schema=False, dependencies=[Depends(page_access)])
    public = APIRouter(include_in_schema=False)
    drawn = _Drawn()

    @public.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        return _templates.TemplateResponse(request, "login.html", {"next": _local(next), "error": None})

    @public.post("/login", response_class=HTMLResponse)
    def login(request: Request, token: Annotated[str, Form()], next: Annotated[str, Form()] = "/") -> Response:
        if session is None:
            raise HTTPException(503, "no API token configured: set MEDIAMESH_API_TOKEN")
        if not hmac.compare_digest(_derive(token.strip()).encode(), session.encode()):
            context = {"next": _local(next), "error": "That is not the token."}
            return _templates.TemplateResponse(request, "login.html", context, status_code=403)
        response = RedirectResponse(_local(next), status_code=303)
        secure = request.url.scheme == "https"
        response.set_cookie(COOKIE, session, httponly=True, samesite="strict", secure=secure, path="/")
        return response

    @public.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @guarded.get("/", response_class=HTMLResponse)
    def assets_page(request: Request, offset: Annotated[int, Query(ge=0)] = 0) -> Response:
        mesh = meshes.get()
        rows = [_asset_row(mesh, record) for record in mesh.store.assets(offset=offset, limit=_PAGE_SIZE)]
        context = {"rows": rows, "offset": offset, "total": mesh.store.count_assets(), "page": _PAGE_SIZE}
        return _templates.TemplateResponse(request, "assets.html", context)

    @guarded.get("/title/{asset}", response_class=HTMLResponse)
    def title_page(request: Request, asset: str) -> Response:
        mesh = meshes.get()
        title = _title(mesh, mesh.store.resolve_asset(asset))
        return _templates.TemplateResponse(request, "title.html", {"t": title, "margin": pictures.TIMELINE_MARGIN})

    @guarded.get("/title/{asset}/shot/{shot}", response_class=HTMLResponse)
    def shot_panel(request: Request, asset: str, shot: int) -> Response:
        mesh = meshes.get()
        title = _title(mesh, mesh.store.resolve_asset(asset))
        if title.shots is None or not 0 <= shot < len(title.shots):
            raise HTTPException(404, f"{asset[:12]} has no shot {shot}")
        return _templates.TemplateResponse(request, "shot.html", _shot_context(mesh, title, shot))

    @guarded.get("/title/{asset}/sprite.jpg")
    def sprite(asset: str) -> Response:
        mesh = meshes.get()
        record = _find(mesh, mesh.store.resolve_asset(asset), "thumbnails")
        if record is None:
            raise HTTPException(404, f"{asset[:12]} has no thumbnails yet")
        value = reads.load(mesh.store, mesh.registry, record)
        return FileResponse(value.path, media_type="image/jpeg", headers=_immutable(record))

    @guarded.get("/title/{asset}/tile/{shot}.jpg")
    def tile(asset: str, shot: int) -> Response:
        mesh = meshes.get()
        record = _find(mesh, mesh.store.resolve_asset(asset), "thumbnails")
        if record is None:
            raise HTTPException(404, f"{asset[:12]} has no thumbnails yet")
        layout = _layout(record)
        if not 0 <= shot < len(layout.tiles):
            raise HTTPException(404, f"{asset[:12]} has no shot {shot}")

        def draw() -> bytes:
            value = reads.load(mesh.store, mesh.registry, record)
            with Image.open(value.path) as sheet:
                return _jpeg(sheet.convert("RGB").crop(layout.box(shot)))

        data = drawn.get((record.key, "tile", layout.tiles[shot]), draw)
        return Response(data, media_type="image/jpeg", headers=_immutable(record))

    @guarded.get("/title/{asset}/timeline.png")
    def timeline_png(asset: str, width: Annotated[int, Query(ge=200, le=4000)] = 1200) -> Response:
        mesh = meshes.get()
        asset_id = mesh.store.resolve_asset(asset)
        record = _find(mesh, asset_id, "thumbnails")
        if record is None:
            raise HTTPException(404, f"{asset[:12]} has no thumbnails yet")

        def draw() -> bytes:
            # The sprite's key names the shots and dedup values it was made from: the picture is the key's.
            value, shots, groups = (mesh.read(asset_id, name)[1] for name in ("thumbnails", "shots", "dedup"))
            out = io.BytesIO()
            pictures.timeline(value, shots, groups, width=width).save(out, format="PNG")
            return out.getvalue()

        data = drawn.get((record.key, "timeline", width), draw)
        return Response(data, media_type="image/png", headers=_immutable(record))

    @guarded.get("/title/{asset}/graph.svg")
    def graph_svg(asset: str) -> Response:
        mesh = meshes.get()
        asset_id = mesh.store.resolve_asset(asset)
        _id, states = mesh.status(asset_id)
        current: dict[str, FeatureState] = {}
        for state in states:
            current.setdefault(state.feature, state)
        graph = pictures.feature_graph(
            mesh.registry, {n: s.state for n, s in current.items()}, {n: s.version for n, s in current.items()}
        )
        return Response(pictures.graph_svg(graph, asset_id[:12]), media_type="image/svg+xml")

    @guarded.get("/title/{asset}/video.mp4")
    def video(asset: str) -> Response:
        # FileResponse answers Range requests, which a <video> needs to seek. A large encode is not re-hashed
        # here (a range cannot be checked against the whole file's hash); `mediamesh verify` scrubs it.
        mesh = meshes.get()
        record = _find(mesh, mesh.store.resolve_asset(asset), "encode")
        if record is None:
            raise HTTPException(404, f"{asset[:12]} has no encode yet")
        value = mesh.store.load(record, EncodedMedia, verify=False)
        return FileResponse(value.path, media_type="video/mp4", headers=_immutable(record))

    @guarded.get("/find", response_class=HTMLResponse)
    def search_page(
        request: Request,
        q: Annotated[str, Query(max_length=1000)] = "",
        source: Annotated[list[str] | None, Query()] = None,
    ) -> Response:
        mesh = meshes.get()
        sources = [s for s in (source or ["dialogue", "visual"]) if s in ("dialogue", "visual")] or ["dialogue"]
        context: dict[str, Any] = {"q": q, "sources": sources, "hits": [], "notes": [], "searched": bool(q.strip())}
        if q.strip():
            context.update(_answer(mesh, {"kind": "text", "text": q, "sources": sources, "top": 24}))
        return _templates.TemplateResponse(request, "search.html", context)

    @guarded.post("/find", response_class=HTMLResponse)
    async def image_search(request: Request, image: Annotated[UploadFile, File()]) -> Response:
        data = await image.read(_MAX_IMAGE_BYTES + 1)
        context: dict[str, Any] = {"q": "", "sources": ["dialogue", "visual"], "hits": [], "notes": []}
        context["searched"] = True
        context["image_name"] = image.filename or "the picture"
        if len(data) > _MAX_IMAGE_BYTES:
            context["notes"] = [f"the picture is over {_MAX_IMAGE_BYTES} bytes"]
        else:
            mesh = meshes.get()
            context.update(await run_in_threadpool(_answer, mesh, {"kind": "image", "top": 24}, data))
        return _templates.TemplateResponse(request, "search.html", context)

    @guarded.get("/feature/{name}", response_class=HTMLResponse)
    def feature_page(request: Request, name: str) -> Response:
        mesh = meshes.get()
        spec = mesh.registry.get(name)
        entries = mesh.store.catalogue(name)
        if spec is None and not entries:
            raise HTTPException(404, f"no feature named {name!r}")
        context = {
            "name": name,
            "spec": spec,
            "params": dict(spec.params) if spec is not None else {},
            "doc": ((spec.fn.__doc__ or "").strip().splitlines() or [""])[0] if spec is not None else "",
            "entries": entries,
            "promoted": mesh.store.promoted_version(name),
            "assets": mesh.store.count_assets(),
            "failures": _failures(mesh, name),
            "prefect_ui": _prefect_ui(),
        }
        return _templates.TemplateResponse(request, "feature.html", context)

    routes = APIRouter()
    routes.include_router(public)
    routes.include_router(guarded)
    return routes


@dataclass
class Title:
    """What a title page shows: the asset, its values where stored (None where not), and its features' states."""

    asset: AssetRecord
    encode: EncodedMedia | None = None
    shots: ShotTable | None = None
    dedup: DedupMap | None = None
    thumbs: ShotThumbnails | None = None
    text: TimedText | None = None
    states: list[FeatureState] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.asset.id

    @property
    def name(self) -> str:
        return Path(self.asset.names[0]).name if self.asset.names else self.asset.id[:12]

    @property
    def duration(self) -> float:
        if self.shots is not None and self.shots.shots:
            return self.shots.shots[-1].end_time
        return self.encode.duration if self.encode is not None else 0.0

    def group(self, shot: int) -> list[int]:
        """The shots that repeat one another with ``shot`` (itself included), in order."""
        if self.dedup is None:
            return [shot]
        root = self.dedup.representative[shot]
        return [i for i, r in enumerate(self.dedup.representative) if r == root]


def _title(mesh: Mesh, asset_id: str) -> Title:
    title = Title(mesh.store.asset(asset_id))
    encode = _find(mesh, asset_id, "encode")
    if encode is not None:
        title.encode = EncodedMedia.from_file(Path(), encode.meta)  # the metadata is in the row: no file needed
    thumbs = _find(mesh, asset_id, "thumbnails")
    title.thumbs = _layout(thumbs) if thumbs is not None else None
    for name in ("shots", "dedup", "timed_text"):
        record = _find(mesh, asset_id, name)
        value = reads.load(mesh.store, mesh.registry, record) if record is not None else None
        if isinstance(value, ShotTable):
            title.shots = value
        elif isinstance(value, DedupMap):
            title.dedup = value
        elif isinstance(value, TimedText):
            title.text = value
    _id, title.states = mesh.status(asset_id)
    return title


def _asset_row(mesh: Mesh, record: AssetRecord) -> dict[str, Any]:
    title = _title(mesh, record.id)
    states: dict[str, str] = {}
    for each in title.states:
        states.setdefault(each.feature, each.state)  # the current value's state comes before other versions'
    return {"t": title, "states": states}


def _shot_context(mesh: Mesh, title: Title, shot: int) -> dict[str, Any]:
    shots = title.shots.shots if title.shots is not None else ()
    record = shots[shot]
    cues = [title.text.cues[i] for i in title.text.per_shot[shot]] if title.text is not None else []
    similar: dict[str, Any] = {"hits": [], "notes": []}
    try:
        found = mesh.search(kind="similar", asset=title.id, shot=shot, top=_SIMILAR + 1)
        hits = [h for h in found.hits if (h.asset, h.shot) != (title.id, shot)][:_SIMILAR]
        similar = {"hits": _hits(mesh, [h.to_json() for h in hits]), "notes": found.notes}
    except MediameshError as exc:
        similar["notes"] = [str(exc)]
    return {
        "t": title,
        "shot": record,
        "cues": cues,
        "group": title.group(shot),
        "similar": similar,
        "cuts": _match_cuts(mesh, title, shot),
    }


def _match_cuts(mesh: Mesh, title: Title, shot: int) -> list[dict[str, Any]]:
    """The stored match cuts (both flavours) that end or start at ``shot``: the other shot and the score."""
    found: list[dict[str, Any]] = []
    for name in ("frame_match_cuts", "motion_match_cuts"):
        record = _find(mesh, title.id, name)
        value = reads.load(mesh.store, mesh.registry, record) if record is not None else None
        if not isinstance(value, MatchCuts):
            continue
        for pair in value.pairs:
            if shot in (pair.a, pair.b):
                other = pair.b if pair.a == shot else pair.a
                direction = "into" if pair.a == shot else "from"
                tile = _tile(title.thumbs, title.id, other)
                found.append(
                    {
                        "flavour": value.flavour,
                        "other": other,
                        "direction": direction,
                        "score": pair.score,
                        "tile": tile,
                    }
                )
    return found


def _answer(mesh: Mesh, fields: dict[str, Any], image: bytes | None = None) -> dict[str, Any]:
    try:
        found = mesh.search(image=image, **fields)
    except (MediameshError, ValueError) as exc:
        return {"hits": [], "notes": [str(exc)]}
    return {"hits": _hits(mesh, [h.to_json() for h in found.hits]), "notes": found.notes}


def _hits(mesh: Mesh, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The gateway's hits, each with its title's name and the place of its tile in that title's sprite."""
    layouts: dict[str, ShotThumbnails | None] = {}
    for hit in hits:
        if hit["asset"] not in layouts:
            record = _find(mesh, hit["asset"], "thumbnails")
            layouts[hit["asset"]] = _layout(record) if record is not None else None
        hit["title"] = Path(hit["name"]).name if hit.get("name") else hit["asset"][:12]
        hit["tile"] = _tile(layouts[hit["asset"]], hit["asset"], hit["shot"])
    return hits


def _tile(layout: ShotThumbnails | None, asset: str, shot: int) -> dict[str, Any] | None:
    """Where a shot's tile is: the sprite's URL and the tile's box, for a CSS background."""
    if layout is None or not 0 <= shot < len(layout.tiles):
        return None
    left, top, right, bottom = layout.box(shot)
    return {"sprite": f"/title/{asset}/sprite.jpg", "x": left, "y": top, "w": right - left, "h": bottom - top}


def _failures(mesh: Mesh, name: str, limit_assets: int = 500) -> list[dict[str, Any]]:
    """The latest failed attempt of each value of ``name`` that is still not stored, over the first assets."""
    failed: dict[str, Any] = {}
    for record in mesh.store.assets(limit=limit_assets):
        for attempt in mesh.store.attempts_for(record.id):
            if attempt.feature == name:
                failed.setdefault(attempt.value_key, attempt)
    stored = mesh.store.stored_keys(failed)
    return [
        {"attempt": a, "asset": a.asset_id}
        for key, a in sorted(failed.items(), key=lambda item: item[1].finished_at, reverse=True)
        if key not in stored
    ]


def _find(mesh: Mesh, asset_id: str, feature: str) -> ValueRecord | None:
    """The record a reader of ``feature`` gets, or None where there is none (or no such feature)."""
    try:
        record, _current = reads.find(mesh.store, mesh.registry, asset_id, feature)
    except NotFoundError:
        return None
    return record


def _layout(record: ValueRecord) -> ShotThumbnails:
    """A sprite's tile layout, from its row's metadata alone."""
    return ShotThumbnails.from_file(Path(), record.meta)


def _immutable(record: ValueRecord) -> dict[str, str]:
    """A value never changes under its key, but a page may come to read another key: cache, and revalidate."""
    return {"Cache-Control": "private, max-age=300", "ETag": f'"{record.key}"'}


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _prefect_ui() -> str | None:
    """The Prefect UI's runs page, from ``PREFECT_UI_URL`` or the API's URL (the UI is served beside the API)."""
    ui = os.environ.get("PREFECT_UI_URL") or os.environ.get("PREFECT_API_URL", "").removesuffix("/").removesuffix(
        "/api"
    )
    return f"{ui}/runs" if ui else None


def _session_value(settings: ApiSettings) -> str | None:
    return _derive(settings.token.get_secret_value()) if settings.token is not None else None


def _derive(token: str) -> str:
    """The session cookie for a token: a keyed hash of it, so the cookie is not the token itself."""
    return hmac.new(token.encode(), b"mediamesh shot browser session", hashlib.sha256).hexdigest()


def _local(target: str) -> str:
    """``target`` if it is a path on this service, else ``/``: a login never sends anyone elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"
