"""Content-addressed blob stores: payload bytes kept once under the SHA-256 of their content.

A key is ``sha256/<first 2 hex>/<64 hex>``. Every write is verified before it returns, so a key
never names bytes other than those it hashes; a failed write leaves nothing under its key.
``LocalBlobStore`` keeps blobs in a directory, ``S3BlobStore`` in an S3 bucket (MinIO, SeaweedFS,
AWS) through the MinIO SDK. ``open_blob_store`` picks one from configuration.

Errors, besides ``ValueError`` for a malformed key or configuration::

    MediameshError
    ├── BlobStoreError              object storage refused an operation; retrying cannot help
    │   ├── BlobNotFoundError       no blob under the key (also a ``KeyError``)
    │   └── BlobIntegrityError      bytes do not match their key or size; ``retryable`` per case
    └── TransientError              the object store was briefly failing (retryable)
        └── BackendUnavailableError the object store cannot be reached at all
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, TypeVar, cast
from urllib.parse import unquote, urlsplit

import certifi
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error, ServerError
from minio.helpers import MIN_PART_SIZE

from mediamesh.features.errors import BackendUnavailableError, MediameshError, TransientError

__all__ = [
    "BlobInfo",
    "BlobIntegrityError",
    "BlobNotFoundError",
    "BlobStore",
    "BlobStoreError",
    "LocalBlobStore",
    "S3BlobStore",
    "blob_key",
    "open_blob_store",
    "split_endpoint",
]

T = TypeVar("T")

CHUNK_SIZE = 1 << 20
DEFAULT_PART_SIZE = 16 << 20

_KEY = re.compile(r"sha256/([0-9a-f]{2})/(\1[0-9a-f]{62})")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# S3 bucket naming rules, minus the rarely relevant exceptions (IP-like names, xn-- prefixes).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_RETRYABLE_S3_CODES = frozenset(
    {"InternalError", "OperationAborted", "RequestTimeout", "ServiceUnavailable", "SlowDown"}
)


class BlobStoreError(MediameshError):
    """The object store refused an operation (bad credentials, missing permission, bad bucket)."""


class BlobNotFoundError(BlobStoreError, KeyError):
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


class BlobIntegrityError(BlobStoreError):
    """Bytes written or read do not hash to their key, or have the wrong size."""

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


def _sha256_of_key(key: str) -> str:
    match = _KEY.fullmatch(key)
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

    @abstractmethod
    def get_bytes(self, key: str, *, verify: bool = False) -> bytes:
        """The blob's bytes; ``BlobNotFoundError`` when there is none.

        Writes are verified and keys are content hashes, so reads trust the backend by default (the
        gateway checks the size against the value's row); ``verify=True`` re-hashes what was read.
        """

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


class LocalBlobStore(BlobStore):
    """Blobs as read-only files under ``root``, written through a temp file and ``os.replace``."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def put_file(self, path: Path, sha256: str | None = None) -> BlobInfo:
        with path.open("rb") as source:
            sha256, size = _digest_and_size(source, sha256)
            key = blob_key(sha256)
            target = self._path(key)
            if _file_size(target) == size:
                return BlobInfo(key, sha256, size)
            return self._write(key, lambda out: _copy_hashing(source, out))

    def put_bytes(self, data: bytes) -> BlobInfo:
        key = blob_key(hashlib.sha256(data).hexdigest())
        if _file_size(self._path(key)) == len(data):
            return BlobInfo(key, _sha256_of_key(key), len(data))
        return self._write(key, lambda out: _copy_hashing(io.BytesIO(data), out))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def get_bytes(self, key: str, *, verify: bool = False) -> bytes:
        data = self.raw_get(key)
        if verify:
            _check_read(key, data, self.describe())
        return data

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
            _write_atomically(dest, lambda out: shutil.copyfileobj(source, out, CHUNK_SIZE))

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
                if _KEY.fullmatch(key) and blob.is_file():
                    yield key

    def describe(self) -> str:
        return self.root.as_uri()

    def _path(self, key: str) -> Path:
        _sha256_of_key(key)
        return self.root / key

    def _write(self, key: str, copy: Callable[[IO[bytes]], tuple[str, int]]) -> BlobInfo:
        expected = _sha256_of_key(key)

        def write_and_check(out: IO[bytes]) -> BlobInfo:
            sha256, size = copy(out)
            if sha256 != expected:
                raise BlobIntegrityError(
                    f"bytes written for {key!r} hash to {sha256}: the source changed or was "
                    f"not what its digest says; nothing was stored",
                    retryable=False,
                )
            return BlobInfo(key, sha256, size)

        return _write_atomically(self._path(key), write_and_check, mode=0o444)


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
        http_client: urllib3.PoolManager | None = None,
    ) -> None:
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
        http = http_client or urllib3.PoolManager(
            # The SDK's default connect timeout is five minutes; an unreachable store should fail fast.
            timeout=urllib3.Timeout(connect=10, read=300),
            maxsize=10,
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(total=5, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self._client = Minio(
            host, access_key=access_key, secret_key=secret_key, secure=secure, region=region, http_client=http
        )
        self._ensure_bucket()

    def put_file(self, path: Path, sha256: str | None = None) -> BlobInfo:
        with path.open("rb") as source:
            sha256, size = _digest_and_size(source, sha256)
            key = blob_key(sha256)
            if self._stored_size(key) == size:
                return BlobInfo(key, sha256, size)
            return self._upload(key, source, size)

    def put_bytes(self, data: bytes) -> BlobInfo:
        key = blob_key(hashlib.sha256(data).hexdigest())
        if self._stored_size(key) == len(data):
            return BlobInfo(key, _sha256_of_key(key), len(data))
        return self._upload(key, io.BytesIO(data), len(data))

    def exists(self, key: str) -> bool:
        return self._stored_size(key) is not None

    def get_bytes(self, key: str, *, verify: bool = False) -> bytes:
        data = self.raw_get(key)
        if verify:
            _check_read(key, data, self.describe())
        return data

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
                _write_atomically(dest, lambda out: shutil.copyfileobj(source, out, CHUNK_SIZE))
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
                if _KEY.fullmatch(key):
                    yield key

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{where} at {self.url}"

    def _object_name(self, key: str) -> str:
        _sha256_of_key(key)
        return self._root + key

    def _cached(self, key: str) -> Path:
        _sha256_of_key(key)
        return self.cache_dir / key

    def _ensure_bucket(self) -> None:
        with self._s3_errors():
            if self._client.bucket_exists(self.bucket):
                return
            try:
                self._client.make_bucket(self.bucket)
            except S3Error as error:
                # Another process created it between our check and our request.
                if error.code != "BucketAlreadyOwnedByYou":
                    raise

    def _stored_size(self, key: str) -> int | None:
        name = self._object_name(key)
        try:
            with self._s3_errors(key):
                stat = self._client.stat_object(self.bucket, name)
        except BlobNotFoundError:
            return None
        return int(stat.size)

    def _upload(self, key: str, source: IO[bytes], size: int) -> BlobInfo:
        expected = _sha256_of_key(key)
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
                    sha256, _ = _copy_hashing(_ChunkReader(response.stream(CHUNK_SIZE)), out)
                finally:
                    response.close()
                    response.release_conn()
            if sha256 != _sha256_of_key(key):
                raise BlobIntegrityError(f"{key!r} read from {self.describe()} hashes to {sha256}", retryable=True)

        _write_atomically(dest, fetch, mode=mode)

    @contextlib.contextmanager
    def _s3_errors(self, key: str | None = None) -> Iterator[None]:
        """Translate SDK and transport failures into mediamesh errors that say whether to retry."""
        try:
            yield
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchObject") and key is not None:
                raise BlobNotFoundError(key, self.describe()) from error
            status = error.response.status if error.response is not None else 0
            if error.code in _RETRYABLE_S3_CODES or status >= 500:
                raise TransientError(f"{self.describe()} failed: {error.code}: {error.message}") from error
            raise BlobStoreError(f"{self.describe()} refused: {error.code}: {error.message}") from error
        except ServerError as error:
            raise TransientError(f"{self.describe()} failed: {error}") from error
        except urllib3.exceptions.HTTPError as error:
            raise BackendUnavailableError(
                "object store",
                self.describe(),
                _reason(error),
                "start it (or check MEDIAMESH_S3_ENDPOINT), then run again",
            ) from error
        except MinioException as error:
            raise BlobStoreError(f"{self.describe()} failed: {error}") from error


def open_blob_store(
    object_store: str | None,
    *,
    home: Path,
    s3_endpoint: str | None = None,
    s3_access_key: str | None = None,
    s3_secret_key: str | None = None,
    s3_secure: bool = False,
) -> BlobStore:
    """The blob store named by ``object_store``: ``None`` (``home/blobs``), ``file://PATH`` or
    ``s3://BUCKET[/PREFIX]``; S3 reads that need a local file are cached in ``home/cache/blobs``."""
    if object_store is None:
        return LocalBlobStore(home / "blobs")
    if object_store.startswith("file://"):
        path = unquote(object_store.removeprefix("file://"))
        if not path:
            raise ValueError(f"object store {object_store!r} names no directory; use file:///ABSOLUTE/PATH")
        return LocalBlobStore(Path(path))
    if object_store.startswith("s3://"):
        parts = urlsplit(object_store)
        if not parts.netloc:
            raise ValueError(f"object store {object_store!r} names no bucket; use s3://BUCKET[/PREFIX]")
        if not s3_endpoint:
            raise ValueError(
                f"object store {object_store!r} needs an S3 endpoint: set MEDIAMESH_S3_ENDPOINT "
                "(e.g. http://127.0.0.1:9000)"
            )
        return S3BlobStore(
            s3_endpoint,
            parts.netloc,
            parts.path,
            access_key=s3_access_key or None,
            secret_key=s3_secret_key or None,
            secure=s3_secure,
            cache_dir=home / "cache" / "blobs",
        )
    raise ValueError(f"unsupported object store {object_store!r}: expected file://PATH or s3://BUCKET[/PREFIX]")


def split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """``host:port`` for the SDK, and whether to use TLS: a URL's scheme decides, else ``secure``."""
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise ValueError(f"invalid S3 endpoint {endpoint!r}: expected http(s)://HOST[:PORT] or HOST[:PORT]")
        return parts.netloc, parts.scheme == "https"
    if not endpoint or "/" in endpoint:
        raise ValueError(f"invalid S3 endpoint {endpoint!r}: expected http(s)://HOST[:PORT] or HOST[:PORT]")
    return endpoint, secure


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


class _ChunkReader:
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


def _copy_hashing(source: IO[bytes] | _ChunkReader, out: IO[bytes]) -> tuple[str, int]:
    """Copy ``source`` to ``out``; the SHA-256 and length of exactly the bytes written."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK_SIZE):
        digest.update(chunk)
        out.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _write_atomically(dest: Path, write: Callable[[IO[bytes]], T], mode: int = 0o644) -> T:
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


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _check_read(key: str, data: bytes, where: str) -> None:
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 != _sha256_of_key(key):
        raise BlobIntegrityError(f"{key!r} read from {where} hashes to {sha256}", retryable=True)


def _digest_and_size(source: IO[bytes], sha256: str | None) -> tuple[str, int]:
    """The source's SHA-256 (hashed now unless given, then rewound) and its size."""
    if sha256 is None:
        digest, size = _hash_stream(source)
        source.seek(0)
        return digest, size
    return sha256, os.fstat(source.fileno()).st_size


def _reason(error: BaseException) -> str:
    """The last, most specific cause of a transport error, in one line (urllib3 nests them deeply)."""
    reason: BaseException = error
    while getattr(reason, "reason", None) is not None and isinstance(reason.reason, BaseException):  # type: ignore[attr-defined]
        reason = reason.reason  # type: ignore[attr-defined]
    text = " ".join(str(reason).split())
    return text.split(": ", 1)[-1] if ">: " in text else text
