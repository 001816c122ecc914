"""Per-value orchestration overhead: running N trivial values through the engine against calling the feature.

The feature is defined here and does nothing but return a tiny JSON document, so whatever the engine adds
is overhead: its Prefect flow run, and for each value taking the value's claim, re-checking the store, loading
the source, calling the feature and storing the blob, row and lineage. Three sides run interleaved in one
process, each round on values none has seen (a new ``salt`` param for fixed assets):

- **bare**: the feature called N times, the sources in hand;
- **store**: the engine's per-value body without Prefect, in a loop, after its one look-up of the run's assets
  (``store.assets_by_id``): claim, re-check, ``store.source``, the call, ``store.put_value``;
- **mesh**: ``orchestrator.execution.engine.execute`` of the plan of those N missing values, against the managed
  ``prefect server start`` the mesh uses (the run's, started before timing and stopped at the end).

Per-value overhead is (mesh − bare) / N; the store's part is (store − bare) / N and Prefect's the rest,
(mesh − store) / N. Each is taken per round, then the median over rounds. The two parts' rows have the
overhead as their baseline, so their ratios are shares of it.

Two plan shapes, on the same store and server: one value per asset (N assets, the ``orchestration`` rows, which
carry the target), and ``PER_ASSET`` values per asset (N / PER_ASSET assets, ``orchestration-grouped``: the same
``stamp`` under ``PER_ASSET`` names), as a title's many features are.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from typing import Any, Self

from bench.context import Context
from bench.harness import BenchError, Figure, Memory, Samples, interleaved
from mediamesh.features import FeatureSpec, JsonValue, Registry, SourceMedia, feature, spec_of
from mediamesh.orchestrator.execution.engine import execute, new_value, worker_id
from mediamesh.orchestrator.execution.planner import Plan, plan
from mediamesh.store import AssetRecord, Store

__all__ = ["run"]

TARGET_S = 0.010  # issue 16: at most 10 ms of orchestration per value, against a bare call in the same run
#: The grouped variant: this many features an asset, so N values belong to N / PER_ASSET assets.
PER_ASSET = 10


@dataclass(frozen=True)
class Stamp(JsonValue):
    asset: str
    salt: int

    def to_json(self) -> dict[str, Any]:
        return {"asset": self.asset, "salt": self.salt}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(asset=data["asset"], salt=data["salt"])


@feature(version="1")
def stamp(source: SourceMedia, *, salt: int = 0) -> Stamp:
    """A trivial feature: which asset, under which param."""
    return Stamp(source.asset, salt)


STAMP = spec_of(stamp)


def run(ctx: Context) -> list[Figure]:
    if STAMP is None:  # pragma: no cover - @feature always attaches a spec
        raise BenchError("stamp is not a feature")
    n = ctx.repeats(50, 20)
    store = ctx.open_store()
    assets = _register_assets(store, ctx, n)
    api_url = ctx.services.prefect().url
    repeats = ctx.repeats(9, 3)
    spread = _variant(ctx, store, api_url, STAMP, assets, 1, repeats)
    grouped = _variant(ctx, store, api_url, STAMP, assets[: n // PER_ASSET], PER_ASSET, repeats)
    what = f"{n} values of a trivial feature (1 per asset, new param each round)"
    notes = {"tasks": n, **spread.notes}
    return [
        Figure(
            name="orchestration",
            description=f"per-value overhead, (engine.execute − bare calls) / N, {what}",
            target_label="execution.engine.execute(store, registry, plan, ...) per value, minus the bare call",
            baseline_label="stamp(source, salt=...): the bare call, per value",
            samples=Samples(spread.overhead, spread.per_call),
            max_seconds=TARGET_S,
            memory_target=spread.memory_mesh,
            memory_baseline=spread.memory_bare,
            notes=notes,
        ),
        Figure(
            name="orchestration-store",
            description=f"the store's part of it: the value bodies without Prefect, in a loop, minus the bare "
            f"calls, / N, {what}",
            target_label="claim, re-check, store.source, the call, store.put_value; per value, minus the bare call",
            baseline_label="the per-value overhead (the orchestration row): ratio = the store's share",
            samples=Samples(spread.store_part, spread.overhead),
            notes={"tasks": n},
        ),
        Figure(
            name="orchestration-prefect",
            description=f"Prefect's part of it: (engine.execute − the same value bodies in a loop) / N, {what}",
            target_label="engine.execute per value, minus the value body run directly",
            baseline_label="the per-value overhead (the orchestration row): ratio = Prefect's share",
            samples=Samples(spread.prefect_part, spread.overhead),
            notes={"tasks": n},
        ),
        Figure(
            name="orchestration-grouped",
            description=f"per-value overhead as in the orchestration row, {n} values of {n // PER_ASSET} assets: "
            f"{PER_ASSET} trivial features (stamp0..stamp{PER_ASSET - 1}) an asset, new param each round; "
            f"the store's part {grouped.notes['store_part_ms_median']:.1f} ms, Prefect's "
            f"{grouped.notes['prefect_part_ms_median']:.1f} ms",
            target_label="execution.engine.execute(store, registry, plan, ...) per value, minus the bare call",
            baseline_label="the feature called directly: the bare call, per value",
            samples=Samples(grouped.overhead, grouped.per_call),
            memory_target=grouped.memory_mesh,
            memory_baseline=grouped.memory_bare,
            notes={"tasks": n, **grouped.notes},
        ),
    ]


@dataclass(frozen=True)
class _Overhead:
    """One plan shape's rounds: per-value overhead, its two parts and the bare call, in seconds."""

    overhead: list[float]
    store_part: list[float]
    prefect_part: list[float]
    per_call: list[float]
    memory_mesh: Memory | None
    memory_bare: Memory | None
    notes: dict[str, Any]


