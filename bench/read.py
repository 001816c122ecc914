"""Reading a stored array value against a raw read of the same bytes from the same backend.

The value is a 2000 x 1664 float32 array (a title's shot embeddings, about 13 MB as ``.npy``), on local
blobs and on S3 (SeaweedFS). Two readers are timed against the one baseline: ``load`` of a record already
in hand, and the value lookup plus ``load``, which is what a reader that knows only the key does. A third
figure prices the checksum every read makes: lookup plus ``load`` with verification on, against the same
with ``verify=False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.context import Context
from bench.harness import BenchError, Figure, Samples, interleaved
from mediamesh.store import NewValue, Store

__all__ = ["run"]

SHAPE = (2000, 1664)
# (full, quick) rounds: a local read takes about a millisecond, an S3 GET tens of them, both noisy.
REPEATS = {"local": (101, 15), "s3": (41, 9)}
MiB = 1 << 20


def run(ctx: Context) -> list[Figure]:
    return [figure for backend in ("local", "s3") for figure in _run_backend(ctx, backend)]


def _run_backend(ctx: Context, backend: str) -> list[Figure]:
    store = ctx.open_store(backend)
    array = np.random.default_rng(0).standard_normal(SHAPE, dtype=np.float32)
    key = _store_array(store, array, ctx.workdir / f"asset-{backend}.bin")
    record = store.value(key)
    if record is None:
        raise BenchError(f"the array value {key[:12]} was not stored")
    if not np.array_equal(store.load(record, np.ndarray), array):
        raise BenchError(f"the array read back from {backend} differs from the one stored")

    def load() -> None:
        store.load(record, np.ndarray)

    def lookup_and_load(verify: bool = True) -> None:
        found = store.value(key)
        if found is None:
            raise BenchError(f"the array value {key[:12]} vanished")
        store.load(found, np.ndarray, verify=verify)

    def lookup_and_load_unverified() -> None:
        lookup_and_load(verify=False)

    raw: Callable[[], object]
    if backend == "local":
        blob_path = store.blobs.local_path(record.blob_key)
        raw, raw_label = blob_path.read_bytes, "Path(blob file).read_bytes()"
    else:
        blob_key = record.blob_key

        def raw() -> None:
            store.blobs.raw_get(blob_key)

        raw_label = "store.blobs.raw_get(blob key)"

    loaded, looked_up, baseline, unverified = interleaved(
        [load, lookup_and_load, raw, lookup_and_load_unverified], repeats=ctx.repeats(*REPEATS[backend]), warmup=2
    )
    raw_memory = ctx.memory(raw)
    size = f"{SHAPE[0]}x{SHAPE[1]} float32, {record.bytes / MiB:.1f} MiB"
    where = "S3 (SeaweedFS)" if backend == "s3" else "local blobs"
    return [
        Figure(
            name=f"read-{backend}",
            description=f"load a stored {size} value from {where}, record in hand",
            target_label="store.load(record, np.ndarray)",
            baseline_label=raw_label,
            samples=Samples(loaded, baseline),
            max_ratio=1.3,
            memory_target=ctx.memory(load),
            memory_baseline=raw_memory,
            notes={"bytes": record.bytes, "backend": backend},
        ),
        Figure(
            name=f"read-{backend}-lookup",
            description=f"look up and load the same value by key from {where}",
            target_label="store.load(store.value(key), np.ndarray)",
            baseline_label=raw_label,
            samples=Samples(looked_up, baseline),
            max_ratio=1.3,
            memory_target=ctx.memory(lookup_and_load),
            memory_baseline=raw_memory,
            notes={"bytes": record.bytes, "backend": backend},
        ),
        Figure(
            name=f"read-{backend}-verify",
            description=f"look up and load the same value from {where}, checksum verified (xxh3) or not",
            target_label="store.load(store.value(key), np.ndarray)",
            baseline_label="store.load(store.value(key), np.ndarray, verify=False)",
            samples=Samples(looked_up, unverified),
            max_ratio=1.3,
            notes={"bytes": record.bytes, "backend": backend},
        ),
    ]


def _store_array(store: Store, array: np.ndarray, asset_file: Path) -> str:
    """Store ``array`` as a value of a small asset; its key."""
    asset_file.write_bytes(b"a small asset for the read benchmark")
    asset, _ = store.register_asset(asset_file, name=asset_file.name)
    key = hashlib.sha256(f"bench read {asset.id}".encode()).hexdigest()
    store.put_value(bench_value(key, asset.id, "shot_embedding"), array)
    return key


def bench_value(key: str, asset: str, feature: str) -> NewValue:
    """The row a benchmark stores a made-up value of ``asset`` under: read by ``source`` alone, computed now."""
    now = datetime.now(UTC)
    return NewValue(
        key=key,
        asset_id=asset,
        feature=feature,
        version="1",
        params={},
        model_fingerprint=None,
        code_fingerprint="0" * 64,
        inputs=(("source", asset),),
        started_at=now,
        finished_at=now,
        worker="bench",
        device="cpu",
    )
