"""Scrubbing throughput: ``Store.verify()`` over stored values against ``sha256sum`` of the same blob files.

Values of 16 MiB each (random bytes, so nothing compresses or dedups) are stored on local blobs with the
xxh3 new rows get, so ``verify`` computes both checksums of every blob, as it does in use. The baseline hashes
exactly the referenced blob files with coreutils ``sha256sum``, run as a subprocess (its start-up included,
as a scrub script would pay it). Both read from the page cache after the warm-up.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import numpy as np

from bench.context import Context
from bench.harness import BenchError, Figure, Samples, interleaved
from bench.read import bench_value
from mediamesh.store import Store

__all__ = ["run"]

VALUE_BYTES = 16 << 20
# (full, quick): how many values, and rounds.
VALUES = (8, 3)
REPEATS = (9, 3)
MiB = 1 << 20


def run(ctx: Context) -> list[Figure]:
    sha256sum = shutil.which("sha256sum")
    if sha256sum is None:
        raise BenchError("sha256sum (coreutils) is not on PATH")
    store = ctx.open_store("local")
    _store_values(store, ctx.repeats(*VALUES), ctx)
    files = [str(store.blobs.local_path(key)) for key in sorted(store.blobs.iter_keys())]
    clean = store.verify()
    if not clean.ok or clean.checked != len(files):
        raise BenchError(f"verify of a clean store found {clean.to_json()}")

    def verify() -> None:
        store.verify()

    def baseline() -> None:
        subprocess.run([sha256sum, *files], check=True, stdout=subprocess.DEVNULL)

    target_s, baseline_s = interleaved([verify, baseline], repeats=ctx.repeats(*REPEATS), warmup=1)
    samples = Samples(target_s, baseline_s)
    total = clean.bytes
    rate, base_rate = total / samples.target_median / 1e6, total / samples.baseline_median / 1e6
    return [
        Figure(
            name="verify-local",
            description=(
                f"Store.verify() of {len(files)} blobs, {total / MiB:.0f} MiB on local blobs (SHA-256 + xxh3): "
                f"{rate:.0f} MB/s, sha256sum {base_rate:.0f} MB/s"
            ),
            target_label="store.verify()",
            baseline_label="sha256sum BLOB_FILES (subprocess)",
            samples=samples,
            max_ratio=1.3,
            memory_target=ctx.memory(verify),
            notes={"bytes": total, "blobs": len(files), "target_MBps": rate, "baseline_MBps": base_rate},
        )
    ]


def _store_values(store: Store, count: int, ctx: Context) -> None:
    asset_file = ctx.workdir / "asset.bin"
    asset_file.write_bytes(b"a small asset for the verify benchmark")
    asset, _ = store.register_asset(asset_file, name=asset_file.name)
    rng = np.random.default_rng(0)
    for n in range(count):
        key = hashlib.sha256(f"bench verify {n}".encode()).hexdigest()
        store.put_value(bench_value(key, asset.id, f"blob{n}"), rng.integers(0, 256, VALUE_BYTES, dtype=np.uint8))
