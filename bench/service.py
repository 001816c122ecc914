"""The service: landing-to-first-value latency, landing-to-encode, and throughput of two CPU workers against one.

- **landing-latency**: ``mediamesh dev-stack`` (SeaweedFS with the filer webhook, the API, the Prefect
  server, a CPU and a GPU-pool worker) running the cheap features of this module and the built-in ``encode``;
  a new object is put into the landing bucket with the MinIO SDK and the clock runs until its first value's row
  is in Postgres. Baseline: a raw GET of the same object from the same S3 server.
- **landing-to-encode**: on the same stack, a fresh copy of ``issue-195-aspect-ratio.mp4`` (re-muxed with a
  unique comment: new bytes, the same streams) is put into the landing bucket and the clock runs until its
  ``encode`` row is stored. Baseline: the ``encode`` feature called in this process on the same copy, the two
  sides alternating first. Target: at most 3x.
- **workers-throughput**: the same batch of assets (distinct bytes each round) on one single-threaded CPU
  worker and on two, side by side in alternating rounds; each asset costs a fixed amount of single-threaded
  CPU work (``burn``). Time runs from the submission of the batch to its last value. Target: two workers
  at least 1.5x as fast as one, i.e. a ratio of at most 0.667.

Each landing round waits, untimed, for the asset's flow run to finish before the next object lands.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.harness import BenchError, Figure, Samples
from bench.ingest import CLIP
from mediamesh.features import SourceMedia, feature
from mediamesh.features.encode import encode
from mediamesh.features.media import ffmpeg_exe
from mediamesh.orchestrator.execution.dispatch import PoolSettings
from mediamesh.orchestrator.execution.planner import plan
from mediamesh.orchestrator.execution.workers import submit_stages, wait_for_workers
from mediamesh.orchestrator.mesh import Mesh, configured_registry
from mediamesh.orchestrator.services.devstack import DevStack
from mediamesh.store import Store, StoreSettings, open_store
from tests.orchestrator.resources.counting_features import Number

__all__ = ["burn", "first", "run"]

MODULE = "bench.service"
#: The dev stack's features: this module's two cheap ones and the built-in encode, which runs between them
#: (``burn``, ``encode``, ``first``: the registry's order), so ``first`` stored means the flow run is done.
STACK_FEATURES = f"{MODULE},mediamesh.features.encode"
ENCODE_RATIO = 3.0
#: What the landing-latency figure lands: the smallest shared clip, so the figure is about the path, not the work.
SMALL_CLIP = Path(__file__).resolve().parents[1] / "tests" / "data" / "counter.mp4"
ROOT = Path(__file__).resolve().parents[1]
SPEEDUP_TARGET = 1.5
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
    return [*_landing(ctx), _throughput(ctx)]


# ---- landing to first value, and to the encode


def _landing(ctx: Context) -> list[Figure]:
    """Both landing figures on one dev stack: its start-up (tens of seconds) is paid once."""
    home = ctx.held_home()
    # The run's Prefect server, already up: the stack uses a configured PREFECT_API_URL instead of starting one.
    prefect = ctx.services.prefect().url
    ctx.environment(MEDIAMESH_FEATURES=STACK_FEATURES, MEDIAMESH_BENCH_BURN="0", PREFECT_API_URL=prefect)
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
            landing = _Landing(s3, info["landing_bucket"], store)
            return [_landing_latency(ctx, landing), _landing_to_encode(ctx, landing)]


@dataclass(frozen=True)
class _Landing:
    """The dev stack's landing bucket and its store, as a bench round sees them."""

    s3: Any
    bucket: str
    store: Store

    def land(self, key: str, data: bytes) -> str:
        """Put ``data`` into the landing bucket; its asset id."""
        self.s3.put_object(self.bucket, key, io.BytesIO(data), len(data))
        return hashlib.sha256(data).hexdigest()

    def wait_for(self, asset: str, feature: str | None, started: float) -> None:
        """Until a value of ``feature`` (None: any) of ``asset`` is stored."""
        while not self.store.values_for(asset, feature):
            if time.perf_counter() - started > TIMEOUT_S:
                what = f"the {feature} value" if feature else "a value"
                raise BenchError(f"no {what} of landed asset {asset[:12]} in {TIMEOUT_S:.0f} s")
            time.sleep(0.02)

    def settle(self, asset: str) -> None:
        """Until the asset's flow run is done (``first`` is computed last), so that no round overlaps the next."""
        self.wait_for(asset, "first", time.perf_counter())


