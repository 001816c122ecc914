"""The search gateway: one request model, used by ``mediamesh search``, ``POST /search`` and ``Mesh.search``.

A request goes through three steps:

1. **Query processing.** Each data source encodes the query its own way, with the model (and fingerprint) that
   made the indexed values (``features/queries.py``): dialogue text goes to full-text search and to the sentence
   encoder; visual text to the CLIP text tower; an image through the video encoder's image path. A source that
   cannot encode the query says so in one line (``notes``) and the others still answer.
2. **Routing** to searchers, each behind the small :class:`Searcher` interface (the Postgres ones here; another
   engine is one more class).
3. **Post-processing**: reciprocal rank fusion across searchers, one hit per shot, filters (assets, title tags,
   time range), optional grouping by title, pagination; hits get their title's name and shot times.

Which version of an indexed feature is searched follows the readers' rule: a pinned version, else the promoted
one, else the registry's current one, else the newest indexed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mediamesh.features.errors import NotFoundError
from mediamesh.features.indexes import IndexSpec
from mediamesh.features.queries import (
    BadQueryError,
    QueryNotSupportedError,
    decode_image,
    image_query,
    text_query,
    visual_text_query,
)
from mediamesh.features.registry import Registry
from mediamesh.orchestrator.execution.indexing import find_index, indexes_of
from mediamesh.store import Store
from mediamesh.store.config import SearchSettings
from mediamesh.store.indexes import ShotMatch

__all__ = [
    "RRF_K",
    "Hit",
    "SearchAnswer",
    "SearchRequest",
    "Searcher",
    "UnknownIndexVersionError",
    "search",
]

#: Reciprocal rank fusion's constant (Cormack et al., 2009): a hit at rank r scores 1 / (RRF_K + r).
RRF_K = 60
Kind = Literal["text", "image", "similar", "time"]
Source = Literal["dialogue", "visual"]
_ALL_SOURCES: tuple[Source, ...] = ("dialogue", "visual")


class UnknownIndexVersionError(NotFoundError):
    """A pinned version that no index holds."""


class SearchRequest(BaseModel):
    """One search. ``kind`` says what the query is; the rest filter, shape and page the answer."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field(description="text: words or a description; image: a frame; similar: a shot; time: a range")
    text: str | None = Field(default=None, description="the query text (kind text)")
    sources: list[Source] = Field(
        default_factory=lambda: list(_ALL_SOURCES), description="where a text query looks (kind text)"
    )
    asset: str | None = Field(default=None, description="the shot's asset (kind similar, or image by reference)")
    shot: int | None = Field(default=None, ge=0, description="the shot, 0-based (kind similar)")
    start: float | None = Field(default=None, ge=0, description="seconds: the range (kind time) or a filter")
    end: float | None = Field(default=None, ge=0, description="seconds: the range's end, exclusive")
    top: int = Field(default=10, ge=1, description="hits per page (k)")
    offset: int = Field(default=0, ge=0, description="hits to skip (pagination)")
    assets: list[str] | None = Field(default=None, description="only these assets (ids, prefixes or names)")
    tags: list[str] | None = Field(default=None, description="only titles with every one of these tags")
    languages: list[str] | None = Field(default=None, description="only dialogue cues in these languages")
    versions: dict[str, str] = Field(default_factory=dict, description="feature -> version, pinned")
    group: bool = Field(default=False, description="hits grouped by title (titles in order of their best hit)")

    @model_validator(mode="after")
    def _check(self) -> SearchRequest:
        limit = SearchSettings().search_max_k
        if self.top + self.offset > limit:
            raise ValueError(f"top + offset is {self.top + self.offset}; a search returns at most {limit} hits")
        if self.kind == "text" and not (self.text or "").strip():
            raise ValueError("a text search needs non-empty text")
        if self.kind == "text" and not self.sources:
            raise ValueError("a text search needs at least one source: dialogue, visual")
        if self.kind == "similar" and (self.asset is None or self.shot is None):
            raise ValueError("a similar search needs an asset and a shot")
        if self.kind == "time" and (self.start is None or self.end is None):
            raise ValueError("a time search needs a start and an end")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"the time range ends ({self.end}) before it starts ({self.start})")
        return self


@dataclass
class Hit:
    """One shot in the answer, with every searcher that found it."""

    asset: str
    name: str | None
    shot: int
    start_time: float | None
    end_time: float | None
    score: float
    sources: list[str]
    cue: dict[str, Any] | None = None
    link: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "name": self.name,
            "shot": self.shot,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "score": round(self.score, 6),
            "sources": self.sources,
            "cue": self.cue,
            "link": self.link,
        }


@dataclass
class SearchAnswer:
    """The hits, the ``feature@version`` each searcher read, and a line per source that could not answer."""

    hits: list[Hit]
    versions: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"hits": [h.to_json() for h in self.hits], "versions": self.versions, "notes": self.notes}


