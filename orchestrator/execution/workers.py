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

Workers are warm (``mediamesh worker``, ``WarmWorker``): a Prefect process worker, on the same process pools,
that runs each flow run of the compute deployment on a thread of its own process instead of starting
``python -m prefect.engine`` for it. Runs after the first find the imports, the registry, the open mesh (its
connection pool) and the loaded models (one per configured fingerprint, ``features.models.loaders``) where
the last run left them, so a stage's start costs milliseconds, not the seconds of a fresh interpreter. A worker
looks for its next run as a slot frees (or as another worker takes the run it picked), and while every slot is
taken asks the server only every ``BUSY_POLL_S``. A flow
run dies with its worker because it *is* the worker; a failed run is recorded as failed and the worker goes
on. Stopping the worker gives a run ``STOP_GRACE_S`` to end, then reports it crashed and ends the process
without it, as killing it would: its claims go with its connections and the next dispatch hands its values
out again. What a warm run gives up is isolation: feature code that ends the process (``os._exit``, a crash
in native code) ends the worker and its other runs in the same way. Job variables of the pool (``env``,
``working_dir``) do not apply to warm runs; the worker's own environment and working directory do.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from uuid import UUID

import anyio
import anyio.abc
from prefect import flow
from prefect.client.schemas.objects import FlowRun
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker, ProcessWorkerResult

from mediamesh.features import Registry
from mediamesh.features.errors import MediameshError, UnavailableError
from mediamesh.orchestrator.execution.dispatch import POOLS, Pool, PoolSettings, held_back, runnable, stage_plan
from mediamesh.orchestrator.execution.engine import execute, run_settings
from mediamesh.orchestrator.execution.planner import Plan, plan
from mediamesh.orchestrator.execution.plugins import configured_registry
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.orchestrator.services.prefect_server import prefect_api_url

