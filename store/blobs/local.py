"""Blobs in a local directory: read-only files written through a temp file and ``os.replace``."""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from mediamesh.store.blobs.base import (
    BLOB_KEY,
    CHUNK_SIZE,
    BlobInfo,
    BlobIntegrityError,
    BlobNotFoundError,
    BlobStore,
    blob_key,
    copy_hashing,
    digest_and_size,
    file_size,
    sha256_of_key,
    write_atomically,
)

__all__ = ["LocalBlobStore"]


class LocalBlobStore(BlobStore):
    """Blobs as read-only files under ``root``, written through a temp file and ``os.replace``."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def put_file(self, path: Path, sha256: str | None = None) -> BlobInfo:
        with path.open("rb") as source:
            sha256, size = digest_and_size(source, sha256)
            key = blob_key(sha256)
            target = self._path(key)
            if file_size(target) == size:
                return BlobInfo(key, sha256, size)
            return self._write(key, lambda out: copy_hashing(source, out))

    def put_bytes(self, data: bytes) -> BlobInfo:
        key = blob_key(hashlib.sha256(data).hexdigest())
        if file_size(self._path(key)) == len(data):
            return BlobInfo(key, sha256_of_key(key), len(data))
        return self._write(key, lambda out: copy_hashing(io.BytesIO(data), out))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def raw_get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(key, self.describe()) from None

    def chunks(self, key: str) -> Iterator[bytes]:
        try:
            source = self._path(key).open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(key, self.describe()) from None
        with source:
            while chunk := source.read(CHUNK_SIZE):
                yield chunk

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise BlobNotFoundError(key, self.describe())
        return path

    def copy_to(self, key: str, dest: Path) -> None:
        with self.local_path(key).open("rb") as source:
            write_atomically(dest, lambda out: shutil.copyfileobj(source, out, CHUNK_SIZE))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def iter_keys(self) -> Iterator[str]:
        top = self.root / "sha256"
        if not top.is_dir():
            return
        for shard in sorted(top.iterdir()):
            if not shard.is_dir():
                continue
            for blob in sorted(shard.iterdir()):
                key = f"sha256/{shard.name}/{blob.name}"
                # Skips temp files of writes in flight or interrupted by a crash.
                if BLOB_KEY.fullmatch(key) and blob.is_file():
                    yield key

    def describe(self) -> str:
        return self.root.as_uri()

    def _path(self, key: str) -> Path:
        sha256_of_key(key)
        return self.root / key

    def _write(self, key: str, copy: Callable[[IO[bytes]], tuple[str, int]]) -> BlobInfo:
        expected = sha256_of_key(key)

        def write_and_check(out: IO[bytes]) -> BlobInfo:
            sha256, size = copy(out)
            if sha256 != expected:
                raise BlobIntegrityError(
                    f"bytes written for {key!r} hash to {sha256}: the source changed or was "
                    f"not what its digest says; nothing was stored",
                    retryable=False,
                )
            return BlobInfo(key, sha256, size)

        return write_atomically(self._path(key), write_and_check, mode=0o444)