class Searcher(Protocol):
    """One index behind one engine: answers ranked shots for an encoded query."""

    name: str

    def search(self, k: int, assets: Sequence[str] | None) -> list[ShotMatch]: ...


@dataclass
class VectorSearcher:
    """Nearest shots by cosine distance in a vector index (pgvector HNSW)."""

    name: str
    store: Store
    index: str
    version: str
    query: np.ndarray[Any, Any]
    model: str | None
    exclude: tuple[str, int] | None = None
    #: Matches below this similarity are no answer (dialogue by meaning: a word said nowhere finds nothing).
    min_score: float | None = None
    languages: Sequence[str] | None = None

    def search(self, k: int, assets: Sequence[str] | None) -> list[ShotMatch]:
        found = self.store.search_vectors(
            self.index,
            self.version,
            self.query,
            k,
            model_fingerprint=self.model,
            assets=assets,
            exclude=self.exclude,
            languages=self.languages,
        )
        return found if self.min_score is None else [m for m in found if m.score >= self.min_score]


@dataclass
class CueSearcher:
    """Cues whose words match, by full-text search."""

    name: str
    store: Store
    index: str
    version: str
    text: str
    languages: Sequence[str] | None

    def search(self, k: int, assets: Sequence[str] | None) -> list[ShotMatch]:
        return self.store.search_cues(self.index, self.version, self.text, k, assets=assets, languages=self.languages)


@dataclass
class TimeSearcher:
    """Shots overlapping a time range, by title then time."""

    name: str
    store: Store
    index: str
    version: str
    start: float
    end: float

    def search(self, k: int, assets: Sequence[str] | None) -> list[ShotMatch]:
        return self.store.search_times(self.index, self.version, self.start, self.end, k, assets=assets)


def search(
    store: Store, registry: Registry, request: SearchRequest, *, image: bytes | Path | None = None
) -> SearchAnswer:
    """Answer ``request``; ``image`` is the query picture of an image search (file bytes or a local path)."""
    indexes = indexes_of(registry)
    notes: list[str] = []
    versions: dict[str, str] = {}
    assets = _assets(store, request)
    searchers = _route(store, registry, indexes, request, image, versions, notes)
    if assets is not None and not assets:
        return SearchAnswer([], versions, notes)
    wanted = request.offset + request.top
    # Filters the index cannot apply itself (the time range) are applied after: ask for more.
    fetch = wanted * 4 if request.kind != "time" and request.start is not None else wanted
    ranked = [(s.name, s.search(fetch, assets)) for s in searchers]
    hits = _hydrate(store, _fuse(ranked))
    if request.kind != "time" and request.start is not None and request.end is not None:
        hits = [h for h in hits if _overlaps(h, request.start, request.end)]
    if request.group:
        hits = _grouped(hits)
    return SearchAnswer(hits[request.offset : wanted], versions, notes)


def _route(
    store: Store,
    registry: Registry,
    indexes: Sequence[IndexSpec],
    request: SearchRequest,
    image: bytes | Path | None,
    versions: dict[str, str],
    notes: list[str],
) -> list[Searcher]:
    def scope(name: str) -> tuple[IndexSpec, str] | None:
        spec = find_index(indexes, name)
        version = _version(store, registry, spec, request.versions.get(spec.feature))
        if version is None:
            notes.append(f"{name}: no {spec.feature} value is indexed yet")
            return None
        versions[name] = f"{spec.feature}@{version}"
        return spec, version

    def encoded(name: str, index: str, vector: np.ndarray[Any, Any], model: str, **extra: Any) -> None:
        found = scope(index)
        if found is None:
            return
        held = store.vector_models(index, found[1])
        if model not in held:
            made = ", ".join(str(m)[:12] for m in held) or "none"
            notes.append(
                f"{name}: {found[0].feature}@{found[1]} has no vectors made by the configured model {model[:12]} "
                f"(it holds vectors of {made}); backfill {found[0].feature} to search with this model"
            )
            return
        searchers.append(VectorSearcher(name, store, index, found[1], vector, model, **extra))

    searchers: list[Searcher] = []
    if request.kind == "text":
        text = (request.text or "").strip()
        if "dialogue" in request.sources:
            if (found := scope("dialogue")) is not None:
                searchers.append(CueSearcher("dialogue", store, "dialogue", found[1], text, request.languages))
            vector, model = text_query(text)
            floor = SearchSettings().dialogue_min_similarity
            encoded(
                "dialogue_semantic", "dialogue_semantic", vector, model, min_score=floor, languages=request.languages
            )
        if "visual" in request.sources:
            try:
                vector, model = visual_text_query(text)
            except QueryNotSupportedError as exc:
                if request.sources == ["visual"]:
                    raise  # the only source asked for cannot encode the query: refused, in one line
                notes.append(f"visual: {exc}")
            else:
                encoded("visual", "video", vector, model)
    elif request.kind == "image":
        if image is None and request.asset is not None and request.shot is not None:
            return _similar(store, request, scope, ("video",))
        if image is None:
            raise BadQueryError("an image search needs an image (a file, an upload, or an asset and a shot)")
        pixels = decode_image(image, name=str(image) if isinstance(image, Path) else "the uploaded image")
        vector, model = image_query(pixels)
        encoded("visual", "video", vector, model)
    elif request.kind == "similar":
        return _similar(store, request, scope, ("video", "fused"))
    else:
        assert request.start is not None
        assert request.end is not None
        if (found := scope("shots")) is not None:
            searchers.append(TimeSearcher("time", store, "shots", found[1], request.start, request.end))
    return searchers


