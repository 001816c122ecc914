"""Blobs as objects in an S3 bucket (MinIO, SeaweedFS, AWS), through the client of ``store/s3.py``."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, cast

from mediamesh.features.errors import MediameshError
from mediamesh.store.blobs.base import (
    BLOB_KEY,
    CHUNK_SIZE,
    DEFAULT_PART_SIZE,
    BlobInfo,
    BlobIntegrityError,
    BlobNotFoundError,
    BlobStore,
    BlobStoreError,
    ChunkReader,
    blob_key,
    copy_hashing,
    digest_and_size,
    sha256_of_key,
    write_atomically,
)
from mediamesh.store.s3 import ensure_buckets, s3_client, s3_errors, split_endpoint

if TYPE_CHECKING:
    import urllib3

__all__ = ["S3BlobStore"]

# S3 bucket naming rules, minus the rarely relevant exceptions (IP-like names, xn-- prefixes).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class S3BlobStore(BlobStore):
    """Blobs as objects under ``prefix`` in an S3 bucket; reads that need a file go through ``cache_dir``.

    Uploads are checked by size and ETag: the MD5 of the bytes sent, or for a multipart upload the MD5
    of the parts' MD5s with the part count, which S3, MinIO and SeaweedFS all compute the same way.
    """

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        prefix: str = "",
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        secure: bool = False,
        cache_dir: Path,
        region: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        ca_bundle: str | None = None,
        http_client: urllib3.PoolManager | None = None,
    ) -> None:
        from minio.helpers import MIN_PART_SIZE  # here, not at the top: a local home never imports the SDK

        host, secure = split_endpoint(endpoint, secure)
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise ValueError(f"invalid S3 bucket name {bucket!r}: use 3-63 lowercase letters, digits, '.', '-'")
        if (access_key is None) != (secret_key is None):
            raise ValueError(
                "an S3 access key and secret key (MEDIAMESH_S3_ACCESS_KEY, MEDIAMESH_S3_SECRET_KEY) "
                "must be given together, or neither"
            )
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size {part_size} is below the S3 minimum of {MIN_PART_SIZE} bytes")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"{'https' if secure else 'http'}://{host}"
        self.cache_dir = cache_dir.expanduser().resolve()
        self.part_size = part_size
        self._root = f"{self.prefix}/" if self.prefix else ""
        self._client = s3_client(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            ca_bundle=ca_bundle,
            http_client=http_client,
        )
        self._ensure_bucket()

    def put_file(self, path: Path, sha256: str | None = None) -> BlobInfo:
        with path.open("rb") as source:
            sha256, size = digest_and_size(source, sha256)
            key = blob_key(sha256)
            if self._stored_size(key) == size:
                return BlobInfo(key, sha256, size)
            return self._upload(key, source, size)

    def put_bytes(self, data: bytes) -> BlobInfo:
        key = blob_key(hashlib.sha256(data).hexdigest())
        if self._stored_size(key) == len(data):
            return BlobInfo(key, sha256_of_key(key), len(data))
        return self._upload(key, io.BytesIO(data), len(data))

    def exists(self, key: str) -> bool:
        return self._stored_size(key) is not None

    def raw_get(self, key: str) -> bytes:
        name = self._object_name(key)
        with self._s3_errors(key):
            response = self._client.get_object(self.bucket, name)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

    def chunks(self, key: str) -> Iterator[bytes]:
        name = self._object_name(key)
        with self._s3_errors(key):
            response = self._client.get_object(self.bucket, name)
            try:
                yield from response.stream(CHUNK_SIZE)
            finally:
                response.close()
                response.release_conn()

    def local_path(self, key: str) -> Path:
        cached = self._cached(key)
        # Content addressing makes a cached copy valid forever, and shareable between stores.
        if not cached.is_file():
            self._download(key, cached, mode=0o444)
        return cached

    def copy_to(self, key: str, dest: Path) -> None:
        cached = self._cached(key)
        if cached.is_file():
            with cached.open("rb") as source:
                write_atomically(dest, lambda out: shutil.copyfileobj(source, out, CHUNK_SIZE))
        else:
            self._download(key, dest)

    def delete(self, key: str) -> None:
        with self._s3_errors(key):
            self._client.remove_object(self.bucket, self._object_name(key))
        self._cached(key).unlink(missing_ok=True)

    def iter_keys(self) -> Iterator[str]:
        with self._s3_errors():
            for item in self._client.list_objects(self.bucket, prefix=f"{self._root}sha256/", recursive=True):
                key = (item.object_name or "")[len(self._root) :]
                if BLOB_KEY.fullmatch(key):
                    yield key

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{where} at {self.url}"

    def _object_name(self, key: str) -> str:
        sha256_of_key(key)
        return self._root + key

    def _cached(self, key: str) -> Path:
        sha256_of_key(key)
        return self.cache_dir / key

    def _ensure_bucket(self) -> None:
        with self._s3_errors():
            ensure_buckets(self._client, [self.bucket])

    def _stored_size(self, key: str) -> int | None:
        name = self._object_name(key)
        try:
            with self._s3_errors(key):
                stat = self._client.stat_object(self.bucket, name)
        except BlobNotFoundError:
            return None
        return int(stat.size)

    def _upload(self, key: str, source: IO[bytes], size: int) -> BlobInfo:
        expected = sha256_of_key(key)
        name = self._object_name(key)
        reader = _HashingReader(source, self.part_size)
        try:
            with self._s3_errors(key):
                self._client.put_object(self.bucket, name, cast(BinaryIO, reader), size, part_size=self.part_size)
        except OSError as error:
            if reader.size >= size:
                raise
            # The SDK raises OSError when the source ends early: it shrank after it was measured.
            raise BlobIntegrityError(
                f"the source of {key!r} changed during upload ({error}); nothing was stored",
                retryable=False,
            ) from error

        problems: list[str] = []
        retryable = True
        if reader.sha256() != expected:
            problems.append(
                f"the bytes sent hash to {reader.sha256()}: the source changed or was not what its digest says"
            )
            retryable = False
        with self._s3_errors(key):
            stat = self._client.stat_object(self.bucket, name)
        if stat.size != size:
            problems.append(f"stored size {stat.size} != {size} bytes sent")
        if stat.etag != reader.etag():
            problems.append(f"stored ETag {stat.etag} != {reader.etag()} of the bytes sent")
        if problems:
            with contextlib.suppress(MediameshError), self._s3_errors(key):
                self._client.remove_object(self.bucket, name)
            raise BlobIntegrityError(
                f"upload of {key!r} to {self.describe()} failed verification and was removed, so nothing was stored: "
                + "; ".join(problems),
                retryable=retryable,
            )
        return BlobInfo(key, expected, size)

    def _download(self, key: str, dest: Path, mode: int = 0o644) -> None:
        name = self._object_name(key)

        def fetch(out: IO[bytes]) -> None:
            with self._s3_errors(key):
                response = self._client.get_object(self.bucket, name)
                try:
                    sha256, _ = copy_hashing(ChunkReader(response.stream(CHUNK_SIZE)), out)
                finally:
                    response.close()
                    response.release_conn()
            if sha256 != sha256_of_key(key):
                raise BlobIntegrityError(f"{key!r} read from {self.describe()} hashes to {sha256}", retryable=True)

        write_atomically(dest, fetch, mode=mode)

    def _s3_errors(self, key: str | None = None) -> contextlib.AbstractContextManager[None]:
        """SDK and transport failures as the error tree's errors; a missing object under ``key`` is a
        ``BlobNotFoundError``."""
        where = self.describe()
        if key is None:
            return s3_errors(where, refused=BlobStoreError)
        return s3_errors(where, refused=BlobStoreError, missing=lambda _: BlobNotFoundError(key, where))


class _HashingReader:
    """A read-only stream that hashes what passes through it: SHA-256, and the S3 ETag that an upload in
    parts of ``part_size`` gets (the MD5 of one part, or of the parts' MD5s plus ``-count``)."""

    def __init__(self, source: IO[bytes], part_size: int) -> None:
        self._source = source
        self._part_size = part_size
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5()
        self._in_part = 0
        self._part_md5s: list[bytes] = []

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.size += len(data)
        self._sha256.update(data)
        view = memoryview(data)
        while view:
            chunk = view[: self._part_size - self._in_part]
            self._md5.update(chunk)
            self._in_part += len(chunk)
            view = view[len(chunk) :]
            if self._in_part == self._part_size:
                self._part_md5s.append(self._md5.digest())
                self._md5, self._in_part = hashlib.md5(), 0
        return data

    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def etag(self) -> str:
        parts = self._part_md5s + ([self._md5.digest()] if self._in_part or not self._part_md5s else [])
        if len(parts) == 1:
            return parts[0].hex()
        return f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}"
