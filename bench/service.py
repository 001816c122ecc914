"""The service: landing-to-first-value latency, and throughput of two CPU workers against one.

- **landing-latency**: ``mediamesh dev-stack`` (SeaweedFS with the filer webhook, the API, the Prefect
  server, a CPU and a GPU-pool worker) running the cheap features of this module; a new object is put
  into the landing bucket with the MinIO SDK and the clock runs until its first value's row is in
  Postgres. Baseline: a raw GET of the same object from the same S3 server.
- **workers-throughput**: the same batch of assets (distinct bytes each round) on one single-threaded CPU
  worker and on two, side by side in alternating rounds; each asset costs a fixed amount of single-threaded
  CPU work (``burn``). Time runs from the submission of the batch to its last value. Target: two workers
  at least 1.6x as fast as one, i.e. a ratio of at most 0.625.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench.context import Context
from bench.harness import BenchError, Figure, Samples
from mediamesh.features import SourceMedia, feature
from mediamesh.orchestrator.execution.dispatch import PoolSettings
from mediamesh.orchestrator.execution.planner import plan
from mediamesh.orchestrator.execution.workers import submit_stages, wait_for_workers
from mediamesh.orchestrator.mesh import Mesh, configured_registry
from mediamesh.orchestrator.services.devstack import DevStack
from mediamesh.orchestrator.services.prefect_server import prefect_api_url, stop_prefect_server
from mediamesh.store import StoreSettings, open_store
from tests.orchestrator.resources.counting_features import Number

__all__ = ["burn", "first", "run"]

MODULE = "bench.service"
ROOT = Path(__file__).resolve().parents[1]
SPEEDUP_TARGET = 1.6
TIMEOUT_S = 600.0


@feature(version="1")
def first(source: SourceMedia) -> Number:
    """The cheapest value there is: the asset's size."""
    return Number(source.path.stat().st_size)


@feature(version="1")
def burn(source: SourceMedia) -> Number:
    """A fixed amount of single-threaded CPU work: ``MEDIAMESH_BENCH_BURN`` rounds of SHA-256 over the bytes."""
    data = source.path.read_bytes()
    digest = data
    for _ in range(int(os.environ.get("MEDIAMESH_BENCH_BURN", "0"))):
        digest = hashlib.sha256(digest + data).digest()
    return Number(digest[0])


def run(ctx: Context) -> list[Figure]:
    return [_landing_latency(ctx), _throughput(ctx)]


# ---- landing to first value


def _landing_latency(ctx: Context) -> Figure:
    repeats = ctx.repeats(7, 3)
    home = ctx.workdir / "stack-home"
    saved = {k: os.environ.get(k) for k in ("MEDIAMESH_FEATURES", "MEDIAMESH_BENCH_BURN", "PREFECT_API_URL")}
    os.environ.update({"MEDIAMESH_FEATURES": MODULE, "MEDIAMESH_BENCH_BURN": "0"})
    os.environ.pop("PREFECT_API_URL", None)
    latencies, gets = [], []
    try:
        with DevStack(home, api_port=0, log=lambda _: None) as stack, _chdir(ROOT):
            info = stack.info
            from minio import Minio

            s3 = Minio(
                info["s3_endpoint"].removeprefix("http://"),
                access_key=info["s3_access_key"],
                secret_key=info["s3_secret_key"],
                secure=False,
            )
            settings = StoreSettings(
                home=home,
                database_url=info["database_url"],
                object_store=info["object_store"],
                s3_endpoint=info["s3_endpoint"],
                s3_access_key=info["s3_access_key"],
                s3_secret_key=info["s3_secret_key"],
            )
            with open_store(settings) as store:
                for i in range(repeats + 1):  # the first round warms the workers' imports: untimed
                    data = f"landing bench {uuid.uuid4()}\n".encode() * 1000
                    key = f"bench/{i}.bin"
                    s3.put_object(info["landing_bucket"], key, io.BytesIO(data), len(data))
                    started = time.perf_counter()
                    asset = hashlib.sha256(data).hexdigest()
                    while not store.values_for(asset):
                        if time.perf_counter() - started > TIMEOUT_S:
                            raise BenchError(f"no value of s3://{info['landing_bucket']}/{key} in {TIMEOUT_S:.0f} s")
                        time.sleep(0.02)
                    latency = time.perf_counter() - started
                    began = time.perf_counter()
                    s3.get_object(info["landing_bucket"], key).read()
                    get = time.perf_counter() - began
                    if i:
                        latencies.append(latency)
                        gets.append(get)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return Figure(
        name="landing-latency",
        description="dev-stack: an object put into the landing bucket until its first value's row exists "
        "(filer webhook -> API -> register -> CPU pool flow run -> value)",
        target_label="put_object returned -> first value stored",
        baseline_label="a raw GET of the same object from the same SeaweedFS",
        samples=Samples(latencies, gets),
        notes={"rounds": repeats, "latency_s_median": statistics.median(latencies)},
    )