def _similar(store: Store, request: SearchRequest, scope: Any, names: Sequence[str]) -> list[Searcher]:
    """Searchers for the shots most like ``request``'s (asset, shot), in each of ``names``, without itself."""
    assert request.asset is not None
    assert request.shot is not None
    asset = store.resolve_asset(request.asset)
    searchers: list[Searcher] = []
    for name in names:
        found = scope(name)
        if found is None:
            continue
        spec, version = found
        vector = store.vector_of(spec.name, version, asset, request.shot)
        if vector is None:
            raise NotFoundError(
                f"shot {request.shot} of asset {asset[:12]} has no vector in {spec.name} ({spec.feature}@{version})"
            )
        searchers.append(
            VectorSearcher(name, store, spec.name, version, vector[0], vector[1], exclude=(asset, request.shot))
        )
    return searchers


def _version(store: Store, registry: Registry, spec: IndexSpec, pinned: str | None) -> str | None:
    held = store.indexed_versions(spec.name)
    if pinned is not None:
        if pinned not in held:
            where = f"it holds {', '.join(held)}" if held else "it holds none yet"
            raise UnknownIndexVersionError(f"index {spec.name!r} holds no {spec.feature}@{pinned}; {where}")
        return pinned
    for candidate in (store.promoted_version(spec.feature), registry[spec.feature].version):
        if candidate is not None and candidate in held:
            return candidate
    return held[-1] if held else None


def _assets(store: Store, request: SearchRequest) -> list[str] | None:
    chosen = [store.resolve_asset(ref) for ref in request.assets] if request.assets is not None else None
    if request.tags:
        wanted = {tag.casefold() for tag in request.tags}
        pool = chosen if chosen is not None else [a.id for a in store.assets()]
        chosen = [a for a in pool if wanted <= {t.casefold() for t in store.title_metadata(a).tags}]
    return chosen


def _fuse(ranked: Sequence[tuple[str, list[ShotMatch]]]) -> list[tuple[ShotMatch, float, list[str]]]:
    """Reciprocal rank fusion: one entry per (asset, shot), scored by the sum of 1 / (RRF_K + rank)."""
    fused: dict[tuple[str, int], tuple[ShotMatch, float, list[str]]] = {}
    for name, matches in ranked:
        seen: set[tuple[str, int]] = set()
        rank = 0
        for match in matches:
            key = (match.asset_id, match.shot)
            if key in seen:  # one shot twice in one searcher (two values): its best rank counts
                continue
            seen.add(key)
            rank += 1
            first, score, sources = fused.get(key, (match, 0.0, []))
            fused[key] = (
                first if first.cue is not None or match.cue is None else match,
                score + 1 / (RRF_K + rank),
                [*sources, name],
            )
    return sorted(fused.values(), key=lambda item: (-item[1], item[0].asset_id, item[0].shot))


def _hydrate(store: Store, fused: list[tuple[ShotMatch, float, list[str]]]) -> list[Hit]:
    times = store.shot_times((m.shots_key, m.shot) for m, _, _ in fused if m.shots_key is not None)
    names: dict[str, str | None] = {}
    hits = []
    for match, score, sources in fused:
        if match.asset_id not in names:
            record = store.asset(match.asset_id)
            names[match.asset_id] = record.names[0] if record.names else None
        start, end = times.get((match.shots_key or "", match.shot), (None, None))
        cue = match.cue
        hits.append(
            Hit(
                asset=match.asset_id,
                name=names[match.asset_id],
                shot=match.shot,
                start_time=start,
                end_time=end,
                score=score,
                sources=sources,
                cue={"text": cue.text, "start": cue.start, "end": cue.end, "language": cue.language} if cue else None,
                link=f"/assets/{match.asset_id}/features/shots",
            )
        )
    return hits


def _overlaps(hit: Hit, start: float, end: float) -> bool:
    return hit.start_time is not None and hit.end_time is not None and hit.start_time < end and hit.end_time > start


def _grouped(hits: list[Hit]) -> list[Hit]:
    order: dict[str, int] = {}
    for i, hit in enumerate(hits):
        order.setdefault(hit.asset, i)
    return sorted(hits, key=lambda h: order[h.asset])