__all__ = [
    "FLOW_NAME",
    "PoolError",
    "Submitted",
    "WarmWorker",
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
#: Seconds a stopping worker gives a flow run to end before reporting it crashed and ending without it.
STOP_GRACE_S = 3.0
#: Seconds from a run's end (or a run another worker took first) to the worker's next look at its pool's queue.
EARLY_POLL_S = 0.05
#: Seconds between polls of a worker whose slots are all taken (Prefect marks a queue not polled for 60 s not ready).
BUSY_POLL_S = 30.0

# The warm worker this process is, while it serves: its flow runs find their mesh and threads here.
_serving: _WarmProcess | None = None


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
    window = int(time.time() // settings.dispatch_window_s)
    keyed = [(asset, pool, todo, f"{pool}:{asset}:{_digest(todo)}:{window}") for asset, pool, todo in wanted]
    api_url = _api_url(mesh)
    mine, answers = _flights.join(api_url, [key for *_, key in keyed])
    if mine:
        try:
            _create_runs(api_url, settings, trigger, [k for k in keyed if k[3] in mine], mine)
        except BaseException as exc:
            _flights.fail(api_url, mine, exc)
            raise
    return [Submitted(asset, pool, len(todo), answers[key].result()) for asset, pool, todo, key in keyed]


def _api_url(mesh: Mesh) -> str:
    try:
        return prefect_api_url(mesh.home)
    except MediameshError:
        raise
    except Exception as exc:
        raise PoolError(f"cannot reach the Prefect API: {type(exc).__name__}: {exc}") from exc


def _create_runs(
    api_url: str,
    settings: PoolSettings,
    trigger: str,
    keyed: list[tuple[str, Pool, Any, str]],
    answers: dict[str, Future[str]],
) -> None:
    """One flow run per (asset, pool) stage, under its idempotency key; each run's id is its key's answer."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
            deployments = ensure_deployments(client, settings)
            for asset, pool, todo, key in keyed:
                run = client.create_flow_run_from_deployment(
                    deployments[pool],
                    parameters={"asset": asset, "pool": pool, "trigger": trigger},
                    name=f"{pool}-{asset[:12]}-{_digest(todo)[:6]}",
                    tags=[f"asset:{asset[:12]}", f"pool:{pool}", trigger],
                    idempotency_key=key,
                )
                answers[key].set_result(str(run.id))
    except MediameshError:
        raise
    except Exception as exc:  # httpx and Prefect errors alike: the API could not take the work
        raise PoolError(f"cannot submit work to the Prefect API: {type(exc).__name__}: {exc}") from exc


def _digest(todo: Any) -> str:
    """What a stage is: the keys of the values it computes."""
    return hashlib.sha256("\n".join(v.key for v in todo).encode()).hexdigest()[:16]


class _Flights:
    """Submissions in this process, by Prefect API and idempotency key. The first asks Prefect; the same key
    at the same time (fifty duplicate events at once) waits for that answer instead of asking again, and a key
    already answered is answered from here, as Prefect would answer it: the same flow run. A failed submission
    is forgotten, so the next one asks again. The newest answers are kept (each key names its dispatch window).
    """

    KEEP = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[tuple[str, str], Future[str]] = {}

    def join(self, api: str, keys: list[str]) -> tuple[dict[str, Future[str]], dict[str, Future[str]]]:
        """The futures this caller must answer itself (keys nobody asked for yet), and every key's future."""
        mine: dict[str, Future[str]] = {}
        futures: dict[str, Future[str]] = {}
        with self._lock:
            for key in keys:
                future = self._futures.get((api, key))
                if future is None:
                    future = mine[key] = self._futures[(api, key)] = Future()
                futures[key] = future
            if len(self._futures) > self.KEEP:  # the oldest answers go; a submission in flight stays
                for old in [k for k, f in self._futures.items() if f.done()][: len(self._futures) - self.KEEP]:
                    del self._futures[old]
        return mine, futures

    def fail(self, api: str, mine: dict[str, Future[str]], exc: BaseException) -> None:
        """The submission of ``mine`` failed: whoever waits on one unanswered gets ``exc``, and it is forgotten."""
        with self._lock:
            for key, future in mine.items():
                if not future.done() and self._futures.get((api, key)) is future:
                    del self._futures[(api, key)]
        for future in mine.values():
            if not future.done():
                future.set_exception(exc)


_flights = _Flights()


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
    settings = PoolSettings()
    warm = _serving
    with contextlib.ExitStack() as stack:
        # A warm worker's runs share its mesh; a run in a process of its own opens one.
        mesh = warm.mesh() if warm is not None else stack.enter_context(Mesh.open())
        the_plan = plan(mesh.store, mesh.registry, [asset], mesh.default_targets())
        todo = runnable(the_plan, asset, pool, held_back(mesh.store, [asset]))
        report = execute(
            mesh.store,
            mesh.registry,
            stage_plan(the_plan, todo),
            trigger=f"{trigger}-{pool}",
            max_workers=warm.threads if warm is not None else settings.worker_threads,
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
    printer: Callable[[str], None] = log.info,
) -> None:
    """Serve ``pool`` until interrupted: a warm worker that computes ``limit`` flow runs at once in this process.

    The registry is built here first, so a feature module that cannot be imported stops the worker before it
    takes any work. Its environment (``MEDIAMESH_*`` included) is its flow runs'; the values they store name the
    worker ``name``, and each computes ``threads`` values at once. ``printer`` receives the lines a person
    watching the worker reads (started, stopped).
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_WORKER_QUERY_SECONDS,
        PREFECT_WORKER_WEBSERVER_PORT,
        temporary_settings,
    )

    global _serving
    settings = settings or PoolSettings()
    name = name or worker_name(pool)
    # Feature modules named in MEDIAMESH_FEATURES import from the working directory, whichever way the
    # command was started (the `mediamesh` script puts its own folder first on the path, not this one); a
    # flow run Prefect starts as a subprocess (another deployment's) inherits the same path.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (cwd, os.environ.get("PYTHONPATH")) if p)
    os.environ["PREFECT_API_URL"] = api_url
    # The engine names the values it stores after this variable (engine.worker_id); this process is one worker.
    os.environ["MEDIAMESH_WORKER_NAME"] = name
    warm = _WarmProcess(threads, configured_registry(), printer)
    updates: dict[Any, Any] = {PREFECT_API_URL: api_url, PREFECT_WORKER_QUERY_SECONDS: poll_s}
    if healthcheck_port is not None:
        updates[PREFECT_WORKER_WEBSERVER_PORT] = healthcheck_port
    with temporary_settings(updates=updates):
        with get_client(sync_client=True) as client:
            deployment = ensure_deployments(client, settings)[pool]

        async def serve() -> None:
            worker = WarmWorker(
                warm, deployment, api_url, work_pool_name=settings.pool_name(pool), name=name, limit=limit
            )
            await worker.start(with_healthcheck=healthcheck_port is not None, printer=printer)

        _serving, stopped_by = warm, 1
        previous = _stop_on_signals()
        try:
            asyncio.run(serve())
            stopped_by = 0
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (_stop_on_signals): a clean stop
            stopped_by = 0
            raise
        finally:
            _serving = None
            warm.stop(exit_code=stopped_by)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _stop_on_signals() -> dict[int, Any]:
    """Make SIGINT and SIGTERM stop the worker without first ending the children its runs have running
    (``lifecycle.enter`` ends them, which suits a command that stops when they do): a run's ffmpeg ended
    while the run goes on would be recorded as the media's failure. The previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        # A signal the shell ignores (nohup) stays ignored; None is a handler not set from Python, left alone.
        if handler is not None and handler is not signal.SIG_IGN:
            previous[sig] = handler
            signal.signal(sig, _stop)
    return previous


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


class WarmWorker(ProcessWorker):
    """A Prefect process worker that runs the compute deployment's flow runs warm, in its own process.

    Each flow run of ``deployment`` runs on a thread of this process (the worker's ``limit`` caps how many at
    once), with the imports, the registry, the mesh and its connection pool, and the models loaded by earlier
    runs; its state is what the flow engine recorded, and a failed run leaves the worker serving. Flow runs of
    any other deployment on the pool run as Prefect runs them, in a subprocess.
    """

    def __init__(self, warm: _WarmProcess, deployment: UUID, api_url: str, **options: Any) -> None:
        super().__init__(**options)
        self._warm = warm
        self._deployment = deployment
        self._api_url = api_url
        self._polling = False  # an early poll is on its way
        self._poll_again = False  # a slot freed since it started
        self._polled_at = 0.0

    @classmethod
    def __dispatch_key__(cls) -> str:
        # Its pools are process pools (``type``); Prefect's lookup of "process" still finds ``ProcessWorker``.
        return "mediamesh-warm-process"

    async def run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ProcessWorkerResult:
        if flow_run.deployment_id != self._deployment:
            return await super().run(flow_run, configuration, task_status)
        if task_status is not None:
            # The flow run's infrastructure is this process: an int, as a subprocess's pid would be.
            task_status.started(os.getpid())
        ended = self._warm.start(flow_run, self._api_url, self.get_flow_run_logger(flow_run))
        try:
            code = await asyncio.shield(ended)
        except asyncio.CancelledError:
            # The worker is stopping. A run that ends within the grace ends as it would have; one still computing
            # is reported crashed and ends with the process (``_WarmProcess.stop``): a thread cannot be stopped.
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(STOP_GRACE_S):
                    await asyncio.shield(ended)
                if not ended.done():
                    await self._propose_crashed_state(flow_run, "the worker stopped while the flow run was computing")
            raise
        # The run's slot is given back as this returns, before the task group runs another task: look for the next
        # run then, not at the next periodic poll.
        self._poll_soon()
        return ProcessWorkerResult(status_code=code, identifier=str(os.getpid()))

    async def _propose_pending_state(self, flow_run: FlowRun) -> bool:
        taken = await super()._propose_pending_state(flow_run)
        if not taken:
            # Most often another worker took the run first (workers polling one pool see the same runs): this slot
            # is given back as this returns, and the next run in the queue may be free.
            self._poll_soon()
        return taken

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        """Prefect's poll for scheduled runs, skipped while every slot is taken and the last one is recent.

        A worker at its limit has nothing to take, yet Prefect's loop asks the server every ``--poll`` seconds, and
        each ask is a write there (the queue's last poll), with the server on the same cores as the runs: two
        workers at ``--poll 0.5`` spent a tenth of a core on it. A busy worker still asks every ``BUSY_POLL_S``, so
        its queue stays ready in Prefect (a minute without a poll marks it not ready), and counts as polling for
        its own health check: it serves, and a slot that frees starts a poll at once (``_poll_soon``).
        """
        now = time.monotonic()
        if self._limiter is not None and self._limiter.available_tokens < 1 and now - self._polled_at < BUSY_POLL_S:
            self._last_polled_time = datetime.now(UTC)
            return []
        self._polled_at = now
        return await super().get_and_submit_flow_runs()

    def _poll_soon(self) -> None:
        """Poll now, between the periodic ones; one already on its way polls once more after it, so a slot freed
        while it asks is not left to the periodic poll. Called from a task of the worker's loop: anyio starts a task
        only from inside another."""
        self._poll_again = True
        if self._runs_task_group is not None and not self._polling:
            self._polling = True
            self._runs_task_group.start_soon(self._poll_now)

    async def _poll_now(self) -> None:
        """The early polls asked for; one that fails leaves the next periodic one to try again (an error here must
        not reach the task group, which would end the worker)."""
        try:
            while self._poll_again:
                self._poll_again = False
                # A moment's grace: the slot is given back once the caller returns, and a run refused for another
                # reason than a lost race is not asked for again in a tight loop.
                await anyio.sleep(EARLY_POLL_S)
                await self.get_and_submit_flow_runs()
        except Exception:
            log.debug("an early poll for flow runs failed; the next periodic one will look", exc_info=True)
        finally:
            self._polling = False


class _WarmProcess:
    """What a warm worker's flow runs share in its process: the registry, one mesh, and their threads."""

    def __init__(self, threads: int, registry: Registry, printer: Callable[[str], None]) -> None:
        self.threads = threads
        self.registry = registry
        self._printer = printer
        self._lock = threading.Lock()
        self._mesh: Mesh | None = None
        self._running: set[UUID] = set()

    def mesh(self) -> Mesh:
        """The mesh every run uses, opened by the first: the store's connection pool is thread-safe and
        pings a connection that sat idle before reusing it, so one that a restarted database dropped is replaced
        (a statement on a connection dropped moments ago fails once, as a retryable error)."""
        with self._lock:
            if self._mesh is None:
                self._mesh = Mesh.open(self.registry)
            return self._mesh

    def start(self, flow_run: FlowRun, api_url: str, run_log: logging.LoggerAdapter[Any]) -> asyncio.Future[int]:
        """Start ``flow_run`` on a thread of its own. The future is 0 once its engine recorded how it ended (failed
        included), 1 when the engine itself could not."""
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[int] = loop.create_future()

        def settle(code: int) -> None:
            if not ended.done():
                ended.set_result(code)

        def target() -> None:
            code = 1
            try:
                code = self._execute(flow_run.id, api_url, run_log)
            finally:
                with self._lock:
                    self._running.discard(flow_run.id)
                with contextlib.suppress(RuntimeError):  # the loop closed: the worker has stopped
                    loop.call_soon_threadsafe(settle, code)

        with self._lock:
            self._running.add(flow_run.id)
        # A daemon thread: one still computing when the worker stops does not hold the process.
        threading.Thread(target=target, name=f"flow-run-{flow_run.name}", daemon=True).start()
        return ended

    @staticmethod
    def _execute(flow_run_id: UUID, api_url: str, run_log: logging.LoggerAdapter[Any]) -> int:
        from prefect.flow_engine import load_flow_run, run_flow

        # A new thread starts with Prefect's settings from import time: the worker's API instead, and no flow
        # heartbeat, as for every run of the engine (derived once, not on every run).
        with run_settings(api_url):
            try:
                run_flow(compute_values, flow_run=load_flow_run(flow_run_id), return_type="state")
            except BaseException:  # SystemExit from feature code included: the worker goes on serving
                run_log.exception("the flow run's engine failed; the worker goes on serving")
                return 1
        return 0

    def stop(self, *, exit_code: int) -> None:
        """Close the mesh; with flow runs still computing, end the process now instead, as if it were killed.

        Nothing stops a thread, and Prefect's task threads are joined at exit, so waiting would hold the worker
        until those values are done. Nothing of the process may end before it does, not even its exit hooks: a
        run whose ffmpeg or scratch folder went first would record that as the media's failure. Its children
        die with it (``processes.die_with_parent``), its claims with its connections, and the next command
        sweeps its scratch folder.
        """
        with self._lock:
            running, mesh, self._mesh = len(self._running), self._mesh, None
        if not running:
            if mesh is not None:
                mesh.close()
            return
        self._printer(
            f"worker stopped with {running} flow run(s) computing: marked crashed, their values go to the next dispatch"
        )
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # what the runs logged so far reaches the API
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(exit_code)
