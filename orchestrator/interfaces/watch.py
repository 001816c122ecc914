"""``mediamesh watch``: reconcile a landing bucket prefix or a local directory with the store, periodically.

Events are at-least-once and can be lost (a webhook down, a queue purged). A watcher lists what is there,
registers what the store has never seen under that name (content hashing makes a repeat harmless), and
hands every asset found there whose values are missing to the dispatcher: the work an event missed, and
the work a killed worker left, both get done on the next pass.

A name already registered when the watcher starts is taken as unchanged; after that, a changed size,
ETag or modification time registers the name again (new bytes, new asset).
"""

from __future__ import annotations

import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mediamesh.features.errors import MediameshError
from mediamesh.orchestrator.execution.sidecars import SUBTITLE_SUFFIXES
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store.landing import LandingReader

__all__ = ["Pass", "Watcher", "parse_source"]

# Files beside the media that describe it; they are attached to their video, never assets of their own.
_SIDECAR_SUFFIXES = (*SUBTITLE_SUFFIXES, ".json")


@dataclass
class Pass:
    """One reconciliation: objects listed, newly registered, errors by name, assets handed on."""

    listed: int = 0
    registered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)


def parse_source(source: str) -> tuple[str, str] | Path:
    """``s3://bucket/prefix`` as (bucket, prefix), or a local directory."""
    if source.startswith("s3://"):
        parts = urllib.parse.urlsplit(source)
        if not parts.netloc:
            raise MediameshError(f"{source!r} names no bucket; use s3://BUCKET[/PREFIX]")
        return parts.netloc, parts.path.lstrip("/")
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise MediameshError(f"{source!r} is neither s3://BUCKET[/PREFIX] nor a directory")
    return folder.resolve()


@dataclass
class Watcher:
    """Reconciles ``source`` with the mesh; ``dispatch(assets, names)`` gets the work."""

    mesh: Mesh
    source: str
    dispatch: Callable[[list[str], dict[str, str]], list[str]]
    landing: LandingReader | None = None
    _seen: dict[str, tuple[int, str]] = field(default_factory=dict)
    _assets: dict[str, str] = field(default_factory=dict)
    _started: bool = False

    def __post_init__(self) -> None:
        self._where = parse_source(self.source)

    def reconcile(self) -> Pass:
        """List, register what is new or changed, and dispatch what the assets found lack."""
        result = Pass()
        listing = dict(self._list())
        result.listed = len(listing)
        if not self._started:  # names known from before this watcher: taken as unchanged
            self._assets.update(self.mesh.store.assets_named(list(listing)))
            self._seen.update((name, stamp) for name, stamp in listing.items() if name in self._assets)
            self._started = True
        for name, stamp in listing.items():
            if self._seen.get(name) == stamp:
                continue
            try:
                self._assets[name] = self._register(name)
            except MediameshError as exc:
                result.errors.append(f"{name}: {exc}")
                continue
            self._seen[name] = stamp
            result.registered.append(name)
        present = {name: self._assets[name] for name in listing if name in self._assets}
        if present:
            names = {asset: name for name, asset in present.items()}
            result.dispatched = self.dispatch(list(names), names)
        return result

    def _list(self) -> Iterator[tuple[str, tuple[int, str]]]:
        if isinstance(self._where, Path):
            for path in sorted(self._where.rglob("*")):
                hidden = any(part.startswith(".") for part in path.relative_to(self._where).parts)
                if hidden or path.suffix.lower() in _SIDECAR_SUFFIXES or not path.is_file():
                    continue
                stat = path.stat()
                yield str(path), (stat.st_size, str(stat.st_mtime_ns))
            return
        bucket, prefix = self._where
        for obj in self._reader().objects(bucket, prefix):
            yield obj.name, (obj.size, obj.etag)

    def _register(self, name: str) -> str:
        if isinstance(self._where, Path):
            result = self.mesh.register(name)
            if result.asset is None:
                raise MediameshError("; ".join(result.errors))
            return result.asset
        bucket, key = name.removeprefix("s3://").split("/", 1)
        with tempfile.TemporaryDirectory(prefix="mediamesh-watch-") as tmp:
            path = Path(tmp) / "object"
            sha256 = self._reader().download(bucket, key, path)
            asset, _ = self.mesh.store.register_asset(path, name=name, sha256=sha256)
        return asset.id

    def _reader(self) -> LandingReader:
        if self.landing is None:
            from mediamesh.store import StoreSettings

            self.landing = LandingReader(StoreSettings())
        return self.landing
