"""Running a plan: a Prefect flow per trigger, whose tasks are *stages* of the missing values (inside a flow run
already, a pool worker's, the stages are that run's tasks).

A :class:`Schedule` hands out only values whose inputs are done, so no thread ever waits on another task's
result: a stage is some ready values (a GPU feature's, all at once, so that their frames share forward passes;
otherwise a share of the ready CPU values per idle thread), and a stage's task goes on with a stage its own
values made ready. Prefect sees the stages; mediamesh's store records every value.

Each value, in this fixed order: takes its claim (a second claimant waits), re-checks the store (someone else
may have finished it), loads the inputs (and tells the shared frame reader what the run's other readers of
the same encode will want), calls the feature, stores the value (blob, then row, lineage and index rows in one
transaction), and removes the feature's scratch files. A failure is recorded as an attempt, apart from values,
and retried inside the stage only when the error says ``retryable``.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from mediamesh.features import batching
from mediamesh.features import frames as shared_frames
from mediamesh.features.errors import BackendUnavailableError, ExecutionError, MediameshError
from mediamesh.features.registry import Registry
from mediamesh.features.spec import ROOT_INPUTS, SOURCE, SUBTITLES, TITLE, FeatureSpec
from mediamesh.features.values import EncodedMedia, FileValue, ShotTable, SourceMedia
from mediamesh.orchestrator.execution.indexing import batches_for, indexes_of
from mediamesh.orchestrator.execution.planner import Plan, PlannedValue, RootInput
from mediamesh.store import AssetRecord, NewValue, Store
from mediamesh.store.codecs import payload_kind_of, type_name
from mediamesh.store.gateway import FeatureVersion

__all__ = ["AssetReport", "Progress", "RunReport", "Schedule", "execute", "new_value", "run_settings", "worker_id"]

COMPUTED, REUSED, FAILED, SKIPPED = "computed", "reused", "failed", "skipped"

#: A value whose error says ``retryable`` is tried this many more times, this long apart.
RETRIES, RETRY_DELAY_S = 2, 1.0
#: The inputs by which readers of an encode's frames are known to read the same frames' pictures.
ENCODE, SHOTS = "encode", "shots"
#: At most this many values of one feature in one stage (one Prefect task); a GPU feature's stage computes
#: up to GPU_STAGE_THREADS of them at once.
MAX_STAGE, GPU_STAGE_THREADS = 32, 8

# The console belongs to mediamesh's progress and error lines; Prefect's run logs still reach its API and
# UI. Prefect is imported lazily (in _Runner.run), after these defaults, and reads them when it sets up
# logging.
for _handler in ("CONSOLE", "CONSOLE_FLOW_RUNS", "CONSOLE_TASK_RUNS"):
    os.environ.setdefault(f"PREFECT_LOGGING_HANDLERS_{_handler}_LEVEL", "CRITICAL")


class Progress(Protocol):
    """Receives task events; ``started``/``finished`` are called from worker threads."""

    def planned(self, count: int) -> None: ...

    def started(self, value: PlannedValue) -> None: ...

    def finished(self, value: PlannedValue, outcome: str) -> None: ...


@dataclass
class AssetReport:
    asset: str
    computed: int = 0
    reused: int = 0
    failed: int = 0
    queued: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    """What a run did per asset (``queued``: handed to the work pools); ``done`` the keys stored when it ended;
    ``outage`` is set when the database or object store went away during it."""

    run_id: str
    assets: dict[str, AssetReport]
    outage: BackendUnavailableError | None = None
    done: frozenset[str] = frozenset()

    @property
    def computed(self) -> int:
        return sum(a.computed for a in self.assets.values())

    @property
    def reused(self) -> int:
        return sum(a.reused for a in self.assets.values())

    @property
    def failed(self) -> int:
        return sum(a.failed for a in self.assets.values())

    @property
    def queued(self) -> int:
        return sum(a.queued for a in self.assets.values())


def worker_id() -> str:
    """``host:pid``, after the name of the ``mediamesh worker`` whose flow run this process is, if any."""
    here = f"{socket.gethostname()}:{os.getpid()}"
    name = os.environ.get("MEDIAMESH_WORKER_NAME")
    return f"{name}@{here}" if name else here


def execute(
    store: Store,
    registry: Registry,
    plan: Plan,
    *,
    trigger: str,
    api_url: str | None = None,
    names: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    max_workers: int | None = None,
) -> RunReport:
    """Compute the plan's missing values (a Prefect flow run when there is anything to compute)."""
    run_id = str(uuid.uuid4())
    assets = {a: AssetReport(a) for a in dict.fromkeys(v.asset for v in plan.values)}
    for v in plan.reused:
        assets[v.asset].reused += 1
    store.record_features(_catalogued(s) for s in registry.values())
    store.start_run(run_id, trigger, planned=len(plan.missing))
    outcomes: dict[str, tuple[str, Exception | None]] = {}
    if progress is not None:
        progress.planned(len(plan.missing))
    if plan.missing:
        task_runner = _Runner(store, registry, run_id, dict(names or {}), progress)
        outcomes = task_runner.run(plan, trigger=trigger, api_url=api_url, max_workers=max_workers)
    done = {k for k, (outcome, _) in outcomes.items() if outcome in (COMPUTED, REUSED)}
    run = RunReport(run_id, assets, done=frozenset(done))
    for v in plan.missing:
        outcome, error = outcomes.get(v.key, (SKIPPED, None))
        report = assets[v.asset]
        if outcome == COMPUTED:
            report.computed += 1
        elif outcome == REUSED:
            report.reused += 1
        elif outcome == FAILED:
            report.failed += 1
            if isinstance(error, BackendUnavailableError):
                # One outage, however many values it failed: the caller reports it once.
                run.outage = run.outage or error
            else:
                report.errors.append(_one_line(error))
    try:
        store.finish_run(run_id, computed=run.computed, reused=run.reused, failed=run.failed)
    except BackendUnavailableError as exc:
        # Every value is stored (or not) by now; only the run's bookkeeping row is left unfinished.
        run.outage = run.outage or exc
    return run


