"""Where announced work goes: computed here on a background thread, or handed to the Prefect work pools.

``dispatcher()`` reads ``MEDIAMESH_EXECUTION``: ``local`` (the default) computes in this process, one run
at a time; ``pools`` submits each asset's ready stages to the CPU and GPU pools for ``mediamesh worker``
processes to compute. The API's event endpoint and ``mediamesh watch`` both go through it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from mediamesh.orchestrator.execution.planner import plan
from mediamesh.orchestrator.execution.workers import PoolSettings, submit_stages
from mediamesh.orchestrator.mesh import Mesh

__all__ = ["Dispatcher", "LocalRuns", "PoolRuns", "dispatcher"]

log = logging.getLogger("mediamesh.dispatch")


class Dispatcher(Protocol):
    def submit(self, mesh: Mesh, assets: Sequence[str], names: dict[str, str], *, trigger: str) -> list[str]:
        """Have what ``assets`` lack computed; the assets work was queued for."""
        ...

    def shutdown(self) -> None:
        """Wait for queued local work; nothing for pools, whose workers go on without us."""
        ...


def dispatcher(settings: PoolSettings | None = None) -> Dispatcher:
    settings = settings or PoolSettings()
    return PoolRuns(settings) if settings.execution == "pools" else LocalRuns()


class PoolRuns:
    """Hands ready stages to the work pools (idempotent within ``MEDIAMESH_DISPATCH_WINDOW_S``)."""

    def __init__(self, settings: PoolSettings) -> None:
        self.settings = settings

    def submit(self, mesh: Mesh, assets: Sequence[str], names: dict[str, str], *, trigger: str) -> list[str]:
        submitted = submit_stages(mesh, assets, trigger=trigger, settings=self.settings)
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
    """Computes what announced assets lack, one run at a time, on a background thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, mesh: Mesh, assets: Sequence[str], names: dict[str, str], *, trigger: str) -> list[str]:
        """Queue a run for ``assets`` not already waiting for one; the assets queued."""
        with self._lock:
            fresh = [a for a in dict.fromkeys(assets) if a not in self._queued]
            if not fresh:
                return []
            self._queued.update(fresh)
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mediamesh-runs")
            self._executor.submit(self._run, mesh, fresh, names, trigger)
        return fresh

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _run(self, mesh: Mesh, assets: list[str], names: dict[str, str], trigger: str) -> None:
        with self._lock:  # from now on, a new announcement of these assets queues another run
            self._queued.difference_update(assets)
        try:
            # Planned afresh: an earlier run may have computed some of it since the work was queued.
            report = mesh.run(
                plan(mesh.store, mesh.registry, assets, mesh.default_targets()), trigger=trigger, names=names
            )
        except Exception:  # the caller was answered already; the log and `status` are where this shows
            log.exception("computing %d announced asset(s) failed", len(assets))
            return
        log.info(
            "%s run %s: computed %d, reused %d, failed %d",
            trigger,
            report.run_id[:8],
            report.computed,
            report.reused,
            report.failed,
        )
