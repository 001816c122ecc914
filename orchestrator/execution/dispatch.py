"""Where a trigger's plan runs: in this process, or on the Prefect work pools.

:func:`dispatcher` is the one place the choice is made, from ``MEDIAMESH_EXECUTION``: ``local`` (the default)
computes in this process; ``pools`` hands each asset's runnable stages to the CPU and GPU pools for
``mediamesh worker`` processes. ``mediamesh ingest``, ``Mesh.ingest``, the HTTP API's events and
``mediamesh watch`` all go through it, each with the one plan its trigger made.

:func:`runnable` is the one rule for what a pool may compute of an asset now, and :func:`held_back` the one
rule for what no dispatch hands out: values that failed for good (a failure retrying can help with is
handed out again) and values a live worker holds the claim of.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mediamesh.features.spec import FeatureSpec
from mediamesh.orchestrator.execution.engine import AssetReport, Progress, RunReport
from mediamesh.orchestrator.execution.planner import Plan, PlannedValue
from mediamesh.store import Store

if TYPE_CHECKING:
    from mediamesh.orchestrator.mesh import Mesh

__all__ = [
    "POOLS",
    "Dispatcher",
    "LocalRuns",
    "Pool",
    "PoolRuns",
    "PoolSettings",
    "dispatcher",
    "held_back",
    "pool_of",
    "runnable",
]

log = logging.getLogger("mediamesh.dispatch")

Pool = Literal["cpu", "gpu"]
POOLS: tuple[Pool, ...] = ("cpu", "gpu")


class PoolSettings(BaseSettings):
    """Where work goes, from ``MEDIAMESH_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="MEDIAMESH_", extra="ignore")

    execution: Literal["local", "pools"] = Field(
        default="local", description="local: compute in the process that asks; pools: submit to the work pools."
    )
    cpu_pool: str = Field(default="mediamesh-cpu", description="The Prefect work pool of CPU workers.")
    gpu_pool: str = Field(default="mediamesh-gpu", description="The Prefect work pool of GPU workers.")
    dispatch_window_s: float = Field(default=30.0, gt=0, description="Repeats of a stage within this are one run.")
    worker_name: str | None = Field(default=None, description="Set by `mediamesh worker` for its flow runs.")
    worker_threads: int = Field(default=1, ge=1, description="Values a flow run computes at once.")

    def pool_name(self, pool: Pool) -> str:
        return self.gpu_pool if pool == "gpu" else self.cpu_pool


def pool_of(spec: FeatureSpec) -> Pool:
    return "gpu" if spec.resources == "gpu" else "cpu"


def runnable(the_plan: Plan, asset: str, pool: Pool, leave: Collection[str] = ()) -> tuple[PlannedValue, ...]:
    """What ``pool`` can compute of ``asset`` now: missing values of its kind, not in ``leave``, whose
    upstream values (inputs and media gate) are stored or come earlier in the same stage."""
    ready = set(the_plan.stored)
    out: list[PlannedValue] = []
    for value in the_plan.missing:  # dependency order
        if value.asset != asset or value.key in ready or value.key in leave or pool_of(value.spec) != pool:
            continue
        if all(k in ready for k in value.upstream_keys):
            out.append(value)
            ready.add(value.key)
    return tuple(out)


def held_back(store: Store, assets: Collection[str]) -> set[str]:
    """Keys no dispatch hands out: values whose failure retrying cannot help, and values a live worker holds."""
    leave: set[str] = set()
    for asset in assets:
        leave.update(a.value_key for a in store.attempts_for(asset) if not a.retryable)
        leave.update(c["value_key"] for c in store.live_claims(asset))
    return leave


class Dispatcher(Protocol):
    def run(
        self,
        mesh: Mesh,
        the_plan: Plan,
        *,
        trigger: str,
        names: Mapping[str, str] | None = None,
        progress: Progress | None = None,
        on_server_start: Callable[[], None] | None = None,
    ) -> RunReport:
        """Have the plan's missing values computed; a report of what was computed, or queued on the pools."""
        ...

    def submit(self, mesh: Mesh, the_plan: Plan, *, trigger: str, names: Mapping[str, str]) -> list[str]:
        """Queue the plan's missing values and return at once; the assets work was queued for."""
        ...

    def shutdown(self) -> None:
        """Wait for queued local work; nothing for pools, whose workers go on without us."""
        ...


