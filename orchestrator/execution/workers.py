"""Distributed execution: two Prefect work pools, the deployment that computes values, and the workers.

The pools are ``mediamesh-cpu`` and ``mediamesh-gpu`` (process pools), each with one deployment of the
``mediamesh-compute`` flow. A flow run takes one asset and one pool and computes a *stage*: every value
the asset lacks whose feature runs on that pool (``resources="gpu"`` on the GPU pool, the rest on the CPU
pool) and whose inputs are stored or computed earlier in the same stage. When it ends, it hands the asset
to whichever pool can now go on (the CPU stage's shots let the GPU stage's encoders start; their
embeddings let the CPU stage's ``fused`` start), so one announcement carries an asset through the graph
with no other call.

Submitting is idempotent for ``MEDIAMESH_DISPATCH_WINDOW_S`` seconds: the same stage announced again
within the window is the same flow run (a Prefect idempotency key). After the window a repeat makes a run
that finds everything stored or claimed and does nothing. Values that failed for good are left alone
(``mediamesh backfill`` retries them; a failure retrying can help with is handed out again); values another
worker holds the claim of are left to it. A worker
killed mid-value holds nothing any more (the claim is a Postgres session lock), so the next dispatch of
that asset (``mediamesh watch`` reconciles periodically) hands the value to another worker. What a pool may
compute now, and what no dispatch hands out, are ``dispatch.runnable`` and ``dispatch.held_back``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Collection
from typing import Any

from prefect import flow

from mediamesh.features.errors import MediameshError, UnavailableError
from mediamesh.features.processes import bind_to_parent
from mediamesh.orchestrator.execution.dispatch import POOLS, Pool, PoolSettings, held_back, runnable, stage_plan
from mediamesh.orchestrator.execution.engine import execute
from mediamesh.orchestrator.execution.planner import Plan, plan
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.orchestrator.services.prefect_server import prefect_api_url

__all__ = [
    "FLOW_NAME",
    "PoolError",
    "Submitted",
    "compute_values",
    "ensure_deployments",
    "ensure_pools",
    "run_worker",
    "submit_stages",
    "wait_for_workers",
]

log = logging.getLogger("mediamesh.workers")

FLOW_NAME = "mediamesh-compute"
ENTRYPOINT = "mediamesh.orchestrator.execution.workers.compute_values"


@dataclasses.dataclass(frozen=True)
class Submitted:
    """A stage handed to a pool: the flow run that will compute ``values`` of ``asset``."""

    asset: str
    pool: Pool
    values: int
    flow_run_id: str


class PoolError(UnavailableError):
    """The Prefect API refused or could not be reached."""


def submit_stages(
    mesh: Mesh,
    the_plan: Plan,
    *,
    trigger: str,
    pools: Collection[Pool] = POOLS,
    settings: PoolSettings | None = None,
) -> list[Submitted]:
    """Hand each planned asset's runnable stages to the pools; the flow runs made (or found, within the window)."""
    settings = settings or PoolSettings()
    if not the_plan.missing:
        return []
    assets = list(dict.fromkeys(v.asset for v in the_plan.missing))
    leave = held_back(mesh.store, assets)
    wanted = [
        (asset, pool, todo)
        for asset in assets
        for pool in POOLS
        if pool in pools and (todo := runnable(the_plan, asset, pool, leave))
    ]
    if not wanted:
        return []
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    window = int(time.time() // settings.dispatch_window_s)
    submitted: list[Submitted] = []
    try:
        api_url = prefect_api_url(mesh.home)
        with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
            deployments = ensure_deployments(client, settings)
            for asset, pool, todo in wanted:
                digest = hashlib.sha256("\n".join(v.key for v in todo).encode()).hexdigest()[:16]
                run = client.create_flow_run_from_deployment(
                    deployments[pool],
                    parameters={"asset": asset, "pool": pool, "trigger": trigger},
                    name=f"{pool}-{asset[:12]}-{digest[:6]}",
                    tags=[f"asset:{asset[:12]}", f"pool:{pool}", trigger],
                    idempotency_key=f"{pool}:{asset}:{digest}:{window}",
                )
                submitted.append(Submitted(asset, pool, len(todo), str(run.id)))
    except MediameshError:
        raise
    except Exception as exc:  # httpx and Prefect errors alike: the API could not take the work
        raise PoolError(f"cannot submit work to the Prefect API: {type(exc).__name__}: {exc}") from exc
    return submitted


_ensured: dict[tuple[str, str, str], dict[Pool, Any]] = {}
# Concurrent requests (50 duplicate events at once) would each upsert the same deployments; one does it.
_ensuring = threading.Lock()


def ensure_pools(settings: PoolSettings | None = None) -> dict[Pool, Any]:
    """Create the work pools and their deployments at ``PREFECT_API_URL``, unless they exist."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return ensure_deployments(client, settings)


def ensure_deployments(client: Any, settings: PoolSettings | None = None) -> dict[Pool, Any]:
    """Create the work pools and the compute deployment in each, unless they exist; their deployment ids."""
    settings = settings or PoolSettings()
    cache_key = (str(client.api_url), settings.cpu_pool, settings.gpu_pool)
    with _ensuring:
        if cache_key not in _ensured:
            _ensured[cache_key] = _create_deployments(client, settings)
        return _ensured[cache_key]


def _create_deployments(client: Any, settings: PoolSettings) -> dict[Pool, Any]:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.utilities.callables import parameter_schema

    flow_id = client.create_flow_from_name(FLOW_NAME)
    schema = parameter_schema(compute_values.fn).model_dump_for_openapi()
    ids: dict[Pool, Any] = {}
    for pool in POOLS:
        name = settings.pool_name(pool)
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            description = f"mediamesh {pool.upper()} workers: features with resources={pool!r}"
            if pool == "cpu":
                description = "mediamesh CPU workers: every feature not marked resources='gpu'"
            with contextlib.suppress(ObjectAlreadyExists):  # another worker made it first
                client.create_work_pool(WorkPoolCreate(name=name, type="process", description=description))
        ids[pool] = client.create_deployment(
            flow_id=flow_id,
            name=name,
            work_pool_name=name,
            entrypoint=ENTRYPOINT,
            parameter_openapi_schema=schema,
            description=f"Compute the {pool.upper()} stage of an asset: what it lacks that {name} runs.",
            tags=["mediamesh"],
        )
    return ids


@flow(name=FLOW_NAME, persist_result=False, log_prints=False)
def compute_values(asset: str, pool: Pool = "cpu", trigger: str = "dispatch") -> dict[str, int]:
    """One stage of one asset on this pool's worker; then the next stages go to their pools."""
    # A flow run is the worker's child: it dies with the worker, even a SIGKILLed one.
    bind_to_parent(int(os.environ.get("MEDIAMESH_WORKER_PID", "0")))
    settings = PoolSettings()
    with Mesh.open() as mesh:
        the_plan = plan(mesh.store, mesh.registry, [asset], mesh.default_targets())
        todo = runnable(the_plan, asset, pool, held_back(mesh.store, [asset]))
        report = execute(
            mesh.store,
            mesh.registry,
            stage_plan(the_plan, todo),
            trigger=f"{trigger}-{pool}",
            max_workers=settings.worker_threads,
        )
        # What this stage stored may let either pool go on (a failure leaves its dependents alone); the
        # same plan, with what is stored now, says what.
        after = dataclasses.replace(the_plan, stored=the_plan.stored | report.done)
        following = submit_stages(mesh, after, trigger=trigger, settings=settings)
    for s in following:
        log.info("handed %d value(s) of %s to the %s pool", s.values, asset[:12], s.pool)
    return {"computed": report.computed, "reused": report.reused, "failed": report.failed}


def wait_for_workers(api_url: str, wanted: dict[str, set[str] | int], timeout: float = 120.0) -> bool:
    """Wait until each pool has the named workers (or at least that many); False on timeout."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + timeout
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # a pool appears when its first worker creates it
                # Prefect 3.8's sync client sends limit=None unless given one, which its server refuses.
                found = {
                    pool: {w.name for w in client.read_workers_for_work_pool(pool, limit=100, offset=0)}
                    for pool in wanted
                }
                if all(
                    names <= found[pool] if isinstance(names, set) else len(found[pool]) >= names
                    for pool, names in wanted.items()
                ):
                    return True
            time.sleep(0.2)
    return False


def worker_name(pool: Pool) -> str:
    return f"{pool}-{socket.gethostname()}-{os.getpid()}"


def run_worker(
    pool: Pool,
    *,
    api_url: str,
    limit: int,
    name: str | None = None,
    threads: int = 1,
    poll_s: float = 2.0,
    healthcheck_port: int | None = None,
    settings: PoolSettings | None = None,
) -> None:
    """Serve ``pool`` until interrupted: a Prefect process worker that runs ``limit`` flow runs at once.

    The worker's environment (``MEDIAMESH_*`` included) is its flow runs' environment; ``name`` and
    ``threads`` reach them as ``MEDIAMESH_WORKER_NAME`` and ``MEDIAMESH_WORKER_THREADS``.
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_WORKER_QUERY_SECONDS,
        PREFECT_WORKER_WEBSERVER_PORT,
        temporary_settings,
    )
    from prefect.workers.process import ProcessWorker

    settings = settings or PoolSettings()
    name = name or worker_name(pool)
    # Flow runs are subprocesses that inherit this environment, and import what this process can import
    # from its working directory (feature modules named in MEDIAMESH_FEATURES, say).
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)
    os.environ["PREFECT_API_URL"] = api_url
    os.environ["MEDIAMESH_WORKER_NAME"] = name
    os.environ["MEDIAMESH_WORKER_PID"] = str(os.getpid())
    os.environ["MEDIAMESH_WORKER_THREADS"] = str(threads)
    updates: dict[Any, Any] = {PREFECT_API_URL: api_url, PREFECT_WORKER_QUERY_SECONDS: poll_s}
    if healthcheck_port is not None:
        updates[PREFECT_WORKER_WEBSERVER_PORT] = healthcheck_port
    with temporary_settings(updates=updates):
        with get_client(sync_client=True) as client:
            ensure_deployments(client, settings)

        async def serve() -> None:
            worker = ProcessWorker(work_pool_name=settings.pool_name(pool), name=name, limit=limit)
            await worker.start(with_healthcheck=healthcheck_port is not None, printer=log.info)

        asyncio.run(serve())
