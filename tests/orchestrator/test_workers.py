"""Distributed execution on real warm workers: stages per pool, duplicate events, a killed worker, warm runs.

Workers are ``python -m mediamesh worker`` processes against the session's Prefect server, each test
with its own work pools, database and blob folder. The features (``resources/service_features.py``)
record every real call in a file, so the tests count computations across processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State, StateType
from prefect.settings import PREFECT_API_URL, temporary_settings
from pydantic import SecretStr
from typer.testing import CliRunner

from mediamesh.features import BackendUnavailableError, MediaError
from mediamesh.orchestrator.execution.dispatch import PoolRuns, PoolSettings, held_back, runnable
from mediamesh.orchestrator.execution.planner import Plan, plan
from mediamesh.orchestrator.execution.workers import ensure_pools, submit_stages
from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.interfaces.cli import app as cli_app
from mediamesh.orchestrator.interfaces.watch import Watcher
from mediamesh.orchestrator.mesh import Mesh, configured_registry
from mediamesh.store import Store, StoreSettings
from tests.models import TinyModels
from tests.orchestrator.api_support import serving
from tests.orchestrator.resources import gated_features as gated
from tests.orchestrator.resources import warm_features as warm
from tests.services import S3Endpoint

ROOT = Path(__file__).resolve().parents[2]
FEATURES = "tests.orchestrator.resources.service_features"
PLUGIN = "tests.orchestrator.resources.plugin_features"  # reads the built-in encode
WARM = "tests.orchestrator.resources.warm_features"  # a CPU stage, then a GPU stage that loads an image model
SETTLE_TIMEOUT_S = 180.0
ENCODER_VARIABLES = ("MEDIAMESH_CONFIG", "MEDIAMESH_ENCODERS", "MEDIAMESH_VIDEO_MODEL", "MEDIAMESH_DEVICE")


@dataclass
class Service:
    """The environment workers and the in-test mesh share, and the workers started in it."""

    env: dict[str, str]
    settings: StoreSettings
    calls_file: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def worker(self, pool: str, name: str, poll: float = 0.5, **extra: str) -> subprocess.Popen[bytes]:
        log = Path(self.env["MEDIAMESH_HOME"]) / f"{name}.log"
        with log.open("ab") as out:
            child = subprocess.Popen(
                [sys.executable, "-m", "mediamesh", "worker", "--pool", pool, "--name", name, "--poll", str(poll)],
                cwd=ROOT,
                env={**self.env, **extra},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.workers.append(child)
        self.logs.append(log)
        return child

    def calls(self) -> list[tuple[str, str]]:
        """(feature, worker name) of every real computation so far."""
        if not self.calls_file.exists():
            return []
        return [(line.split()[0], line.split()[2]) for line in self.calls_file.read_text().splitlines()]

    def log_tail(self) -> str:
        tails = [(p.name, p.read_text(errors="replace").splitlines()[-15:]) for p in self.logs]
        return "\n".join(f"--- {name}\n" + "\n".join(lines) for name, lines in tails)


@pytest.fixture
def service(database_url: str, tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    home = tmp_path / "home"
    home.mkdir()
    tag = uuid.uuid4().hex[:8]
    values = {
        "MEDIAMESH_HOME": str(home),
        "MEDIAMESH_DATABASE_URL": database_url,
        "MEDIAMESH_OBJECT_STORE": f"file://{tmp_path / 'blobs'}",
        "MEDIAMESH_FEATURES": FEATURES,
        "MEDIAMESH_TEST_CALLS": str(tmp_path / "calls.txt"),
        "MEDIAMESH_EXECUTION": "pools",
        "MEDIAMESH_CPU_POOL": f"cpu-{tag}",
        "MEDIAMESH_GPU_POOL": f"gpu-{tag}",
        "MEDIAMESH_DISPATCH_WINDOW_S": "1",
        "PREFECT_API_URL": prefect_api,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MEDIAMESH_TEST_SLOW_S", raising=False)
    settings = StoreSettings()
    service = Service(dict(os.environ), settings, tmp_path / "calls.txt")
    try:
        yield service
    finally:
        for child in service.workers:
            _kill_tree(child.pid)
            child.wait()


@pytest.fixture
def mesh(service: Service) -> Iterator[Mesh]:
    with Mesh.open(configured_registry(FEATURES), service.settings) as opened:
        yield opened


def _video(tmp_path: Path, name: str = "clip.mp4", data: bytes | None = None) -> Path:
    path = tmp_path / name
    path.write_bytes(data if data is not None else os.urandom(4096))
    return path


def _settle(mesh: Mesh, asset: str, service: Service, timeout: float = SETTLE_TIMEOUT_S) -> dict[str, str]:
    """Wait until every value of the asset is stored; the worker name that stored each feature."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, states = mesh.status(asset)
        if all(s.state == "stored" for s in states):
            return {s.feature: (s.worker or "").split("@")[0] for s in states}
        assert not any(s.state == "failed" for s in states), [(s.feature, s.detail) for s in states]
        time.sleep(0.3)
    raise AssertionError(f"not settled in {timeout:.0f} s: {mesh.status(asset)[1]}\n{service.log_tail()}")


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process descended from it (a worker's flow runs run in their own groups)."""
    for child in _descendants(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, frontier = [], [pid]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found.extend(children)
        frontier.extend(children)
    return found


# ---- stages, without workers


def test_a_stage_is_what_one_pool_can_compute_now(local_store: Store, tmp_path: Path) -> None:
    mesh = Mesh(local_store, configured_registry(FEATURES), home=tmp_path)
    asset, _ = local_store.register_asset(_video(tmp_path), name="clip.mp4")
    the_plan = plan(local_store, mesh.registry, [asset.id])
    assert [v.feature for v in runnable(the_plan, asset.id, "cpu")] == ["landed"]
    # The GPU feature waits for its CPU input; the CPU feature after it waits for the GPU one.
    assert runnable(the_plan, asset.id, "gpu") == ()
    landed = the_plan.key_of(asset.id, "landed")
    assert runnable(the_plan, asset.id, "cpu", leave={landed}) == ()


def test_a_stage_holds_what_reads_no_media_until_the_media_gate_is_stored(local_store: Store, tmp_path: Path) -> None:
    asset, _ = local_store.register_asset(_video(tmp_path), name="clip.mp4")
    the_plan = plan(local_store, gated.registry(), [asset.id])
    assert [v.feature for v in runnable(the_plan, asset.id, "cpu")] == [
        "encode",
        "blurb",
        "halved",
        "subtitle_files",
        "synopsis_length",
    ]
    # The encode failed (or another worker holds it): nothing of the asset is ready.
    assert runnable(the_plan, asset.id, "cpu", leave={the_plan.key_of(asset.id, "encode")}) == ()


def test_only_failures_retrying_cannot_help_are_held_back_from_the_pools(local_store: Store, tmp_path: Path) -> None:
    mesh = Mesh(local_store, configured_registry(FEATURES), home=tmp_path)
    asset, _ = local_store.register_asset(_video(tmp_path), name="clip.mp4")
    the_plan = plan(local_store, mesh.registry, [asset.id])
    landed = the_plan.key_of(asset.id, "landed")
    when = datetime.now(UTC)

    def fail(error: Exception) -> None:
        local_store.record_attempt(
            value_key=landed, asset_id=asset.id, feature="landed", version="1", error=error, worker="w", started_at=when
        )

    fail(BackendUnavailableError("database", "postgresql://db", "connection refused", "start it"))
    assert held_back(local_store, [asset.id]) == set()  # an outage: the next dispatch hands it out again
    assert [v.feature for v in runnable(the_plan, asset.id, "cpu", held_back(local_store, [asset.id]))] == ["landed"]
    fail(MediaError("moov atom not found", feature="landed@1", asset=asset.id))
    assert held_back(local_store, [asset.id]) == {landed}
    assert runnable(the_plan, asset.id, "cpu", held_back(local_store, [asset.id])) == ()


# ---- real workers


def test_ingest_hands_stages_to_their_pools_and_each_stage_hands_on_to_the_next(
    service: Service, mesh: Mesh, tmp_path: Path
) -> None:
    service.worker("cpu", "cpu-a")
    service.worker("gpu", "gpu-a")
    result = CliRunner().invoke(cli_app, ["ingest", str(_video(tmp_path)), "--json"])  # MEDIAMESH_EXECUTION=pools
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    # Nothing is computed in the command: the CPU stage (landed) goes to its pool, which hands on.
    assert (entry["computed"], entry["queued"], entry["errors"]) == (0, 1, [])
    asset = entry["asset"]

    assert _settle(mesh, asset, service) == {"landed": "cpu-a", "accelerated": "gpu-a", "settled": "cpu-a"}
    assert sorted(service.calls()) == [("accelerated", "gpu-a"), ("landed", "cpu-a"), ("settled", "cpu-a")]
    assert submit_stages(mesh, _plan(mesh, asset), trigger="test") == []  # nothing left to hand out


def test_fifty_duplicate_events_make_one_asset_and_one_computation_per_value(
    service: Service, mesh: Mesh, seaweed: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAMESH_DISPATCH_WINDOW_S", "600")
    landing = f"landing-{uuid.uuid4().hex[:12]}"
    s3 = seaweed.client()
    s3.make_bucket(landing)
    data = os.urandom(10_000)
    s3.put_object(landing, "new/episode.mp4", io.BytesIO(data), len(data))
    s3_keys = {"s3_access_key": seaweed.access_key, "s3_secret_key": seaweed.secret_key}
    store_settings = service.settings.model_copy(update={"s3_endpoint": seaweed.endpoint, **s3_keys})
    service.worker("cpu", "cpu-a")
    service.worker("gpu", "gpu-a")
    app = create_app(
        lambda: Mesh.open(configured_registry(FEATURES), store_settings),
        ApiSettings(token=SecretStr("t0ken"), landing_buckets=[landing]),
        store_settings=store_settings,
    )
    record = {"s3": {"bucket": {"name": landing}, "object": {"key": "new/episode.mp4"}}}
    event = {"EventName": "s3:ObjectCreated:Put", "Key": f"{landing}/new/episode.mp4", "Records": [record]}
    auth = {"Authorization": "Bearer t0ken"}
    with (
        serving(app) as url,
        # Fifty requests on two loaded cores: this test is about what is stored, not how fast.
        httpx.Client(base_url=url, headers=auth, timeout=300) as http,
        ThreadPoolExecutor(max_workers=50) as pool,
    ):
        answers = list(pool.map(lambda _: http.post("/events/s3", json=event), range(50)))
    assert [a.status_code for a in answers] == [202] * 50, [a.text for a in answers if a.status_code != 202]
    asset = hashlib.sha256(data).hexdigest()
    assert {a.json()["results"][0]["asset"] for a in answers} == {asset}

    assert _settle(mesh, asset, service) == {"landed": "cpu-a", "accelerated": "gpu-a", "settled": "cpu-a"}
    assert Counter(feature for feature, _ in service.calls()) == {"landed": 1, "accelerated": 1, "settled": 1}
    assert [a.id for a in mesh.store.assets()] == [asset]


def test_a_killed_worker_leaves_its_value_to_another(service: Service, mesh: Mesh, tmp_path: Path) -> None:
    doomed = service.worker("cpu", "cpu-doomed", MEDIAMESH_TEST_SLOW_S="600")
    service.worker("gpu", "gpu-a")
    landing = tmp_path / "landing"
    landing.mkdir()
    _video(landing, "clip.mp4")
    pools = PoolRuns(PoolSettings())
    watcher = Watcher(mesh, str(landing), pools)
    first = watcher.reconcile()
    [asset] = mesh.store.assets_named([str(landing / "clip.mp4")]).values()
    assert (first.registered, first.dispatched) == ([str(landing / "clip.mp4")], [asset])

    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not mesh.store.live_claims(asset):  # the doomed worker is inside `landed`, holding its claim
        assert time.monotonic() < deadline, service.log_tail()
        time.sleep(0.2)
    [claim] = mesh.store.live_claims(asset)
    assert claim["worker"].startswith("cpu-doomed@")
    time.sleep(1.1)  # past the dispatch window: only the live claim keeps the value from going out twice
    assert watcher.reconcile().dispatched == []
    _kill_tree(doomed.pid)
    doomed.wait()
    deadline = time.monotonic() + 30
    while mesh.store.live_claims(asset):  # Postgres drops the dead session's lock
        assert time.monotonic() < deadline
        time.sleep(0.2)

    service.worker("cpu", "cpu-b")
    time.sleep(1.1)  # past the dispatch window
    again = watcher.reconcile()
    assert (again.registered, again.dispatched) == ([], [asset])
    assert _settle(mesh, asset, service) == {"landed": "cpu-b", "accelerated": "gpu-a", "settled": "cpu-b"}

    assert Counter(service.calls()) == {
        ("landed", "cpu-doomed"): 1,  # started, never finished
        ("landed", "cpu-b"): 1,
        ("accelerated", "gpu-a"): 1,
        ("settled", "cpu-b"): 1,
    }
    records = mesh.store.values_for(asset)
    assert len(records) == 3 and len({r.key for r in records}) == 3
    assert mesh.store.attempts_for(asset) == []
    assert mesh.store.gc(dry_run=True) == []  # no blob without its row


def test_a_worker_computes_a_plugin_feature_that_reads_a_builtin_one(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    features = f"builtin,{PLUGIN}"
    lite = {"MEDIAMESH_FEATURES": features, "MEDIAMESH_ENCODERS": "lite", "MEDIAMESH_DEVICE": "cpu"}
    for name, value in lite.items():
        monkeypatch.setenv(name, value)
    service.worker("cpu", "cpu-a", **lite)
    with Mesh.open(configured_registry(features), service.settings) as mesh:
        asset, _ = mesh.store.register_asset(ROOT / "tests" / "data" / "counter.mp4", name="counter.mp4")
        submit_stages(mesh, _plan(mesh, asset.id), trigger="test")
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while (state := {s.feature: s for s in mesh.status(asset.id)[1]}["encoded_frames"]).state != "stored":
            assert state.state != "failed" and time.monotonic() < deadline, f"{state}\n{service.log_tail()}"
            time.sleep(0.3)
        record, frames = mesh.read(asset.id, "encoded_frames")
        _, encode = mesh.read(asset.id, "encode")
    assert frames.value == encode.frame_count > 0
    assert (record.worker or "").startswith("cpu-a@")


# ---- warm workers


def test_a_warm_worker_computes_consecutive_flow_runs_in_its_own_process_and_loads_a_model_once(
    service: Service, tiny_encoders: TinyModels, tmp_path: Path
) -> None:
    env = {"MEDIAMESH_FEATURES": WARM, **{name: os.environ[name] for name in ENCODER_VARIABLES}}
    workers = {"cpu-a": service.worker("cpu", "cpu-a", **env), "gpu-a": service.worker("gpu", "gpu-a", **env)}
    with Mesh.open(configured_registry(WARM), service.settings) as mesh:
        assets = [
            mesh.store.register_asset(_video(tmp_path, f"clip-{i}.mp4"), name=f"clip-{i}.mp4")[0].id for i in range(2)
        ]
        # One flow run per asset and pool: two CPU runs on cpu-a (one at a time), then two GPU runs on gpu-a.
        submitted = submit_stages(mesh, plan(mesh.store, mesh.registry, assets, mesh.default_targets()), trigger="t")
        assert sorted(s.pool for s in submitted) == ["cpu", "cpu"]
        for asset in assets:
            _settle(mesh, asset, service)
        records = [r for asset in assets for r in mesh.store.values_for(asset)]
        loaded = [mesh.load(r).value for r in records if r.feature == "image_models"]
    # Each value names the process that computed it (name@host:pid): the worker's own, for every run.
    assert sorted({r.worker for r in records}) == [
        f"{name}@{socket.gethostname()}:{child.pid}" for name, child in sorted(workers.items())
    ]
    assert loaded == [1, 1]  # the second GPU run found the first one's model loaded


def test_a_warm_worker_takes_the_next_flow_run_as_its_slot_frees_not_at_its_next_poll(
    service: Service, tmp_path: Path
) -> None:
    with Mesh.open(configured_registry(WARM), service.settings) as mesh:
        assets = [
            mesh.store.register_asset(_video(tmp_path, f"clip-{i}.mp4"), name=f"clip-{i}.mp4")[0].id for i in range(3)
        ]
        submitted = submit_stages(mesh, plan(mesh.store, mesh.registry, assets, mesh.default_targets()), trigger="t")
        assert sorted(s.pool for s in submitted) == ["cpu"] * 3
        # Its first poll, as it starts, takes one run (--limit 1); the next periodic one is ten minutes away.
        service.worker("cpu", "cpu-a", poll=600, MEDIAMESH_FEATURES=WARM)
        keys = [_plan(mesh, asset).key_of(asset, "arrived") for asset in assets]
        _wait(lambda: len(mesh.store.stored_keys(keys)) == len(keys), service)


def test_a_failed_flow_run_leaves_the_warm_worker_serving_and_sigterm_ends_a_run_in_flight(
    service: Service, tmp_path: Path, prefect_api: str
) -> None:
    broken = tmp_path / "broken"
    worker = service.worker("cpu", "cpu-a", MEDIAMESH_FEATURES=WARM, MEDIAMESH_TEST_BROKEN=str(broken))
    with (
        Mesh.open(configured_registry(WARM), service.settings) as mesh,
        temporary_settings(updates={PREFECT_API_URL: prefect_api}),
        get_client(sync_client=True) as client,
    ):
        asset = mesh.store.register_asset(_video(tmp_path), name="clip.mp4")[0].id
        broken.touch()  # planning the stage raises in the flow: Prefect records the run as failed
        failing = client.create_flow_run_from_deployment(
            ensure_pools()["cpu"], parameters={"asset": asset, "pool": "cpu", "trigger": "test"}
        )
        assert _ended(client, failing.id).type == StateType.FAILED, service.log_tail()
        broken.unlink()
        submit_stages(mesh, _plan(mesh, asset), trigger="test")
        arrived = _plan(mesh, asset).key_of(asset, "arrived")
        _wait(lambda: mesh.store.stored_keys([arrived]), service)
        [record] = mesh.store.values_for(asset)
        assert record.worker.endswith(f":{worker.pid}")  # the same process that ran the failed flow run

        stalled = mesh.store.register_asset(
            _video(tmp_path, "stall.mp4", b"stall" + os.urandom(100)), name="stall.mp4"
        )[0].id
        [run] = submit_stages(mesh, _plan(mesh, stalled), trigger="test")
        _wait(lambda: _tools(worker.pid), service)  # inside `arrived`, running its ten-minute tool
        # With its one slot taken, the worker does not ask for work every --poll (0.5 s): its queue's last poll stays.
        queue = service.env["MEDIAMESH_CPU_POOL"]
        polled = client.read_work_queue_by_name("default", work_pool_name=queue).last_polled
        time.sleep(2.0)
        assert client.read_work_queue_by_name("default", work_pool_name=queue).last_polled == polled
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, service.log_tail()
        assert "worker stopped with 1 flow run(s) computing" in service.log_tail()
        _wait(lambda: not mesh.store.live_claims(stalled), service)  # the claim went with the process
        assert _ended(client, uuid.UUID(run.flow_run_id)).type == StateType.CRASHED
        _wait(lambda: not _tools(), service)  # the tool died with it
        assert mesh.store.attempts_for(stalled) == []  # and no failure of the media was recorded


def _tools(parent: int | None = None) -> list[int]:
    """The running ``sleep`` processes of ``warm_features.arrived`` (children of ``parent``, when given)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            command = (proc / "cmdline").read_bytes().split(b"\0")[:2]
            mine = parent is None or int(stat[1]) == parent
            if command == [b"sleep", warm.STALL_S.encode()] and stat[0] != "Z" and mine:
                found.append(int(proc.name))
    return found


def _ended(client: Any, flow_run_id: uuid.UUID) -> State:
    """The final state of a flow run, once it has one."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not (state := client.read_flow_run(flow_run_id).state).is_final():
        assert time.monotonic() < deadline, state
        time.sleep(0.3)
    return cast(State, state)


def _wait(condition: Callable[[], object], service: Service) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, service.log_tail()
        time.sleep(0.2)


def _plan(mesh: Mesh, asset: str) -> Plan:
    """What a trigger for ``asset`` plans: its default targets."""
    return plan(mesh.store, mesh.registry, [asset], mesh.default_targets())
