"""The Prefect API mediamesh runs against: ``PREFECT_API_URL`` when set, else a local server it manages.

Prefect's ephemeral mode starts a throwaway server on every run (seconds of start-up and tracebacks at
exit), so instead mediamesh starts one Prefect server per ``$MEDIAMESH_HOME`` on loopback (``prefect_app``: what
``prefect server start`` runs, with a short ``Retry-After`` on its 503s), in the background, and every later
command reuses it. ``mediamesh stop`` ends it; so does a watchdog started
beside it, once the server has been idle for ``MEDIAMESH_PREFECT_IDLE_S`` seconds (default 600): no live
process that asked for it (each one leaves its tag under ``prefect/users/``) and no flow run, task run or
worker heartbeat in that time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mediamesh
from mediamesh.features.errors import UnavailableError
from mediamesh.features.processes import alive, process_tag, tag_alive
from mediamesh.orchestrator.services.ports import free_port

__all__ = ["IDLE_ENV", "prefect_api_url", "server_state", "stop_prefect_server", "watch_idle"]

IDLE_ENV = "MEDIAMESH_PREFECT_IDLE_S"
DEFAULT_IDLE_S = 600.0
_START_TIMEOUT_S = 180.0
_STOP_TIMEOUT_S = 20.0


def prefect_api_url(home: Path, *, on_start: Callable[[], None] | None = None) -> str:
    """The Prefect API to use, starting the home's own server if none is configured or running."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        return configured
    folder = home / "prefect"
    folder.mkdir(parents=True, exist_ok=True)
    with _file_lock(folder / "start.lock"):
        state = server_state(home)
        if state is not None:
            url = str(state["url"])
        else:
            if on_start is not None:
                on_start()
            url = _start(folder)
        # Under the lock, so that the watchdog either sees this process or has stopped the server first.
        users = folder / "users"
        users.mkdir(exist_ok=True)
        (users / process_tag()).touch()
        return url


def server_state(home: Path) -> dict[str, object] | None:
    """The running managed server's ``{"pid", "url"}``, or None when it is not running."""
    path = home / "prefect" / "server.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if alive(int(state["pid"])) and _healthy(str(state["url"])):
        return dict(state)
    return None


def stop_prefect_server(home: Path) -> bool:
    """Stop the home's managed Prefect server and its watchdog; False when none was running."""
    state = server_state(home)
    if state is None:
        return False
    watchdog = str(state.get("watchdog", ""))
    if watchdog and tag_alive(watchdog):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(watchdog.partition("-")[0]), signal.SIGTERM)
    _stop(home / "prefect", int(str(state["pid"])))
    return True


def watch_idle(folder: Path, pid: int, url: str, idle_s: float) -> None:
    """Stop the server ``pid`` (at ``url``, started in ``folder``) once it has been idle for ``idle_s``
    seconds; return when it has stopped, whoever stopped it. The loop of the watchdog process."""
    poll_s = min(max(idle_s / 4, 0.5), 15.0)
    last_used = time.monotonic()
    while alive(pid):
        if _in_use(folder, url, idle_s):
            last_used = time.monotonic()
        elif time.monotonic() - last_used >= idle_s:
            with _file_lock(folder / "start.lock"):
                # A command may have registered between the check and the lock.
                if not alive(pid) or _in_use(folder, url, idle_s):
                    last_used = time.monotonic()
                    continue
                _stop(folder, pid)
            return
        time.sleep(poll_s)


def _in_use(folder: Path, url: str, idle_s: float) -> bool:
    """Whether a live process registered as a user, or the API saw work in the last ``idle_s`` seconds."""
    in_use = False
    for user in (folder / "users").glob("*"):
        if tag_alive(user.name):
            in_use = True
        else:
            user.unlink(missing_ok=True)
    return in_use or _api_activity(url, datetime.now(UTC) - timedelta(seconds=idle_s))