def _variant(
    ctx: Context, store: Store, api_url: str, spec: FeatureSpec, assets: list[str], features: int, repeats: int
) -> _Overhead:
    """Engine, value bodies in a loop and bare calls, interleaved, for ``features`` copies of ``spec`` (named
    ``stamp0``, ``stamp1``, ... when more than one) on each of ``assets``."""
    n = len(assets) * features
    sources = {a: store.source(a) for a in assets}
    worker = worker_id()
    salts = count(1)
    current: list[Plan] = []

    def fresh() -> None:
        # A new param value: N keys that were never planned, let alone stored.
        salt = next(salts)
        if features == 1:
            specs = [spec.replace(params={"salt": salt})]
        else:
            specs = [spec.replace(name=f"stamp{i}", params={"salt": salt}) for i in range(features)]
        the_plan = plan(store, Registry(specs), assets)
        if len(the_plan.missing) != n:
            raise BenchError(f"expected {n} missing values, planned {len(the_plan.missing)}")
        current[:] = [the_plan]

    def bare() -> None:
        for value in current[0].missing:
            value.spec.fn(sources[value.asset], **value.spec.params)

    def store_direct() -> None:
        found = store.assets_by_id(value.asset for value in current[0].missing)  # the engine's one lookup a run
        for value in current[0].missing:
            _compute_and_store(store, value, worker, found[value.asset])

    def mesh() -> None:
        the_plan = current[0]
        registry = Registry(list({v.spec.name: v.spec for v in the_plan.missing}.values()))
        report = execute(store, registry, the_plan, trigger="bench", api_url=api_url)
        if report.computed != n or report.failed:
            raise BenchError(f"the engine computed {report.computed} of {n} values, {report.failed} failed")

    mesh_s, store_s, bare_s = interleaved([mesh, store_direct, bare], repeats=repeats, before_each=fresh)
    overhead = [(m - b) / n for m, b in zip(mesh_s, bare_s, strict=True)]
    store_part = [(s - b) / n for s, b in zip(store_s, bare_s, strict=True)]
    prefect_part = [(m - s) / n for m, s in zip(mesh_s, store_s, strict=True)]

    def with_fresh(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            fresh()
            fn()

        return run

    return _Overhead(
        overhead=overhead,
        store_part=store_part,
        prefect_part=prefect_part,
        per_call=[b / n for b in bare_s],
        memory_mesh=ctx.memory(with_fresh(mesh)),
        memory_bare=ctx.memory(with_fresh(bare)),
        notes={
            "assets": len(assets),
            "features_per_asset": features,
            "overhead_ms_median": 1e3 * statistics.median(overhead),
            "store_part_ms_median": 1e3 * statistics.median(store_part),
            "prefect_part_ms_median": 1e3 * statistics.median(prefect_part),
            "mesh_wall_s": mesh_s,
            "store_wall_s": store_s,
            "bare_wall_s": bare_s,
        },
    )


def _register_assets(store: Store, ctx: Context, n: int) -> list[str]:
    """N tiny distinct files as assets: the feature reads nothing, so their bytes do not matter."""
    folder = ctx.workdir / "assets"
    folder.mkdir()
    assets = []
    for i in range(n):
        path = folder / f"asset-{i}.bin"
        path.write_bytes(f"mediamesh orchestration bench asset {i}\n".encode())
        asset, _ = store.register_asset(path, name=path.name)
        assets.append(asset.id)
    return assets


def _compute_and_store(store: Store, value: Any, worker: str, asset: AssetRecord) -> None:
    """What the engine does for one value whose only input is the source, without Prefect."""
    spec = value.spec
    with store.claim(value.key, asset_id=value.asset, feature=spec.name, version=spec.version, worker=worker) as claim:
        if claim.stored:
            raise BenchError(f"value {value.key[:12]} was already stored")
        started = datetime.now(UTC)
        result = spec.fn(store.source(asset.id, asset=asset), **spec.params)
        store.put_value(
            new_value(value, started=started, worker=worker, device="cpu"),
            result,
        )
