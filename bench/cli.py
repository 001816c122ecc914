"""The command line as whole processes, against a bare Python process that connects and runs one query.

Issue 16: ``mediamesh status ASSET`` and ``mediamesh read ASSET shots --json``, with the database already running,
cost at most twice a bare Python process that imports psycopg, connects to the same database and runs one query.

The home is a user's default one: the embedded Postgres under ``$MEDIAMESH_HOME/pgdata`` and local blobs. A
holder process (``python -m bench.cli``) starts the server, stores ``issue-195-aspect-ratio.mp4`` with every default
target (lite encoders, computed by calling the features directly, as the ``reingest`` benchmark does) and holds the
server up until the benchmark ends: each command joins it, and it stops with its last user, the holder. The
first call of each command, which builds the registry and writes its manifest, is timed apart (``first_call_s``);
the samples are the calls after it, which answer from the catalogue (``cli/quick.py``). Every
command gets the same clean environment (the caller's ``MEDIAMESH_*`` replaced by the home, the lite encoders and
an absent config file) and runs in a scratch directory.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from contextlib import ExitStack, redirect_stdout
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.context import Context
from bench.harness import BenchError, Figure, Samples, interleaved
from bench.ingest import CLIP, LITE
from bench.reingest import compute_and_store
from mediamesh.features import default_registry
from mediamesh.orchestrator.execution.planner import plan
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import StoreSettings, open_store
from mediamesh.store.database import embedded_database_url

__all__ = ["run"]

MAX_RATIO = 2.0
#: The variables a command's settings come from: the caller's are not passed on.
OURS = ("MEDIAMESH_", "PREFECT_API_URL")
ROOT = Path(__file__).resolve().parents[1]
BARE = "import os, psycopg; c = psycopg.connect(os.environ['BENCH_DATABASE_URL']); c.execute('select 1').fetchone()"


def run(ctx: Context) -> list[Figure]:
    home = ctx.workdir / "home"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(OURS)},
        **LITE,
        "MEDIAMESH_HOME": str(home),
        "MEDIAMESH_CONFIG": str(ctx.workdir / "no-config.toml"),
    }
    began = time.perf_counter()
    asset, url = _hold(ctx, env)
    setup_s = time.perf_counter() - began
    env["BENCH_DATABASE_URL"] = url
    mediamesh = _command()
    cpu: dict[str, list[float]] = {"status": [], "read": [], "bare": []}

    def process(name: str, args: list[str]) -> str:
        before = _children_cpu()
        done = subprocess.run(args, env=env, cwd=ctx.workdir, capture_output=True, text=True, check=False)
        cpu[name].append(_children_cpu() - before)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(args[-3:])} exited with {done.returncode}: {done.stderr.strip()[-500:]}")
        return done.stdout

    def status() -> None:
        if "stored" not in process("status", [*mediamesh, "status", asset]):
            raise BenchError("mediamesh status shows no stored value")

    def read() -> None:
        table = json.loads(process("read", [*mediamesh, "read", asset, "shots", "--json"]))
        if not table:
            raise BenchError("mediamesh read ... shots --json printed nothing")

    def bare() -> None:
        process("bare", [sys.executable, "-c", BARE])

    # The first call of each takes the full path and writes the registry's manifest; the rest read the catalogue.
    first: dict[str, float] = {}
    for name, call in (("status", status), ("read", read)):
        began = time.perf_counter()
        call()
        first[name] = time.perf_counter() - began
    for times in cpu.values():
        times.clear()
    status_s, read_s, bare_s = interleaved([status, read, bare], repeats=ctx.repeats(9, 3))
    runs = len(bare_s)
    notes = {
        "command": mediamesh,
        "asset": asset,
        "holder_setup_s": setup_s,
        "first_call_s": first,
        "cpu_s": {name: times[-runs:] for name, times in cpu.items()},
    }
    baseline = "python -c 'import psycopg; psycopg.connect(URL).execute(\"select 1\").fetchone()', the same database"
    return [
        Figure(
            name=f"cli-{name}",
            description=f"`mediamesh {' '.join(args)}` as a whole process, {CLIP.name} with every default target "
            "stored, the embedded Postgres of its home already running",
            target_label=f"{' '.join(mediamesh)} {' '.join(args)}",
            baseline_label=baseline,
            samples=Samples(times, bare_s),
            max_ratio=MAX_RATIO,
            notes=notes,
        )
        for name, args, times in (
            ("status", ["status", "ASSET"], status_s),
            ("read", ["read", "ASSET", "shots", "--json"], read_s),
        )
    ]


def _hold(ctx: Context, env: dict[str, str]) -> tuple[str, str]:
    """Start the holder in the home; its asset id and the database URL the commands use."""
    log = ctx.workdir / "holder.log"
    with log.open("wb") as stderr:
        holder = subprocess.Popen(
            [sys.executable, "-m", "bench.cli"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    stdin, stdout = holder.stdin, holder.stdout
    if stdin is None or stdout is None:
        raise BenchError("the holder has no pipes")

    def release() -> None:
        # Before the home is removed: the holder closes its store, and the server stops with its last user.
        stdin.close()
        holder.wait(timeout=60)

    ctx.stack.callback(release)
    line = stdout.readline()
    if not line:
        tail = log.read_text(errors="replace").strip()[-1000:]
        raise BenchError(
            f"the holder of {env['MEDIAMESH_HOME']} exited with {holder.wait()} before it was ready: {tail}"
        )
    ready = json.loads(line)
    return str(ready["asset"]), str(ready["url"])


def hold() -> None:
    """``python -m bench.cli``: open the home's store (starting its Postgres), store the clip's default targets,
    print the asset and the database URL as one JSON line, and hold the server up until stdin closes."""
    with ExitStack() as stack:
        out = sys.stdout
        stack.enter_context(redirect_stdout(sys.stderr))  # the one line on stdout is the answer
        store = stack.enter_context(open_store(StoreSettings()))
        settings = StoreSettings()
        registry = default_registry()
        asset, _ = store.register_asset(CLIP, name=CLIP.name)
        targets = Mesh(store, registry, home=settings.home_dir).default_targets()
        compute_and_store(store, plan(store, registry, [asset.id], targets), stack)
        if plan(store, registry, [asset.id], targets).missing:
            raise BenchError("values are still missing after computing them")
        url = make_url(embedded_database_url(settings.home_dir)).set(drivername="postgresql")
        print(json.dumps({"asset": asset.id, "url": url.render_as_string(hide_password=False)}), file=out, flush=True)
        sys.stdin.read()


def _command() -> list[str]:
    """The ``mediamesh`` script beside this interpreter, as a user runs it; else ``python -m mediamesh``."""
    script = Path(sys.executable).with_name("mediamesh")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mediamesh"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    hold()
