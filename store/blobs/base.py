"""What every blob store shares: the key scheme, the ``BlobStore`` interface, its errors and the hashing helpers.

A key is ``sha256/<first 2 hex>/<64 hex>``. Every write is verified before it returns, so a key never names
bytes other than those it hashes; a failed write leaves nothing under its key. Errors, besides ``ValueError``
for a malformed key or configuration, are in the tree of ``features/errors.py``: ``BlobNotFoundError`` a
``NotFoundError`` (and a ``KeyError``), ``BlobIntegrityError`` a ``CorruptError``, ``BlobStoreError`` (a refusal)
a ``DefinitionError``; an S3 store's passing failures are ``UnavailableError``s (``store/s3.py``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from mediamesh.features.errors import CorruptError, DefinitionError, NotFoundError

__all__ = [
    "BLOB_KEY",
    "CHUNK_SIZE",
    "DEFAULT_PART_SIZE",
    "BlobInfo",
    "BlobIntegrityError",
    "BlobNotFoundError",
    "BlobStore",
    "BlobStoreError",
    "ChunkReader",
    "blob_key",
    "check_read",
    "copy_hashing",
    "digest_and_size",
    "file_size",
    "sha256_of_key",
    "write_atomically",
]

T = TypeVar("T")

CHUNK_SIZE = 1 << 20
DEFAULT_PART_SIZE = 16 << 20

BLOB_KEY = re.compile(r"sha256/([0-9a-f]{2})/(\1[0-9a-f]{62})")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobStoreError(DefinitionError):
    """The object store refused an operation (bad credentials, missing permission, bad bucket): fix the settings."""


class BlobNotFoundError(NotFoundError, KeyError):
    """No blob is stored under the key."""

    def __init__(self, key: str, where: str) -> None:
        super().__init__(f"no blob {key!r} in {where}")
        self.key = key
        self.where = where

    def __str__(self) -> str:
        # KeyError would show the repr of the message.
        return str(self.args[0])

    def __reduce__(self) -> tuple[type[BlobNotFoundError], tuple[str, str]]:
        # Errors cross process boundaries pickled (task runners); rebuild from the constructor's arguments.
        return type(self), (self.key, self.where)


class BlobIntegrityError(CorruptError):
    """Bytes written or read do not hash to their key, or have the wrong size.

    ``retryable`` is per case: bytes damaged on their way (a download, an upload checked against the store's
    ETag) may arrive whole next time; a source that changed while it was stored will not.
    """

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message, retryable)
        self.retryable = retryable

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its key, the SHA-256 of its bytes, and their number."""

    key: str
    sha256: str
    size: int


def blob_key(sha256: str) -> str:
    """The key of the blob whose content hashes to ``sha256`` (64 lowercase hex digits)."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return f"sha256/{sha256[:2]}/{sha256}"


def sha256_of_key(key: str) -> str:
    match = BLOB_KEY.fullmatch(key)
    if match is None:
        raise ValueError(f"not a blob key: {key!r} (expected 'sha256/<2 hex>/<64 hex>')")
    return match.group(2)


class BlobStore(ABC):
    """Blobs kept once under content-derived keys; writes are verified, reads are by key."""

    @abstractmethod
    def put_file(self, path: Path, sha256: str | None = None) -> BlobInfo:
        """Store the file's bytes. ``sha256``, when the caller already hashed the file, saves a pass;
        it is still checked against the bytes actually written."""

    @abstractmethod
    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store ``data``."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key``."""

    def existing(self, keys: Iterable[str]) -> set[str]:
        """The subset of ``keys`` that are stored."""
        return {key for key in keys if self.exists(key)}

    def get_bytes(self, key: str, *, verify: bool = False) -> bytes:
        """The blob's bytes; ``BlobNotFoundError`` when there is none.

        Writes are verified and keys are content hashes, so reads trust the backend by default (the
        gateway checks the size against the value's row); ``verify=True`` re-hashes what was read.
        """
        data = self.raw_get(key)
        if verify:
            check_read(key, data, self.describe())
        return data

    @abstractmethod
    def chunks(self, key: str) -> Iterator[bytes]:
        """The blob's bytes in pieces of at most ``CHUNK_SIZE``, unverified, read from the store itself (never
        a cached copy), so that a caller can hash a blob of any size in bounded memory."""

    @abstractmethod
    def local_path(self, key: str) -> Path:
        """A local file holding the blob, for reading only (it may be the store's own copy)."""

    @abstractmethod
    def copy_to(self, key: str, dest: Path) -> None:
        """Write the blob to ``dest`` (replaced atomically), a file the caller owns."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the blob; for garbage collection only. Deleting a missing blob is not an error."""

    @abstractmethod
    def iter_keys(self) -> Iterator[str]:
        """Every stored key, in no promised order."""

    @abstractmethod
    def describe(self) -> str:
        """Where the blobs live, for people: ``file:///...`` or ``s3://bucket/prefix at URL``."""

    @abstractmethod
    def raw_get(self, key: str) -> bytes:
        """The blob's bytes by the plainest read the backend has, unverified: a benchmark baseline."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"


class ChunkReader:
    """A ``read()`` over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1) -> bytes:
        return next(self._chunks, b"")


def _hash_stream(source: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def copy_hashing(source: IO[bytes] | ChunkReader, out: IO[bytes]) -> tuple[str, int]:
    """Copy ``source`` to ``out``; the SHA-256 and length of exactly the bytes written."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK_SIZE):
        digest.update(chunk)
        out.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def write_atomically(dest: Path, write: Callable[[IO[bytes]], T], mode: int = 0o644) -> T:
    """Write ``dest`` through a temp file beside it, synced and renamed: a crash leaves the old file or
    the new one, at worst plus a temp file, never a partial ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name[:16]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, dest)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_directory(dest.parent)
    return result


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def check_read(key: str, data: bytes, where: str) -> None:
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 != sha256_of_key(key):
        raise BlobIntegrityError(f"{key!r} read from {where} hashes to {sha256}", retryable=True)


def digest_and_size(source: IO[bytes], sha256: str | None) -> tuple[str, int]:
    """The source's SHA-256 (hashed now unless given, then rewound) and its size."""
    if sha256 is None:
        digest, size = _hash_stream(source)
        source.seek(0)
        return digest, size
    return sha256, os.fstat(source.fileno()).st_size
