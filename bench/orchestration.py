"""Per-task orchestration overhead: running N trivial values through the engine against calling the feature.

The feature is defined here and does nothing but return a tiny JSON document, so whatever the engine adds
is overhead: one Prefect flow run with a task per value, each taking the value's claim, re-checking the
store, loading the source, calling the feature and storing the blob, row and lineage. Three sides run
interleaved in one process, each round on values none has seen (a new ``salt`` param for N fixed assets):

- **bare**: ``stamp(source, salt=...)`` called N times, the sources in hand;
- **store**: the engine's task body without Prefect, in a loop: claim, re-check, ``store.source``, the call,
  ``store.put_value``;
- **mesh**: ``orchestrator.execution.engine.execute`` of the plan of those N missing values, against the managed
  ``prefect server start`` the mesh uses (started once, before timing, and stopped at the end).

Per-task overhead is (mesh − bare) / N; the store's part is (store − bare) / N and Prefect's the rest,
(mesh − store) / N. Each is taken per round, then the median over rounds. The two parts' rows have the
overhead as their baseline, so their ratios are shares of it.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any, Self

from bench.context import Context
from bench.harness import BenchError, Figure, Samples, interleaved, measure_memory
from mediamesh.features import JsonValue, Registry, SourceMedia, feature, spec_of
from mediamesh.orchestrator.execution.engine import execute, new_value, worker_id
from mediamesh.orchestrator.execution.planner import Plan, plan
from mediamesh.orchestrator.services.prefect_server import prefect_api_url, stop_prefect_server
from mediamesh.store import Store

__all__ = ["run"]

TARGET_S = 0.025  # issue 5: at most 25 ms of orchestration per task


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
    sources = [store.source(a) for a in assets]
    api_url = _prefect_api(ctx)
    worker = worker_id()
    salts = count(1)
    current: list[Plan] = []

    def fresh() -> None:
        # A new param value: N keys that were never planned, let alone stored.
        registry = Registry([STAMP.replace(params={"salt": next(salts)})])
        the_plan = plan(store, registry, assets)
        if len(the_plan.missing) != n:
            raise BenchError(f"expected {n} missing values, planned {len(the_plan.missing)}")
        current[:] = [the_plan]

    def bare() -> None:
        salt = current[0].missing[0].spec.params["salt"]
        for source in sources:
            stamp(source, salt=salt)

    def store_direct() -> None:
        for value in current[0].missing:
            _compute_and_store(store, value, worker)

    def mesh() -> None:
        the_plan = current[0]
        registry = Registry([the_plan.missing[0].spec])
        report = execute(store, registry, the_plan, trigger="bench", api_url=api_url)
        if report.computed != n or report.failed:
            raise BenchError(f"the engine computed {report.computed} of {n} values, {report.failed} failed")

    repeats = ctx.repeats(9, 3)
    mesh_s, store_s, bare_s = interleaved([mesh, store_direct, bare], repeats=repeats, before_each=fresh)
    overhead = [(m - b) / n for m, b in zip(mesh_s, bare_s, strict=True)]
    store_part = [(s - b) / n for s, b in zip(store_s, bare_s, strict=True)]
    prefect_part = [(m - s) / n for m, s in zip(mesh_s, store_s, strict=True)]
    per_call = [b / n for b in bare_s]

    def with_fresh(fn: Any) -> Any:
        return lambda: (fresh(), fn())

    notes = {
        "tasks": n,
        "max_workers": os.cpu_count() or 2,
        "overhead_ms_median": 1e3 * statistics.median(overhead),
        "store_part_ms_median": 1e3 * statistics.median(store_part),
        "prefect_part_ms_median": 1e3 * statistics.median(prefect_part),
        "mesh_wall_s": mesh_s,
        "store_wall_s": store_s,
        "bare_wall_s": bare_s,
    }
    what = f"{n} values of a trivial feature (1 per asset, new param each round)"
    return [
        Figure(
            name="orchestration",
            description=f"per-task overhead, (engine.execute − bare calls) / N, {what}; one Prefect flow, "
            f"a task per value, {notes['max_workers']} worker threads",
            target_label="execution.engine.execute(store, registry, plan, ...) per task, minus the bare call",
            baseline_label="stamp(source, salt=...): the bare call, per value",
            samples=Samples(overhead, per_call),
            max_seconds=TARGET_S,
            memory_target=measure_memory(with_fresh(mesh)),
            memory_baseline=measure_memory(with_fresh(bare)),
            notes=notes,
        ),
        Figure(
            name="orchestration-store",
            description=f"the store's part of it: the task body without Prefect, in a loop, minus the bare "
            f"calls, / N, {what}",
            target_label="claim, re-check, store.source, the call, store.put_value; per task, minus the bare call",
            baseline_label="the per-task overhead (the orchestration row): ratio = the store's share",
            samples=Samples(store_part, overhead),
            notes={"tasks": n},
        ),
        Figure(
            name="orchestration-prefect",
            description=f"Prefect's part of it: (engine.execute − the same task bodies in a loop) / N, {what}",
            target_label="engine.execute per task, minus the task body run directly",
            baseline_label="the per-task overhead (the orchestration row): ratio = Prefect's share",
            samples=Samples(prefect_part, overhead),
            notes={"tasks": n},
        ),
    ]


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


def _prefect_api(ctx: Context) -> str:
    """The managed Prefect server of a bench home, as ``Mesh.run`` starts it; stopped when the figure is done.

    ``PREFECT_API_URL`` is set aside while it starts, so the figure never measures some other server.
    """
    home = ctx.workdir / "home"
    previous = os.environ.pop("PREFECT_API_URL", None)
    try:
        url = prefect_api_url(home)
    finally:
        if previous is not None:
            os.environ["PREFECT_API_URL"] = previous
    ctx.stack.callback(_stop_prefect, home)
    return url


def _stop_prefect(home: Path) -> None:
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # send buffered run logs while the server is still up
    stop_prefect_server(home)


def _compute_and_store(store: Store, value: Any, worker: str) -> None:
    """The engine's task body (``orchestrator.execution.engine._Runner._compute``) for a value whose only input is the
    source, without Prefect."""
    spec = value.spec
    with store.claim(value.key, asset_id=value.asset, feature=spec.name, version=spec.version, worker=worker):
        if store.stored_keys([value.key]):
            raise BenchError(f"value {value.key[:12]} was already stored")
        started = datetime.now(UTC)
        [(_, asset)] = value.inputs
        result = spec.fn(store.source(asset), **spec.params)
        store.put_value(
            new_value(value, started=started, worker=worker, device="cpu"),
            result,
        )
