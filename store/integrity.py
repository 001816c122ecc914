"""Integrity: scrubbing every referenced blob against its rows, and collecting the blobs no row names."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
import xxhash

from mediamesh.store import schema
from mediamesh.store.blobs import BlobNotFoundError
from mediamesh.store.core import GC_LOCK, StoreCore
from mediamesh.store.records import BadBlob, BlobUse, GarbageCollectionBusyError, VerifyReport

__all__ = ["IntegrityStore"]


class IntegrityStore(StoreCore):
    """``verify`` and ``gc``: the two passes over every blob."""

    def gc(self, *, dry_run: bool = False) -> list[str]:
        """Remove blobs that no row refers to (left by a crash between blob and row).

        What is referenced is what the ``blob_references`` view lists: every table that names a blob (assets,
        values, attachments, artefacts) adds itself to the view in the migration that creates it.
        """
        with self._connect() as conn:
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:g)"), {"g": GC_LOCK}).scalar_one()
            if not got:
                raise GarbageCollectionBusyError("work is in progress; run gc again when it is done")
            try:
                referenced = set(conn.execute(sa.select(schema.blob_references.c.blob_key).distinct()).scalars())
                orphans = [k for k in self.blobs.iter_keys() if k not in referenced]
                if not dry_run:
                    for key in orphans:
                        self.blobs.delete(key)
                return orphans
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:g)"), {"g": GC_LOCK})
                conn.commit()

    def verify(
        self,
        *,
        sample: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        rng: random.Random | None = None,
    ) -> VerifyReport:
        """Re-hash every referenced blob (or ``sample`` of them, at random) from the store itself, against the
        SHA-256, size and xxh3 its rows recorded; streamed, so memory stays bounded whatever the blob's size.

        ``progress(done, total)`` is called after each blob.
        """
        refs = schema.blob_references
        with self._connect() as conn:
            rows = conn.execute(sa.select(refs).order_by(refs.c.blob_key, refs.c.source, refs.c.row_key)).all()
        by_key: dict[str, list[sa.Row[Any]]] = {}
        for row in rows:
            by_key.setdefault(row.blob_key, []).append(row)
        keys = sorted(by_key)
        if sample is not None and sample < len(keys):
            keys = sorted((rng or random.Random()).sample(keys, sample))
        missing: list[BadBlob] = []
        corrupt: list[BadBlob] = []
        total_bytes = 0
        for done, key in enumerate(keys, 1):
            uses = tuple(BlobUse(r.source, r.row_key, r.asset_id) for r in by_key[key])
            try:
                size, problem = _scrub(self.blobs.chunks(key), by_key[key])
            except BlobNotFoundError:
                missing.append(BadBlob(key, f"not in {self.blobs.describe()}", uses))
            else:
                total_bytes += size
                if problem is not None:
                    corrupt.append(BadBlob(key, problem, uses))
            if progress is not None:
                progress(done, len(keys))
        return VerifyReport(len(keys), total_bytes, tuple(missing), tuple(corrupt))


def _scrub(chunks: Iterable[bytes], rows: Sequence[sa.Row[Any]]) -> tuple[int, str | None]:
    """The blob's size, and what is wrong with its bytes against each row's SHA-256, size and xxh3 (None: nothing)."""
    sha256 = hashlib.sha256()
    xxh3 = xxhash.xxh3_64() if any(r.xxh3 is not None for r in rows) else None
    size = 0
    for chunk in chunks:
        sha256.update(chunk)
        if xxh3 is not None:
            xxh3.update(chunk)
        size += len(chunk)
    problems = []
    digests = {r.sha256 for r in rows}
    if digests != {got := sha256.hexdigest()}:
        problems.append(f"hashes to SHA-256 {got}, its rows say {', '.join(sorted(digests))}")
    sizes = {r.bytes for r in rows if r.bytes is not None}
    if sizes - {size}:
        problems.append(f"has {size} bytes, its rows say {', '.join(map(str, sorted(sizes)))}")
    recorded = {r.xxh3 for r in rows if r.xxh3 is not None}
    if xxh3 is not None and recorded - {xxh3.hexdigest()}:
        problems.append(f"hashes to xxh3 {xxh3.hexdigest()}, its rows say {', '.join(sorted(recorded))}")
    return size, "; ".join(problems) or None
