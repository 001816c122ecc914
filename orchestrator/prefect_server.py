"""The Prefect API mediamesh runs against: ``PREFECT_API_URL`` when set, else a local server it manages.

Prefect's ephemeral mode starts a throwaway server on every run (seconds of start-up and tracebacks at
exit), so instead mediamesh starts one ``prefect server start`` per ``$MEDIAMESH_HOME`` on loopback, in
the background, and every later command reuses it. ``mediamesh stop`` ends it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from features.errors import TransientError

__all__ = ["prefect_api_url", "server_state", "stop_prefect_server"]

_START_TIMEOUT_S = 180.0


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
            return str(state["url"])
        if on_start is not None:
            on_start()
        return _start(folder)


def server_state(home: Path) -> dict[str, object] | None:
    """The running managed server's ``{"pid", "url"}``, or None when it is not running."""
    path = home / "prefect" / "server.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if _alive(int(state["pid"])) and _healthy(str(state["url"])):
        return dict(state)
    return None


def stop_prefect_server(home: Path) -> bool:
    """Stop the home's managed Prefect server; False when none was running."""
    state = server_state(home)
    if state is None:
        return False
    pid = int(str(state["pid"]))
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    (home / "prefect" / "server.json").unlink(missing_ok=True)
    return True


def _start(folder: Path) -> str:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(folder),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{folder / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    exe = Path(sys.executable).parent / "prefect"
    command = [str(exe) if exe.exists() else shutil.which("prefect") or "prefect"]
    log = open(folder / "server.log", "ab")  # noqa: SIM115 - handed to the detached child
    proc = subprocess.Popen(
        [*command, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (folder / "server.log").read_text(errors="replace").strip().splitlines()[-5:]
            raise TransientError(f"the Prefect server exited at start-up: {' | '.join(tail)}")
        if _healthy(url):
            (folder / "server.json").write_text(json.dumps({"pid": proc.pid, "url": url}))
            return url
        time.sleep(0.25)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    raise TransientError(f"the Prefect server did not answer within {_START_TIMEOUT_S:.0f} s; see {folder}/server.log")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
