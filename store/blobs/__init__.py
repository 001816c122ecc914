"""Content-addressed blob stores: payload bytes kept once under the SHA-256 of their content.

``LocalBlobStore`` (``local.py``) keeps blobs in a directory, ``S3BlobStore`` (``s3.py``) in an S3 bucket
(MinIO, SeaweedFS, AWS); what they share, the key scheme, the interface and the errors, is in ``base.py``.
``open_blob_store`` picks one from configuration.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from mediamesh.store.blobs.base import (
    CHUNK_SIZE,
    DEFAULT_PART_SIZE,
    BlobInfo,
    BlobIntegrityError,
    BlobNotFoundError,
    BlobStore,
    BlobStoreError,
    blob_key,
)
from mediamesh.store.blobs.local import LocalBlobStore
from mediamesh.store.blobs.s3 import S3BlobStore
from mediamesh.store.s3 import split_endpoint

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_PART_SIZE",
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