def _api_activity(url: str, since: datetime) -> bool:
    """A flow or task run started or ended, or a worker sent a heartbeat, after ``since`` (covers clients
    that reach the server through ``PREFECT_API_URL`` without registering)."""
    after = {"after_": since.isoformat()}
    runs = {"operator": "or_", "start_time": after, "end_time": after}
    try:
        if _post(f"{url}/flow_runs/filter", {"flow_runs": runs, "limit": 1}):
            return True
        if _post(f"{url}/task_runs/filter", {"task_runs": runs, "limit": 1}):
            return True
        for pool in _post(f"{url}/work_pools/filter", {}):
            workers = f"{url}/work_pools/{urllib.parse.quote(str(pool['name']), safe='')}/workers/filter"
            if _post(workers, {"workers": {"last_heartbeat_time": after}}):
                return True
    except (OSError, ValueError):
        return False  # an API that does not answer is not doing work
    return False


def _post(url: str, body: dict[str, object]) -> list[dict[str, object]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        found = json.loads(response.read())
    return found if isinstance(found, list) else []


def _stop(folder: Path, pid: int) -> None:
    """SIGTERM to the server's process group (it and its uvicorn), SIGKILL after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    (folder / "server.json").unlink(missing_ok=True)


_IDLE_SERVICES = ("SCHEDULER", "LATE_RUNS", "PAUSE_EXPIRATIONS", "TRIGGERS", "REPOSSESSOR")


def _start(folder: Path) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    # The server outlives the command that starts it, so not that command's scratch folder.
    (folder / "tmp").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "PREFECT_HOME": str(folder),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{folder / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        # Loops mediamesh has no use for, which share the cores with the work: deployment schedules (its runs are
        # made on demand), marking scheduled runs late (workers take those too), pause expirations, automations
        # and concurrency-lease reclaiming. Task runs, events, workers' liveness and cancellation stay.
        **{f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in _IDLE_SERVICES},
        "TMPDIR": str(folder / "tmp"),
    }
    env.pop("PREFECT_API_URL", None)
    log = open(folder / "server.log", "ab")  # noqa: SIM115 - handed to the detached child
    # Prefect's server as `prefect server start` runs it, with a Retry-After on its 503s (prefect_app.py).
    proc = subprocess.Popen(
        [sys.executable, "-m", f"{__package__}.prefect_app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**env, "PYTHONPATH": _import_path(env)},
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (folder / "server.log").read_text(errors="replace").strip().splitlines()[-5:]
            raise UnavailableError(f"the Prefect server exited at start-up: {' | '.join(tail)}")
        if _healthy(url):
            watchdog = _start_watchdog(folder, proc.pid, url, env)
            (folder / "server.json").write_text(json.dumps({"pid": proc.pid, "url": url, "watchdog": watchdog}))
            return url
        time.sleep(0.25)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    raise UnavailableError(
        f"the Prefect server did not answer within {_START_TIMEOUT_S:.0f} s; see {folder}/server.log"
    )


def _start_watchdog(folder: Path, pid: int, url: str, env: dict[str, str]) -> str:
    """Start ``watch_idle`` in a process of its own session, which outlives this one; its tag."""
    idle_s = float(os.environ.get(IDLE_ENV) or DEFAULT_IDLE_S)
    code = (
        "import sys; from pathlib import Path; from mediamesh.orchestrator.services.prefect_server import watch_idle; "
    )
    code += "watch_idle(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))"
    with open(folder / "watchdog.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(folder), str(pid), url, str(idle_s)],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**env, "PYTHONPATH": _import_path(env)},
            start_new_session=True,
        )
    return process_tag(proc.pid)


def _import_path(env: dict[str, str]) -> str:
    """``PYTHONPATH`` for a child that imports mediamesh from wherever this process did, installed or not."""
    source = str(Path(mediamesh.__file__).parent.parent)  # not resolve(): in a wheel there are no links
    return os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
