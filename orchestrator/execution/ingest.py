"""One ingest path: register a local file or a landing object, with its sidecars, computing nothing.

Every trigger registers through :func:`register`: ``mediamesh ingest`` and ``Mesh.ingest`` (files), the HTTP
API's S3 events (landing objects) and ``mediamesh watch`` (either). Each time it hashes the bytes (a landing
object's as they download), records the source's name (a file by its absolute path, an object by its
``s3://bucket/key`` URI) and attaches the subtitle and title sidecars found beside it. A sidecar registered
by itself (its event came after its video's) attaches to the video it goes with, if that is registered;
otherwise it waits, and the video's own registration picks it up.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from mediamesh.features.errors import InputFileError, MediameshError
from mediamesh.features.spec import SUBTITLES
from mediamesh.features.values import TitleMetadata
from mediamesh.orchestrator.execution.sidecars import (
    is_sidecar,
    parse_title_sidecar,
    sidecar_stems,
    subtitle_language,
    subtitle_sidecars,
    title_sidecar,
)
from mediamesh.store import Store
from mediamesh.store.landing import LandingObject, LandingReader, NoEndpointError

__all__ = ["IngestResult", "LandingObject", "LocalFile", "Source", "register"]


@dataclass(frozen=True)
class LocalFile:
    """A file on this machine, with subtitle files and title metadata given beside its sidecars."""

    path: Path
    subtitles: tuple[Path, ...] = ()
    title: TitleMetadata | None = None

    @property
    def name(self) -> str:
        """The name an asset made of it is registered under: its absolute path."""
        return str(self.path.resolve())


Source = LocalFile | LandingObject


@dataclass
class IngestResult:
    """What one ingested input led to; ``ok`` only when nothing failed."""

    path: str
    asset: str | None = None
    computed: int = 0
    reused: int = 0
    failed: int = 0
    missing: int = 0
    queued: int = 0
    errors: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.asset is not None and not self.errors and self.failed == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "asset": self.asset,
            "computed": self.computed,
            "reused": self.reused,
            "failed": self.failed,
            "queued": self.queued,
            "errors": self.errors,
            **({"detail": self.detail} if self.detail else {}),
        }


def register(store: Store, source: Source, *, landing: LandingReader | None = None) -> IngestResult:
    """Register ``source`` under its name with its sidecars; an error is kept in the result, naming the input.

    Errors that retrying can help with (the store or the landing bucket unreachable) are raised instead.
    """
    place: _Place = _Folder() if isinstance(source, LocalFile) else _Bucket(landing, source.bucket)
    shown = str(source.path) if isinstance(source, LocalFile) else source.name
    result = IngestResult(path=shown)
    with tempfile.TemporaryDirectory(prefix="mediamesh-ingest-") as tmp:
        scratch = Path(tmp)
        try:
            if is_sidecar(source.name) and not (isinstance(source, LocalFile) and (source.subtitles or source.title)):
                _attach_to_videos(store, place, source.name, result, scratch)
                return result
            path, sha256 = place.fetch(source.name, scratch)
            asset, new = store.register_asset(path, name=source.name, sha256=sha256)
        except (MediameshError, OSError) as exc:
            _keep(result, shown, exc)
            return result
        result.asset = asset.id
        result.detail = "new bytes" if new else "known bytes; the name is recorded"
        siblings = place.siblings(source.name)
        subtitles = subtitle_sidecars(source.name, siblings)
        if isinstance(source, LocalFile):
            subtitles += [(str(p), subtitle_language(p)) for p in source.subtitles]
        for name, language in subtitles:
            _attach(store, place, asset.id, name, result, scratch, subtitle_language=language)
        given = source.title if isinstance(source, LocalFile) else None
        sidecar = title_sidecar(source.name, siblings)
        if sidecar is not None or given is not None:
            _attach(store, place, asset.id, sidecar, result, scratch, title=given)
    return result


class _Place(Protocol):
    """Where a source and its sidecars are: a folder, or a landing bucket."""

    def fetch(self, name: str, into: Path) -> tuple[Path, str | None]:
        """A local copy of ``name`` (the file itself, for a folder) and its SHA-256 when known."""
        ...

    def siblings(self, name: str) -> list[str]:
        """Names beside ``name`` that may go with it."""
        ...


class _Folder:
    def fetch(self, name: str, into: Path) -> tuple[Path, str | None]:
        path = Path(name)
        if not path.exists():
            raise InputFileError("no such file")
        if not path.is_file():
            raise InputFileError("not a regular file")
        if not os.access(path, os.R_OK):
            raise InputFileError("permission denied")
        return path, None

    def siblings(self, name: str) -> list[str]:
        try:
            return [str(p) for p in Path(name).parent.iterdir() if p.is_file()]
        except OSError:
            return []


@dataclass
class _Bucket:
    landing: LandingReader | None
    bucket: str

    def fetch(self, name: str, into: Path) -> tuple[Path, str | None]:
        path = into / f"object-{len(list(into.iterdir()))}"
        return path, self._reader().download(self.bucket, _key(name), path)

    def siblings(self, name: str) -> list[str]:
        key = PurePosixPath(_key(name))
        stem = min(sidecar_stems(name), key=len) if is_sidecar(name) else key.stem
        prefix = str(key.parent / stem) if str(key.parent) != "." else stem
        return [o.name for o in self._reader().objects(self.bucket, prefix)]

    def _reader(self) -> LandingReader:
        if self.landing is None:
            from mediamesh.store import StoreSettings

            self.landing = LandingReader(StoreSettings())
        return self.landing


def _key(name: str) -> str:
    return name.removeprefix("s3://").split("/", 1)[1]


def _attach_to_videos(store: Store, place: _Place, sidecar: str, result: IngestResult, scratch: Path) -> None:
    """Attach a sidecar registered by itself to each registered video it goes with."""
    path = PurePosixPath(sidecar)
    stems = sidecar_stems(sidecar)
    videos = [
        name
        for name in place.siblings(sidecar)
        if not is_sidecar(name) and PurePosixPath(name).parent == path.parent and PurePosixPath(name).stem in stems
    ]
    for video, asset in store.assets_named(videos).items():
        result.asset = result.asset or asset
        result.detail = f"a sidecar, attached to {PurePosixPath(video).name}"
        if title_sidecar(video, [sidecar]) is not None:
            _attach(store, place, asset, sidecar, result, scratch)
        for name, language in subtitle_sidecars(video, [sidecar]):
            _attach(store, place, asset, name, result, scratch, subtitle_language=language)
    if result.asset is None and not result.errors:
        result.detail = "a sidecar whose video is not registered yet: it is attached when the video is"


def _attach(
    store: Store,
    place: _Place,
    asset: str,
    name: str | None,
    result: IngestResult,
    scratch: Path,
    *,
    subtitle_language: str | None = None,
    title: TitleMetadata | None = None,
) -> None:
    """Attach the subtitle or title sidecar ``name`` (or only the given ``title``); errors are kept."""
    try:
        if name is not None and PurePosixPath(name).suffix.lower() != ".json":
            path, _ = place.fetch(name, scratch)
            store.attach(asset, SUBTITLES, path, name=PurePosixPath(name).name, language=subtitle_language)
            return
        merged = TitleMetadata()
        if name is not None:
            path, _ = place.fetch(name, scratch)
            merged = parse_title_sidecar(path, PurePosixPath(name).name)
        if title is not None:
            merged = TitleMetadata(
                title=title.title or merged.title,
                synopsis=title.synopsis or merged.synopsis,
                tags=title.tags or merged.tags,
            )
        shown = PurePosixPath(name).name if name is not None and title is None else "ingest options"
        store.set_title_metadata(asset, merged, name=shown)
    except (MediameshError, OSError) as exc:
        _keep(result, name or "title metadata", exc)


def _keep(result: IngestResult, name: str, exc: MediameshError | OSError) -> None:
    """Keep an error about this input on its result; raise one about the service (retrying can help, or the
    landing endpoint is not configured at all)."""
    if isinstance(exc, NoEndpointError) or (isinstance(exc, MediameshError) and exc.retryable):
        raise exc
    message = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
    result.errors.append(message if message.startswith(name) else f"{name}: {message}")


def registered(results: Sequence[IngestResult]) -> dict[str, str]:
    """Each registered asset with the first name it came in under."""
    names: dict[str, str] = {}
    for result in results:
        if result.asset is not None:
            names.setdefault(result.asset, result.path)
    return names
