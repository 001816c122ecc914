"""Planning a catalogue that is fully computed: 10,000 assets x every built-in feature, nothing missing.

The planner derives every key in memory and asks the store once which are stored; the baseline is that
one bulk ``stored_keys`` query alone, with the same keys. The rows are bulk-inserted by ``Store.insert_rows``
(assets, and values under the keys the planner computes, with placeholder blob keys): planning reads
rows only, never blobs or lineage.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from bench.context import Context
from bench.harness import BenchError, Figure, side_by_side
from mediamesh.features import default_registry
from mediamesh.orchestrator.execution.planner import plan
from mediamesh.store import Store
from mediamesh.store.blobs import blob_key
from mediamesh.store.codecs import payload_kind_of

__all__ = ["run"]

ASSETS = 10_000
#: --quick plans a fifth of the catalogue, a smoke test without the target (which is for 10,000).
QUICK_ASSETS = 2_000


def run(ctx: Context) -> list[Figure]:
    store = ctx.open_store()
    registry = default_registry()
    count = ctx.repeats(ASSETS, QUICK_ASSETS)
    assets = [hashlib.sha256(f"bench asset {i}".encode()).hexdigest() for i in range(count)]
    _insert_catalogue(store, assets)
    keys = [v.key for v in plan(store, registry, assets).values]

    def planning() -> None:
        the_plan = plan(store, registry, assets)
        if the_plan.missing or len(the_plan.stored) != len(keys):
            raise BenchError(
                f"planning a stored catalogue found {len(the_plan.missing)} missing, {len(the_plan.stored)} stored"
            )

    def bulk_query() -> None:
        if len(store.stored_keys(keys)) != len(keys):
            raise BenchError("stored_keys did not find every key")

    samples = side_by_side(planning, bulk_query, repeats=ctx.repeats(9, 3))
    return [
        Figure(
            name="plan",
            description=f"plan {count:,} fully stored assets x {len(registry)} built-in features "
            f"({len(keys):,} keys), 0 missing" + ("" if count == ASSETS else f"; the target is for {ASSETS:,}"),
            target_label="orchestrator.execution.planner.plan(store, registry, assets)",
            baseline_label="store.stored_keys(the same keys): the one bulk query",
            samples=samples,
            max_seconds=2.0 if count == ASSETS else None,
            memory_target=ctx.memory(planning),
            memory_baseline=ctx.memory(bulk_query),
            notes={"assets": count, "keys": len(keys), "features": list(registry.order)},
        )
    ]


def _insert_catalogue(store: Store, assets: list[str]) -> None:
    """Asset rows, and a value row for every key the planner wants, as fast as Postgres takes them."""
    empty = plan(store, default_registry(), assets)
    if len(empty.missing) != len(empty.values):
        raise BenchError("the benchmark database is not empty")
    now = datetime.now(UTC)
    asset_rows = [{"id": a, "size": 0, "blob_key": blob_key(a)} for a in assets]
    value_rows = [
        {
            "key": v.key,
            "asset_id": v.asset,
            "feature": v.feature,
            "version": v.spec.version,
            "params": dict(v.spec.params),
            "model_fingerprint": v.model_fingerprint,
            "code_fingerprint": v.spec.fingerprint,
            "payload_kind": payload_kind_of(v.spec.output),
            "blob_key": blob_key(v.key),
            "meta": {},
            "shape": None,
            "dtype": None,
            "bytes": 0,
            "checksum": v.key,
            "started_at": now,
            "finished_at": now,
            "duration_s": 0.0,
            "worker": "bench",
            "device": "cpu",
        }
        for v in empty.values
    ]
    store.insert_rows(asset_rows, value_rows)