def dispatcher(settings: PoolSettings | None = None) -> Dispatcher:
    """The dispatcher ``MEDIAMESH_EXECUTION`` chooses."""
    settings = settings or PoolSettings()
    return PoolRuns(settings) if settings.execution == "pools" else LocalRuns()


class PoolRuns:
    """Hands runnable stages to the work pools (idempotent within ``MEDIAMESH_DISPATCH_WINDOW_S``)."""

    def __init__(self, settings: PoolSettings) -> None:
        self.settings = settings

    def run(
        self,
        mesh: Mesh,
        the_plan: Plan,
        *,
        trigger: str,
        names: Mapping[str, str] | None = None,
        progress: Progress | None = None,
        on_server_start: Callable[[], None] | None = None,
    ) -> RunReport:
        from mediamesh.orchestrator.execution.workers import submit_stages

        report = RunReport("", {a: AssetReport(a) for a in dict.fromkeys(v.asset for v in the_plan.values)})
        for v in the_plan.reused:
            report.assets[v.asset].reused += 1
        for s in submit_stages(mesh, the_plan, trigger=trigger, settings=self.settings):
            report.assets[s.asset].queued += s.values
            report.run_id = report.run_id or s.flow_run_id
        return report

    def submit(self, mesh: Mesh, the_plan: Plan, *, trigger: str, names: Mapping[str, str]) -> list[str]:
        from mediamesh.orchestrator.execution.workers import submit_stages

        submitted = submit_stages(mesh, the_plan, trigger=trigger, settings=self.settings)
        for s in submitted:
            log.info(
                "%s: %d value(s) of %s to the %s pool (flow run %s)",
                trigger,
                s.values,
                s.asset[:12],
                s.pool,
                s.flow_run_id,
            )
        return list(dict.fromkeys(s.asset for s in submitted))

    def shutdown(self) -> None:
        return None


class LocalRuns:
    """Computes in this process: ``run`` now, ``submit`` one plan at a time on a background thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self._executor: ThreadPoolExecutor | None = None

    def run(
        self,
        mesh: Mesh,
        the_plan: Plan,
        *,
        trigger: str,
        names: Mapping[str, str] | None = None,
        progress: Progress | None = None,
        on_server_start: Callable[[], None] | None = None,
    ) -> RunReport:
        return mesh.run(
            the_plan, trigger=trigger, names=dict(names or {}), progress=progress, on_server_start=on_server_start
        )

    def submit(self, mesh: Mesh, the_plan: Plan, *, trigger: str, names: Mapping[str, str]) -> list[str]:
        """Queue the plan unless every value it lacks is queued already; the assets it was queued for."""
        with self._lock:
            fresh = [v for v in the_plan.missing if v.key not in self._queued]
            if not fresh:
                return []
            self._queued.update(v.key for v in the_plan.missing)
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mediamesh-runs")
            self._executor.submit(self._run, mesh, the_plan, dict(names), trigger)
        return list(dict.fromkeys(v.asset for v in fresh))

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _run(self, mesh: Mesh, the_plan: Plan, names: dict[str, str], trigger: str) -> None:
        with self._lock:  # from now on, a new announcement of these values queues another run
            self._queued.difference_update(v.key for v in the_plan.missing)
        try:
            # Values an earlier run stored since this plan was made are found under their claims and reused.
            report = self.run(mesh, the_plan, trigger=trigger, names=names)
        except Exception:  # the caller was answered already; the log and `status` are where this shows
            log.exception("computing %d announced asset(s) failed", len({v.asset for v in the_plan.missing}))
            return
        log.info(
            "%s run %s: computed %d, reused %d, failed %d",
            trigger,
            report.run_id[:8],
            report.computed,
            report.reused,
            report.failed,
        )


def stage_plan(the_plan: Plan, todo: tuple[PlannedValue, ...]) -> Plan:
    """The plan with only ``todo`` missing: what one flow run of a pool computes."""
    return dataclasses.replace(the_plan, missing=todo)
