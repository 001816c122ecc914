"""A local model directory's fingerprint: SHA-256 over its weight and configuration files."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

__all__ = ["directory_fingerprint"]

# What a model's outputs depend on: its weights, and the configuration of the model, its tokenizer,
# pre-processing and pooling (``1_Pooling/config.json`` of a sentence-transformer, say).
_FINGERPRINTED_SUFFIXES = (".safetensors", ".bin", ".pt", ".json", ".txt", ".model")

_lock = threading.Lock()
_fingerprints: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}


def directory_fingerprint(path: Path) -> str:
    """SHA-256 over a model directory's weight and configuration files, by relative name in sorted order.

    Cached in-process by every file's (name, size, mtime_ns), so planning stats the files but hashes
    them only when one changed.
    """
    files = sorted(
        (p.relative_to(path).as_posix(), p)
        for p in path.rglob("*")
        if p.suffix in _FINGERPRINTED_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    stats = tuple((name, st.st_size, st.st_mtime_ns) for name, p in files for st in [p.stat()])
    key = (str(path), stats)
    with _lock:
        cached = _fingerprints.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for name, p in files:
        with p.open("rb") as f:
            file_digest = hashlib.file_digest(f, "sha256").hexdigest()
        digest.update(f"{name}\0{file_digest}\n".encode())
    fingerprint = digest.hexdigest()
    with _lock:
        _fingerprints[key] = fingerprint
    return fingerprint