class Schedule:
    """Which values are ready, and how they are grouped into stages: the one rule for the order of a run.

    A value is ready when every upstream value the run computes is done; one whose upstream failed or was
    skipped is skipped. A stage is up to ``MAX_STAGE`` ready values: when the oldest ready value's feature runs
    on the GPU, that feature's ready values (its stage computes them at once); otherwise a share of the ready
    CPU values, of any features, for each idle thread.
    """

    def __init__(self, missing: tuple[PlannedValue, ...]) -> None:
        self.pending = {v.key: v for v in missing}  # dependency order
        self.waiting_on = {v.key: {k for k in v.upstream_keys if k in self.pending} for v in missing}
        self.dependents: dict[str, list[str]] = {}
        for v in missing:
            for k in self.waiting_on[v.key]:
                self.dependents.setdefault(k, []).append(v.key)
        self.ready = [v for v in missing if not self.waiting_on[v.key]]
        self.outcomes: dict[str, tuple[str, Exception | None]] = {}

    def next_stage(self, free: int) -> tuple[PlannedValue, ...]:
        """The next stage for one of ``free`` idle threads; empty when nothing is ready."""
        if not self.ready:
            return ()
        first = self.ready[0].spec
        if first.resources == "gpu":  # all of the feature's ready values: they meet in its forward passes
            take = [v for v in self.ready if v.spec.name == first.name][:MAX_STAGE]
        else:  # a share of the ready CPU values, whatever their features, for each idle thread
            cpu = [v for v in self.ready if v.spec.resources != "gpu"]
            take = cpu[: min(MAX_STAGE, -(-len(cpu) // max(free, 1)))]
        taken = {v.key for v in take}
        self.ready = [v for v in self.ready if v.key not in taken]
        return tuple(take)

    def finished(self, outcomes: Mapping[str, tuple[str, Exception | None]]) -> None:
        """Record a stage's outcomes; what they make ready (or skipped) follows."""
        for key, (outcome, error) in outcomes.items():
            self._settle(key, outcome, error)

    def failed(self, values: tuple[PlannedValue, ...], error: Exception) -> None:
        """Those of ``values`` not settled yet failed with ``error`` (their task ended without them)."""
        self.finished({v.key: (FAILED, error) for v in values if v.key not in self.outcomes})

    def _settle(self, key: str, outcome: str, error: Exception | None) -> None:
        self.outcomes[key] = (outcome, error)
        self.pending.pop(key, None)
        for dependent in self.dependents.get(key, ()):
            if dependent in self.outcomes:
                continue
            if outcome in (FAILED, SKIPPED):
                self._settle(dependent, SKIPPED, None)
                continue
            waiting = self.waiting_on[dependent]
            waiting.discard(key)
            if not waiting:
                self.ready.append(self.pending[dependent])


class _Runner:
    """Runs a plan's missing values as stages: one Prefect task computes one feature's values, a value as soon
    as its inputs are done; only ready values are ever handed to a thread, so none waits on another's result."""

    def __init__(
        self, store: Store, registry: Registry, run_id: str, names: dict[str, str], progress: Progress | None
    ) -> None:
        self.store = store
        self.registry = registry
        self.run_id = run_id
        self.names = names
        self.progress = progress
        self.worker = worker_id()
        self.roots: dict[tuple[str, str], RootInput] = {}
        self.indexes = indexes_of(registry)
        self.pending: Mapping[str, PlannedValue] = {}
        self.schedule = Schedule(())
        self.cond = threading.Condition()
        self.running = 0  # stage tasks submitted and not ended
        self.slots = 1
        self.expected: set[Path] = set()
        self.sources: dict[str, SourceMedia] = {}
        self.assets: dict[str, AssetRecord] = {}  # the plan's source assets, looked up together
        self.lock = threading.Lock()

    def run(
        self, plan: Plan, *, trigger: str, api_url: str | None, max_workers: int | None
    ) -> dict[str, tuple[str, Exception | None]]:
        self.roots = plan.roots
        self.assets = self.store.assets_by_id(key for v in plan.missing for name, key in v.inputs if name == SOURCE)
        from prefect import flow, task
        from prefect.cache_policies import NO_CACHE
        from prefect.context import FlowRunContext
        from prefect.task_runners import ThreadPoolTaskRunner

        self.slots = max_workers or os.cpu_count() or 2
        # A value that fails is retried inside its stage, and recorded there: Prefect retries nothing.
        compute: Any = task(  # type: ignore[call-overload]
            self.compute_stages, name="compute-stage", cache_policy=NO_CACHE, persist_result=False, retries=0
        )

        def mediamesh_run() -> dict[str, tuple[str, Exception | None]]:
            while True:
                with self.cond:
                    stages = []
                    while self.running < self.slots and (stage := self.schedule.next_stage(self.slots - self.running)):
                        self.running += 1
                        stages.append(stage)
                    if not stages and not self.running:
                        return self.schedule.outcomes
                    if not stages:
                        self.cond.wait()
                for stage in stages:  # submitted without the lock: a task that ends at once takes it
                    try:
                        future = compute.with_options(task_run_name=_stage_name(stage)).submit(stage)
                    except Exception as exc:  # Prefect could not take the task: its values failed, the run goes on
                        with self.cond:
                            self.running -= 1
                            self.schedule.failed(stage, exc)
                        continue
                    future.wrapped_future.add_done_callback(functools.partial(self._ended, stage))

        self.schedule = Schedule(plan.missing)
        self.pending = self.schedule.pending
        try:
            if FlowRunContext.get() is not None:
                # Already inside a flow run (a pool worker's compute_values): the stages are its tasks. A run of
                # its own inside it would cost its creation, its states and its threads, about a second a run.
                return mediamesh_run()
            runner: Any = ThreadPoolTaskRunner(max_workers=self.slots)
            with run_settings(api_url):
                return flow(
                    name="mediamesh-run",
                    flow_run_name=f"{trigger}-{self.run_id[:8]}",
                    task_runner=runner,
                    persist_result=False,
                    log_prints=False,
                )(mediamesh_run)()
        finally:
            for path in self.expected:
                shared_frames.forget(path)

    def compute_stages(self, stage: tuple[PlannedValue, ...]) -> dict[str, int]:
        """Compute ``stage``, then go on with a stage its values made ready, if any, while the task is running
        anyway (what the next value of an asset needs is usually what this one just stored); the outcomes."""
        current, done = stage, Counter[str]()
        try:
            while current:
                outcomes = self._compute_stage(current)
                done.update(outcome for outcome, _ in outcomes.values())
                with self.cond:
                    self.schedule.finished(outcomes)
                    self.cond.notify_all()
                    current = self.schedule.next_stage(self.slots - self.running + 1)
        finally:
            if current:  # only a BaseException (Ctrl-C) leaves a stage half done: its values are not stored
                with self.cond:
                    ended = ExecutionError("the run was interrupted before this value was computed")
                    self.schedule.failed(current, ended)
                    self.cond.notify_all()
        return dict(done)

    def _ended(self, stage: tuple[PlannedValue, ...], wrapped: futures.Future[Any]) -> None:
        """A stage's task is over: its thread is free; if the task never ran, its values failed with it."""
        error: Exception = ExecutionError("the task computing this value ended before it ran")
        try:
            state = wrapped.result()
            if hasattr(state, "is_completed") and not state.is_completed():
                found = state.result(raise_on_failure=False)
                error = found if isinstance(found, Exception) else error
        except Exception as exc:
            error = exc
        with self.cond:
            self.running -= 1
            self.schedule.failed(stage, error)
            self.cond.notify_all()

    def _compute_stage(self, stage: tuple[PlannedValue, ...]) -> dict[str, tuple[str, Exception | None]]:
        """Each value of ``stage`` (in turn, or at once for a GPU feature), each retried up to ``RETRIES``
        times when its error says ``retryable``; one value failing leaves the others to run."""
        if len(stage) > 1 and stage[0].spec.resources == "gpu":
            # Several assets' encoder values at once, so that their frames meet in one forward pass
            # (features.batching): each value on a thread of its own, up to GPU_STAGE_THREADS.
            workers = min(len(stage), GPU_STAGE_THREADS)
            with futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mediamesh-stage") as pool:
                return dict(zip((v.key for v in stage), pool.map(self._compute_arriving, stage), strict=True))
        return {value.key: self.compute(value) for value in stage}

    def _compute_arriving(self, value: PlannedValue) -> tuple[str, Exception | None]:
        """One of a GPU stage's values, its thread announced to the batchers as one that will call them."""
        with batching.arriving():
            return self.compute(value)

    def compute(self, value: PlannedValue) -> tuple[str, Exception | None]:
        for attempt in range(RETRIES + 1):
            if self.progress is not None:
                self.progress.started(value)
            try:
                outcome = self._compute(value)
            except Exception as error:
                if self.progress is not None:
                    self.progress.finished(value, FAILED)
                if attempt < RETRIES and _retryable(error):
                    time.sleep(RETRY_DELAY_S)
                    continue
                return FAILED, error
            if self.progress is not None:
                self.progress.finished(value, outcome)
            return outcome, None
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns

    def _compute(self, value: PlannedValue) -> str:
        spec = value.spec
        with self.store.claim(
            value.key, asset_id=value.asset, feature=spec.name, version=spec.version, worker=self.worker
        ) as claim:
            if claim.stored:
                return REUSED
            started = datetime.now(UTC)
            try:
                inputs = [self._load(value, name, key) for name, key in value.inputs]
                self._expect_frames(value, dict(zip((name for name, _ in value.inputs), inputs, strict=True)))
                result = spec.fn(*inputs, **spec.params)
                index = batches_for(self.indexes, spec.name, result)
            except Exception as exc:  # a Ctrl-C is no failed attempt: it ends the run, recording nothing
                error = _as_execution_error(exc, value)
                self.store.record_attempt(
                    value_key=value.key,
                    asset_id=value.asset,
                    feature=spec.name,
                    version=spec.version,
                    error=error,
                    retryable=error.retryable,
                    worker=self.worker,
                    started_at=started,
                    run_id=self.run_id,
                )
                if error is exc:
                    raise
                raise error from exc
            try:
                self.store.put_value(
                    new_value(value, started=started, worker=self.worker, device=_device_of(result)),
                    result,
                    index=index,
                )
            finally:
                _discard_scratch(result)
        return COMPUTED

    def _expect_frames(self, value: PlannedValue, loaded: dict[str, Any]) -> None:
        """Before a value reads its encode's frames: tell the shared reader which frames the run's other
        pending readers of the same encode and shots will want, so that one decoding pass serves them all."""
        encode, shots = loaded.get(ENCODE), loaded.get(SHOTS)
        if shared_frames.hint_of(value.spec.name) is None or not isinstance(encode, EncodedMedia):
            return
        if not isinstance(shots, ShotTable):
            return
        same = {name: key for name, key in value.inputs if name in (ENCODE, SHOTS)}
        wanted: set[int] = set()
        for other in list(self.pending.values()):
            hint = shared_frames.hint_of(other.spec.name)
            if other.key == value.key or other.asset != value.asset or hint is None:
                continue
            if {name: key for name, key in other.inputs if name in (ENCODE, SHOTS)} == same:
                wanted |= hint(encode, shots, other.spec.params)
        if wanted:
            shared_frames.expect(encode.path, wanted)
            with self.lock:
                self.expected.add(encode.path)

    def _load(self, value: PlannedValue, name: str, key: str) -> Any:
        if name == SOURCE:  # an asset's bytes never change: looked up once a run
            source = self.sources.get(key)
            if source is None:
                asset = self.assets.get(key)
                source = self.sources[key] = self.store.source(key, name=self.names.get(key), asset=asset)
            return source
        if name in ROOT_INPUTS:
            # Exactly the files (or checkpoint) the value's key was planned from, never what is current now.
            records = self.roots[(value.asset, name)].records
            if name == SUBTITLES:
                return self.store.subtitles_of(records)
            if name == TITLE:
                return self.store.title_metadata_of(records)
            return self.store.checkpoint_of(records[0] if records else None)
        record = self.store.value(key)
        if record is None:
            raise ExecutionError(f"input {name!r} ({key[:12]}) is not stored", feature=value.ref, asset=value.asset)
        return self.store.load(record, self.registry[name].output)


def new_value(value: PlannedValue, *, started: datetime, worker: str, device: str) -> NewValue:
    """The row a computed value is stored under: its identity, lineage and provenance, finished now."""
    spec = value.spec
    return NewValue(
        key=value.key,
        asset_id=value.asset,
        feature=spec.name,
        version=spec.version,
        params=dict(spec.params),
        model_fingerprint=value.model_fingerprint,
        code_fingerprint=spec.fingerprint,
        inputs=value.inputs,
        started_at=started,
        finished_at=datetime.now(UTC),
        worker=worker,
        device=device,
    )


def _as_execution_error(exc: Exception, value: PlannedValue) -> MediameshError:
    """Our own errors gain the feature and asset they happened in; anything else is wrapped."""
    if isinstance(exc, BackendUnavailableError):
        return exc  # about the backend, not this value: the same line for every value it stops
    if isinstance(exc, ExecutionError):
        exc.feature = exc.feature or value.ref
        exc.asset = exc.asset or value.asset
        return exc
    if isinstance(exc, MediameshError):
        return exc
    return ExecutionError(f"{type(exc).__name__}: {exc}", feature=value.ref, asset=value.asset)


def _device_of(result: Any) -> str:
    """Where the value was computed: encoders say so in their metadata; everything else runs on the CPU."""
    meta = getattr(result, "meta", None)
    return str(meta.get("device", "cpu")) if isinstance(meta, dict) else "cpu"


def _retryable(error: Exception) -> bool:
    # An unreachable backend was already retried by its client (the object store's, the connection pool's);
    # the run reports it once and a rerun completes, so the task does not wait it out again.
    return bool(getattr(error, "retryable", False)) and not isinstance(error, BackendUnavailableError)


_settings_cache: dict[tuple[int, str | None], tuple[Any, Any]] = {}
_settings_lock = threading.Lock()


@contextmanager
def run_settings(api_url: str | None) -> Iterator[None]:
    """Prefect's settings for a run: no flow heartbeat (a dead run's claims free its values, and Prefect 3.8
    makes every flow wait for its heartbeat thread's next one-second tick as it ends), and ``api_url`` (with no
    certificate bundle loaded where it is plain HTTP).

    Deriving settings validates all of Prefect's (about 90 ms), so each derivation is made once per base
    settings object and API URL, and entered as a settings context from then on.
    """
    from prefect.context import SettingsContext, get_settings_context
    from prefect.settings import (
        PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    )

    context = get_settings_context()
    with _settings_lock:
        base, derived = _settings_cache.get((id(context.settings), api_url), (None, None))
        if base is not context.settings:
            updates: dict[Any, Any] = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
            if api_url:
                updates[PREFECT_API_URL] = api_url
            if api_url and api_url.startswith("http://"):
                # Plain HTTP has no certificates to check, but each run's client would still load certifi's bundle
                # into a verifying SSL context (about 35 ms, most of a small run's own cost) unless told to skip.
                updates[PREFECT_API_TLS_INSECURE_SKIP_VERIFY] = True
            derived = context.settings.copy_with_update(updates=updates)
            _settings_cache[(id(context.settings), api_url)] = (context.settings, derived)
    with SettingsContext(profile=context.profile, settings=derived):
        yield


def _stage_name(stage: tuple[PlannedValue, ...]) -> str:
    first = stage[0]
    if len(stage) == 1:
        return f"{first.ref} {first.asset[:12]}"
    names = list(dict.fromkeys(v.ref for v in stage))
    if len(names) == 1:
        return f"{first.ref} x{len(stage)} assets"
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"{len(stage)} values ({shown})"


def _discard_scratch(result: Any) -> None:
    """Remove the ``mediamesh-*`` scratch directory a file-valued feature wrote its output in."""
    if isinstance(result, FileValue) and result.path.parent.name.startswith("mediamesh-"):
        shutil.rmtree(result.path.parent, ignore_errors=True)


def _one_line(error: Exception | None) -> str:
    if error is None:
        return "failed"
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _catalogued(spec: FeatureSpec) -> FeatureVersion:
    """What the store's catalogue keeps of a spec, so that its values can be read without its code."""
    try:
        kind = payload_kind_of(spec.output)
    except TypeError:  # unstorable: its values fail when stored, with an attempt saying why
        kind = ""
    return FeatureVersion(
        spec.name, spec.version, spec.fingerprint, spec.resources, spec.fn.__module__, type_name(spec.output), kind
    )
