"""``mediamesh watch``: reconcile a landing bucket prefix or a local directory with the store, periodically.

Events are at-least-once and can be lost (a webhook down, a queue purged). A watcher lists what is there,
registers what the store has never seen under that name through the one ingest path (content hashing makes
a repeat harmless; a sidecar attaches to its video), and hands every asset found there to the dispatcher
with one plan: the work an event missed, and the work a killed worker left, both get done on the next pass.

A name already registered when the watcher starts is taken as unchanged; after that, a changed size,
ETag or modification time registers the name again (new bytes, new asset).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mediamesh.features.errors import MediameshError
from mediamesh.orchestrator.execution.dispatch import Dispatcher
from mediamesh.orchestrator.execution.engine import Progress
from mediamesh.orchestrator.execution.ingest import LandingObject, LocalFile, Source, register
from mediamesh.orchestrator.execution.sidecars import is_sidecar
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store.landing import LandingReader

__all__ = ["Pass", "Watcher", "parse_source"]


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
    """Reconciles ``source`` with the mesh; the work goes to ``runs`` (else the mesh's dispatcher)."""

    mesh: Mesh
    source: str
    runs: Dispatcher | None = None
    landing: LandingReader | None = None
    _seen: dict[str, tuple[int, str]] = field(default_factory=dict)
    _assets: dict[str, str] = field(default_factory=dict)
    _started: bool = False

    def __post_init__(self) -> None:
        self._where = parse_source(self.source)

    def reconcile(self, progress: Progress | None = None) -> Pass:
        """List, register what is new or changed (videos first, then sidecars), and hand on what the assets
        found lack."""
        result = Pass()
        listing = dict(self._list())
        result.listed = sum(1 for name in listing if not is_sidecar(name))
        if not self._started:  # names known from before this watcher: taken as unchanged
            self._assets.update(self.mesh.store.assets_named(list(listing)))
            self._seen.update((name, stamp) for name, stamp in listing.items() if name in self._assets)
            self._seen.update((name, stamp) for name, stamp in listing.items() if is_sidecar(name))
            self._started = True
        changed = sorted((n for n, stamp in listing.items() if self._seen.get(n) != stamp), key=is_sidecar)
        for name in changed:
            landing = None if isinstance(self._where, Path) else self._reader()
            registered = register(self.mesh.store, self._source(name), landing=landing)
            if registered.errors:
                result.errors.extend(registered.errors)
                if registered.asset is None:
                    continue
            self._seen[name] = listing[name]
            if not is_sidecar(name) and registered.asset is not None:
                self._assets[name] = registered.asset
                result.registered.append(name)
        present = {name: self._assets[name] for name in listing if name in self._assets}
        if present:
            names = {asset: name for name, asset in present.items()}
            done = self.mesh.dispatch(list(names), trigger="watch", names=names, runs=self.runs, progress=progress)
            result.dispatched = done.handed
        return result

    def _source(self, name: str) -> Source:
        if isinstance(self._where, Path):
            return LocalFile(Path(name))
        bucket, key = name.removeprefix("s3://").split("/", 1)
        return LandingObject(bucket, key, 0, "")

    def _list(self) -> Iterator[tuple[str, tuple[int, str]]]:
        if isinstance(self._where, Path):
            for path in sorted(self._where.rglob("*")):
                hidden = any(part.startswith(".") for part in path.relative_to(self._where).parts)
                if hidden or not path.is_file():
                    continue
                stat = path.stat()
                yield str(path), (stat.st_size, str(stat.st_mtime_ns))
            return
        bucket, prefix = self._where
        for obj in self._reader().objects(bucket, prefix):
            yield obj.name, (obj.size, obj.etag)

    def _reader(self) -> LandingReader:
        if self.landing is None:
            from mediamesh.store import StoreSettings

            self.landing = LandingReader(StoreSettings())
        return self.landing
