"""What the blob store tests share: an S3 store on SeaweedFS, the requests a store sends, digests."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mediamesh.store.blobs import (
    DEFAULT_PART_SIZE,
    BlobStore,
    S3BlobStore,
)
from tests.services import S3Endpoint

BUCKET = "mediamesh-test"
MIB = 1 << 20


def s3_store(seaweed: S3Endpoint, tmp_path: Path, *, part_size: int = DEFAULT_PART_SIZE) -> S3BlobStore:
    return S3BlobStore(
        seaweed.endpoint,
        BUCKET,
        f"tests/{uuid.uuid4().hex}",
        access_key=seaweed.access_key,
        secret_key=seaweed.secret_key,
        cache_dir=tmp_path / "cache",
        part_size=part_size,
    )


@contextmanager
def requests_sent(store: BlobStore) -> Iterator[list[str]]:
    """The HTTP request lines an S3 store sends inside the block ("GET /bucket/name"); none for local."""
    sent: list[str] = []
    if not isinstance(store, S3BlobStore):
        yield sent
        return
    trace = io.StringIO()
    store._client.trace_on(trace)
    try:
        yield sent
    finally:
        store._client.trace_off()
        lines = trace.getvalue().splitlines()
        sent.extend(line.rsplit(" ", 1)[0] for line in lines if line.endswith(" HTTP/1.1"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())