def _landing_latency(ctx: Context, landing: _Landing) -> Figure:
    repeats = ctx.repeats(5, 2)
    latencies, gets = [], []
    folder = ctx.workdir / "small-copies"
    folder.mkdir()
    for i in range(repeats + 1):  # the first round warms the workers' imports: untimed
        # A video (the stack's encode gates the other features: a non-video object would get no value at all),
        # small and new each round.
        copy = _fresh_copy(SMALL_CLIP, folder / f"{i}.mp4")
        data = copy.read_bytes()
        key = f"bench/small-{i}.mp4"
        asset = landing.land(key, data)
        started = time.perf_counter()
        landing.wait_for(asset, None, started)
        latency = time.perf_counter() - started
        began = time.perf_counter()
        landing.s3.get_object(landing.bucket, key).read()
        get = time.perf_counter() - began
        landing.settle(asset)
        if i:
            latencies.append(latency)
            gets.append(get)
    return Figure(
        name="landing-latency",
        description=f"dev-stack: a fresh copy of {SMALL_CLIP.name} (re-muxed, new bytes) put into the landing bucket "
        "until its first value's row exists (filer webhook -> API -> register -> CPU pool flow run -> value; the "
        "first is its encode, which gates the rest)",
        target_label="put_object returned -> first value stored",
        baseline_label="a raw GET of the same object from the same SeaweedFS",
        samples=Samples(latencies, gets),
        notes={"rounds": repeats, "latency_s_median": statistics.median(latencies)},
    )


def _landing_to_encode(ctx: Context, landing: _Landing) -> Figure:
    """A fresh copy of the clip landed until its ``encode`` row is stored, against the feature on the same copy."""
    repeats = ctx.repeats(5, 2)
    copies = ctx.workdir / "copies"
    copies.mkdir()
    landed, direct = [], []
    for i in range(repeats + 1):  # the first round warms the worker's first encode: untimed
        copy = _fresh_copy(CLIP, copies / f"{i}.mp4")
        data = copy.read_bytes()
        asset = ""
        for side in ("landed", "direct") if i % 2 == 0 else ("direct", "landed"):
            started = time.perf_counter()
            if side == "landed":
                asset = landing.land(f"bench/clip-{i}.mp4", data)
                landing.wait_for(asset, "encode", started)
                landed.append(time.perf_counter() - started)
            else:
                encoded = encode(SourceMedia(asset=hashlib.sha256(data).hexdigest(), path=copy, name=copy.name))
                direct.append(time.perf_counter() - started)
                shutil.rmtree(encoded.path.parent, ignore_errors=True)
        landing.settle(asset)
        copy.unlink()
    return Figure(
        name="landing-to-encode",
        description=f"dev-stack: a fresh copy of {CLIP.name} (re-muxed, new bytes each round) put into the landing "
        "bucket until its encode value's row exists (upload, webhook, API, register, CPU pool flow run, encode, "
        "store), against the encode feature called in this process on the same copy",
        target_label="put_object called -> encode value stored",
        baseline_label="features.encode.encode(SourceMedia(copy)): the feature's own time",
        samples=Samples(landed[1:], direct[1:]),
        max_ratio=ENCODE_RATIO,
        notes={"rounds": repeats, "stack_features": STACK_FEATURES, "bytes": CLIP.stat().st_size},
    )


def _fresh_copy(clip: Path, out: Path) -> Path:
    """The clip's streams untouched in a new container with a unique comment: new bytes, the same media."""
    command = [
        ffmpeg_exe(),
        *("-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip)),
        *("-map", "0", "-c", "copy", "-metadata", f"comment={uuid.uuid4()}", str(out)),
    ]
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"ffmpeg could not re-mux {clip.name}: {done.stderr.decode(errors='replace').strip()}")
    return out


# ---- two workers against one


def _throughput(ctx: Context) -> Figure:
    n = ctx.repeats(6, 4)
    # Three rounds, alternating which goes first (one worker, then two, then one): a batch takes 8-15 s, and with
    # two rounds one slow batch (the cores are shared with the Prefect server and Postgres) moved the median.
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
    env["PREFECT_API_URL"] = ctx.services.prefect().url  # the run's server: the batches' pools are their own
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        settings = StoreSettings()
        registry = configured_registry(f"{MODULE}")
        with Mesh.open(registry, settings) as mesh:
            one: list[float] = []
            two: list[float] = []
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
        # Polled lightly (the workers' cores are this process's too): one query for the values not stored yet,
        # every 0.1 s.
        pending = {v.key for v in the_plan.missing}
        if len(pending) != 2 * n:
            raise BenchError(f"planned {len(pending)} values for {n} assets, expected {2 * n}")
        while True:
            pending -= mesh.store.stored_keys(pending)
            if not pending:
                return time.perf_counter() - started
            if time.perf_counter() - started > TIMEOUT_S:
                raise BenchError(f"{2 * n - len(pending)} of {2 * n} values stored after {TIMEOUT_S:.0f} s")
            if any(c.poll() is not None for c in children):
                raise BenchError("a worker exited during the batch")
            time.sleep(0.1)
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
