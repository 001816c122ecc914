"""A local model directory's fingerprint: SHA-256 over its weight and configuration files.

Hashing a model's weights takes a while (most of a second for MiniLM's 88 MB), and every command that plans
a value of an encoder asks for its fingerprint. So a fingerprint is kept with the name, size and mtime of every
file it covers: in this process, and in ``$MEDIAMESH_HOME/cache/model-fingerprints.json`` for the next one.
A file added, removed, resized or touched makes the files differ, and the fingerprint is computed again.
A file changed in the last few seconds could change again within the same mtime tick, unseen (git's "racily
clean" files), so a fingerprint over such a file is not kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

__all__ = [
    "FINGERPRINT_CACHE",
    "Fingerprinted",
    "directory_fingerprint",
    "file_fingerprint",
    "listed_files",
    "recording",
]

# What a model's outputs depend on: its weights, and the configuration of the model, its tokenizer,
# pre-processing and pooling (``1_Pooling/config.json`` of a sentence-transformer, say).
_FINGERPRINTED_SUFFIXES = (".safetensors", ".bin", ".pt", ".json", ".txt", ".model")

#: Where in ``$MEDIAMESH_HOME`` the fingerprints of model directories are kept between processes.
FINGERPRINT_CACHE = Path("cache") / "model-fingerprints.json"
_CACHE_FORMAT = 1
#: How old every file must be for a fingerprint over it to be kept: more than any filesystem's mtime tick.
_SETTLED_NS = 3_000_000_000

Files = tuple[tuple[str, int, int], ...]

#: A directory fingerprinted while :func:`recording`: its path, its files as they were, the fingerprint, and
#: whether every file had settled (a fingerprint over a file still changing may not hold).
Fingerprinted = tuple[str, Files, str, bool]

_lock = threading.Lock()
_fingerprints: dict[tuple[str, Files], str] = {}
_recorded: ContextVar[list[Fingerprinted] | None] = ContextVar("mediamesh_fingerprints_recorded", default=None)


@contextmanager
def recording() -> Iterator[list[Fingerprinted]]:
    """Every directory fingerprinted inside the block, in order: what a fingerprint computed there depends on."""
    seen: list[Fingerprinted] = []
    token = _recorded.set(seen)
    try:
        yield seen
    finally:
        _recorded.reset(token)


def listed_files(path: Path) -> Files:
    """The (relative name, size, mtime_ns) of each file the fingerprint of ``path`` covers, in sorted order:
    a directory's weight and configuration files, or a single file itself."""
    if path.is_file():
        st = path.stat()
        return ((path.name, st.st_size, st.st_mtime_ns),)
    return tuple((name, st.st_size, st.st_mtime_ns) for name, p in _listing(path) for st in [p.stat()])


def file_fingerprint(path: Path) -> str:
    """SHA-256 of one file's bytes (a checkpoint shipped as a single file), cached and recorded as a
    directory's fingerprint is: by its size and mtime, in-process and in the home."""

    def digest() -> str:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()

    return _fingerprint((str(path), listed_files(path)), digest)


def _listing(path: Path) -> list[tuple[str, Path]]:
    return sorted(
        (p.relative_to(path).as_posix(), p)
        for p in path.rglob("*")
        if p.suffix in _FINGERPRINTED_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def directory_fingerprint(path: Path) -> str:
    """SHA-256 over a model directory's weight and configuration files, by relative name in sorted order.

    Cached by every file's (name, size, mtime_ns), in-process and in the home: the files are listed and
    stat'ed each time, and hashed only when one of them changed.
    """
    files = _listing(path)
    stats: Files = tuple((name, st.st_size, st.st_mtime_ns) for name, p in files for st in [p.stat()])

    def digest() -> str:
        combined = hashlib.sha256()
        for name, p in files:
            with p.open("rb") as f:
                file_digest = hashlib.file_digest(f, "sha256").hexdigest()
            combined.update(f"{name}\0{file_digest}\n".encode())
        return combined.hexdigest()

    return _fingerprint((str(path), stats), digest)


def _fingerprint(key: tuple[str, Files], compute: Callable[[], str]) -> str:
    """The fingerprint kept for ``key`` (path, files), in-process or in the home; else ``compute()``'s, kept
    if every file it covers had settled. Recorded either way, for :func:`recording`."""
    with _lock:
        cached = _fingerprints.get(key)
    if cached is None:
        cached = _stored(*key)
    if cached is not None:
        with _lock:
            _fingerprints[key] = cached
        _record(key, cached, settled=True)
        return cached
    started = time.time_ns()
    fingerprint = compute()
    settled = all(mtime < started - _SETTLED_NS for _, _, mtime in key[1])
    if settled:
        with _lock:
            _fingerprints[key] = fingerprint
        _store(*key, fingerprint)
    _record(key, fingerprint, settled=settled)
    return fingerprint


def _record(key: tuple[str, Files], fingerprint: str, *, settled: bool) -> None:
    seen = _recorded.get()
    if seen is not None:
        seen.append((*key, fingerprint, settled))


def _cache_file() -> Path | None:
    """The home's fingerprint file; None where the home does not exist (a fingerprint never creates one)."""
    home = Path(os.environ.get("MEDIAMESH_HOME") or ".mediamesh").expanduser()
    return home / FINGERPRINT_CACHE if home.is_dir() else None


def _read(cache: Path) -> dict[str, Any]:
    """The directories the file records; nothing when it is missing, unreadable or of another format."""
    try:
        document = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("format") != _CACHE_FORMAT:
        return {}
    directories = document.get("directories")
    return directories if isinstance(directories, dict) else {}


def _stored(path: str, stats: Files) -> str | None:
    cache = _cache_file()
    if cache is None:
        return None
    entry = _read(cache).get(path)
    if not isinstance(entry, dict) or entry.get("files") != [list(s) for s in stats]:
        return None
    fingerprint = entry.get("fingerprint")
    return fingerprint if isinstance(fingerprint, str) else None


def _store(path: str, stats: Files, fingerprint: str) -> None:
    """Record a fingerprint in the home's file, replaced whole so a reader never sees half of it; a home
    that cannot be written to only means the next process hashes again."""
    cache = _cache_file()
    if cache is None:
        return
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        # Directories that are gone (a test's temporary copy, an old snapshot) leave the file as it is written.
        directories = {kept: entry for kept, entry in _read(cache).items() if Path(kept).is_dir()}
        directories[path] = {"files": [list(s) for s in stats], "fingerprint": fingerprint}
        fd, temporary = tempfile.mkstemp(dir=cache.parent, prefix=".model-fingerprints-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump({"format": _CACHE_FORMAT, "directories": directories}, fh)
            os.replace(temporary, cache)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:
        return