# ---- two workers against one


def _throughput(ctx: Context) -> Figure:
    n = ctx.repeats(6, 4)
    rounds = ctx.repeats(3, 1)
    burn_rounds = int(os.environ.get("MEDIAMESH_BENCH_BURN_ROUNDS", "40000"))
    home = ctx.workdir / "home"
    database_url = ctx.stack.enter_context(_fresh_database(ctx))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MEDIAMESH_", "PREFECT_API_URL"))},
        "MEDIAMESH_HOME": str(home),
        "MEDIAMESH_DATABASE_URL": database_url,
        "MEDIAMESH_OBJECT_STORE": f"file://{ctx.workdir / 'blobs'}",
        "MEDIAMESH_FEATURES": MODULE,
        "MEDIAMESH_BENCH_BURN": str(burn_rounds),
        "MEDIAMESH_EXECUTION": "pools",
    }
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        api_url = prefect_api_url(home)
        ctx.stack.callback(stop_prefect_server, home)
        os.environ["PREFECT_API_URL"] = env["PREFECT_API_URL"] = api_url
        settings = StoreSettings()
        registry = configured_registry(f"{MODULE}")
        with Mesh.open(registry, settings) as mesh:
            one, two = [], []
            folder = ctx.workdir / "assets"
            folder.mkdir()
            bare = _bare_burn(folder, burn_rounds)
            for round_ in range(rounds):
                for workers, times in ((1, one), (2, two)) if round_ % 2 == 0 else ((2, two), (1, one)):
                    times.append(_batch(mesh, env, folder, n, workers))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    speedup = statistics.median(one) / statistics.median(two)
    return Figure(
        name="workers-throughput",
        description=f"{n} assets, each {bare:.2f} s of single-threaded CPU work, through the CPU pool: "
        f"two workers (--limit 1 --threads 1) against one; speedup {speedup:.2f}x (target ≥{SPEEDUP_TARGET}x)",
        target_label="two CPU workers: batch submitted -> last value stored",
        baseline_label="one CPU worker, the same batch size (fresh bytes)",
        samples=Samples(two, one),
        max_ratio=round(1 / SPEEDUP_TARGET, 3),
        notes={"assets": n, "rounds": rounds, "speedup": speedup, "bare_burn_s": bare, "cores": os.cpu_count()},
    )


def _batch(mesh: Mesh, env: dict[str, str], folder: Path, n: int, workers: int) -> float:
    tag = uuid.uuid4().hex[:8]
    pools = {"MEDIAMESH_CPU_POOL": f"bench-cpu-{tag}", "MEDIAMESH_GPU_POOL": f"bench-gpu-{tag}"}
    os.environ.update(pools)
    settings = PoolSettings()
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "mediamesh", "worker", "--pool", "cpu", "--limit", "1", "--poll", "0.5"],
            cwd=ROOT,
            env={**env, **pools},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(workers)
    ]
    try:
        if not wait_for_workers(os.environ["PREFECT_API_URL"], {settings.cpu_pool: workers}):
            raise BenchError(f"{workers} worker(s) did not reach {settings.cpu_pool} in 120 s")
        assets = []
        for i in range(n):
            path = folder / f"{tag}-{i}.bin"
            path.write_bytes(os.urandom(64 * 1024))
            asset, _ = mesh.store.register_asset(path, name=path.name)
            assets.append(asset.id)
        started = time.perf_counter()
        the_plan = plan(mesh.store, mesh.registry, assets, mesh.default_targets())
        submitted = submit_stages(mesh, the_plan, trigger="bench", settings=settings)
        if len(submitted) != n:
            raise BenchError(f"submitted {len(submitted)} flow runs for {n} assets")
        while True:
            done = sum(1 for a in assets if len(mesh.store.values_for(a)) == 2)
            if done == n:
                return time.perf_counter() - started
            if time.perf_counter() - started > TIMEOUT_S:
                raise BenchError(f"{done} of {n} assets done after {TIMEOUT_S:.0f} s")
            if any(c.poll() is not None for c in children):
                raise BenchError("a worker exited during the batch")
            time.sleep(0.05)
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _bare_burn(folder: Path, rounds: int) -> float:
    path = folder / "bare.bin"
    path.write_bytes(os.urandom(64 * 1024))
    source = SourceMedia(asset="0" * 64, path=path)
    os.environ["MEDIAMESH_BENCH_BURN"] = str(rounds)
    started = time.perf_counter()
    burn(source)
    return time.perf_counter() - started


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _fresh_database(ctx: Context) -> contextlib.AbstractContextManager[str]:
    from tests.postgres import fresh_database

    return fresh_database(ctx.services.postgres())
