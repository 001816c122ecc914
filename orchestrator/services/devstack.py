"""``mediamesh dev-stack``: the whole service on one machine, without Docker.

In start order: the embedded Postgres (held by this process), SeaweedFS S3 on loopback with a blob bucket
and a landing bucket whose filer posts every new file to the API, the Prefect server, the API
(``MEDIAMESH_EXECUTION=pools``), one CPU worker and one GPU-pool worker (on the CPU when there is no GPU).
Each child runs in its own process group, logs to ``$MEDIAMESH_HOME/stack/logs/``, and dies with this
process. ``stack.json`` says where everything is; it holds the API token and the S3 keys, so it is 0600 in
the home (made 0700), never printed, and removed when the stack stops. While it exists and this process
runs, commands in the home take their store settings from it (``StoreSettings``).

The stack uses the home it is started in: a fresh home keeps its blobs in the stack's SeaweedFS from then on
(``home.toml`` says so); a home that keeps them on local disk goes on doing so.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from mediamesh.features.errors import UnavailableError
from mediamesh.features.processes import die_with_parent, process_tag
from mediamesh.orchestrator.services.lifecycle import write_private
from mediamesh.orchestrator.services.ports import free_port
from mediamesh.orchestrator.services.prefect_server import prefect_api_url, stop_prefect_server
from mediamesh.orchestrator.services.seaweed import S3Endpoint, Webhook, seaweed_s3
from mediamesh.store import StoreSettings, open_store
from mediamesh.store.database import embedded_database_url
from mediamesh.store.home import EMBEDDED, HomeStores

__all__ = ["SECRETS", "DevStack", "StackError"]

BLOB_BUCKET = "mediamesh"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
# The fields of stack.json that are secrets: never printed or logged, only written 0600 in a 0700 folder.
SECRETS = ("token", "s3_secret_key")


class StackError(UnavailableError):
    """A part of the stack did not start or died; the message names it and carries its log's tail."""


class DevStack:
    """Start with ``with DevStack(home) as stack:``; ``stack.info`` is what ``stack.json`` holds."""

    def __init__(
        self,
        home: Path,
        *,
        api_port: int = 8000,
        landing_bucket: str = "landing",
        log: Callable[[str], None] = print,
    ) -> None:
        self.home = home.expanduser().resolve()
        self.folder = self.home / "stack"
        self.info_path = self.home / "stack.json"
        self.api_port = api_port or free_port()
        self.landing_bucket = landing_bucket
        self.log = log
        self.token = secrets.token_urlsafe(24)
        self.info: dict[str, Any] = {}
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._stack = contextlib.ExitStack()
        self._stop = threading.Event()
        self._waiting = False

    # ---- lifecycle

    def __enter__(self) -> DevStack:
        # SIGTERM while starting stops what started so far, as Ctrl-C does; in wait() it ends the wait.
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        self._stack.callback(lambda: [signal.signal(sig, handler) for sig, handler in previous.items()])
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.log("stopping the dev stack")
        self._stack.close()

    def wait(self) -> None:
        """Block until SIGINT or SIGTERM, or until a child dies (then raise StackError)."""
        self._waiting = True
        while not self._stop.wait(0.5):
            for name, child in self.children.items():
                if child.poll() is not None:
                    raise StackError(f"{name} exited with status {child.returncode}\n{self._tail(name)}")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()
        if not self._waiting:
            raise KeyboardInterrupt(f"signal {signum} while starting")

    # ---- starting

    def _start(self) -> None:
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        self.log(f"dev stack in {self.home}")
        object_store = self._object_store()
        database_url = embedded_database_url(self.home)
        self.log("postgres: embedded, up")
        webhook = Webhook(
            f"http://127.0.0.1:{self.api_port}/events/seaweedfs",
            self.token,
            (f"/buckets/{self.landing_bucket}/",),
        )
        s3 = self._stack.enter_context(
            seaweed_s3(self.folder / "seaweed", buckets=(BLOB_BUCKET, self.landing_bucket), webhook=webhook)
        )
        self.log(f"s3: SeaweedFS at {s3.url}, buckets {BLOB_BUCKET} and {self.landing_bucket}")
        env = self._environment(database_url, s3, object_store)
        # The schema, once, before anything else opens the store: the embedded default (no database_url)
        # migrates as its owner role; the API and workers then connect with database_url, the application role's.
        open_store(
            StoreSettings(
                home=self.home,
                database_url=None,
                object_store=env["MEDIAMESH_OBJECT_STORE"],
                s3_endpoint=s3.url,
                s3_access_key=s3.access_key,
                s3_secret_key=s3.secret_key,
            )
        ).close()
        api_url = f"http://127.0.0.1:{self.api_port}"
        prefect = prefect_api_url(self.home, on_start=lambda: self.log("prefect: starting the server"))
        self._stack.callback(stop_prefect_server, self.home)
        env["PREFECT_API_URL"] = prefect
        self.log(f"prefect: {prefect}")
        self._spawn("api", ["serve", "--host", "127.0.0.1", "--port", str(self.api_port)], env)
        self._wait_http(f"{api_url}/ready", "api")
        self.log(f"api: {api_url} (OpenAPI at {api_url}/docs)")
        for pool in ("cpu", "gpu"):
            self._spawn(
                f"{pool}-worker", ["worker", "--pool", pool, "--name", f"dev-stack-{pool}", "--limit", "1"], env
            )
        self._wait_workers(prefect)
        self.log("workers: dev-stack-cpu and dev-stack-gpu polling")
        self.info = {
            "api_url": api_url,
            "token": self.token,
            "s3_endpoint": s3.url,
            "s3_access_key": s3.access_key,
            "s3_secret_key": s3.secret_key,
            "landing_bucket": self.landing_bucket,
            "prefect_ui": prefect.removesuffix("/api"),
            "prefect_api_url": prefect,
            "database_url": database_url,
            "object_store": env["MEDIAMESH_OBJECT_STORE"],
            "database": EMBEDDED,
            "home": str(self.home),
            "pid": os.getpid(),
            # PID-STARTTIME: what says the stack still runs (a reused pid cannot pass for it).
            "process": process_tag(),
            "pids": {name: child.pid for name, child in self.children.items()},
        }
        self._stack.callback(self.info_path.unlink, missing_ok=True)
        write_private(self.info_path, json.dumps(self.info, indent=2) + "\n")

    @property
    def public_info(self) -> dict[str, Any]:
        """``info`` without its secrets, which ``secrets_in`` says where to find."""
        public = {name: value for name, value in self.info.items() if name not in SECRETS}
        return {**public, "secrets_in": str(self.info_path)}

    def _object_store(self) -> str:
        """The blob store of this home: the one it records, else (a fresh home) the stack's SeaweedFS bucket."""
        recorded = HomeStores.read(self.home)
        if recorded is None:
            recorded = HomeStores(f"s3://{BLOB_BUCKET}/blobs", EMBEDDED, dev_stack=True)
            recorded.write(self.home)
        elif recorded.database != EMBEDDED or not (recorded.dev_stack or recorded.object_store.startswith("file:")):
            raise StackError(
                f"the home {self.home} uses object store {recorded.object_store} and database {recorded.database}, "
                "which the dev stack cannot serve (it runs the embedded database with local or its own blobs): "
                "start it in another MEDIAMESH_HOME"
            )
        return recorded.object_store

    def _environment(self, database_url: str, s3: S3Endpoint, object_store: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "MEDIAMESH_HOME": str(self.home),
                "MEDIAMESH_DATABASE_URL": database_url,
                "MEDIAMESH_OBJECT_STORE": object_store,
                "MEDIAMESH_S3_ENDPOINT": s3.url,
                "MEDIAMESH_S3_ACCESS_KEY": s3.access_key,
                "MEDIAMESH_S3_SECRET_KEY": s3.secret_key,
                "MEDIAMESH_EXECUTION": "pools",
                "MEDIAMESH_API_TOKEN": self.token,
                "MEDIAMESH_API_LANDING_BUCKETS": self.landing_bucket,
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log_path = self.folder / "logs" / f"{name}.log"
        with log_path.open("ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "mediamesh", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        self.children[name] = child
        self._stack.callback(_stop_child, child)

    def _wait_http(self, url: str, name: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError, urllib.error.URLError), urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
            time.sleep(0.2)
        raise StackError(f"{name} did not answer {url} within {READY_TIMEOUT_S:.0f} s\n{self._tail(name)}")

    def _wait_workers(self, prefect: str) -> None:
        from mediamesh.orchestrator.execution.dispatch import PoolSettings
        from mediamesh.orchestrator.execution.workers import wait_for_workers

        pools = PoolSettings()
        wanted: dict[str, set[str] | int] = {pools.cpu_pool: {"dev-stack-cpu"}, pools.gpu_pool: {"dev-stack-gpu"}}
        if not wait_for_workers(prefect, wanted, READY_TIMEOUT_S):
            self._check_alive()
            raise StackError(f"the workers did not reach their pools within {READY_TIMEOUT_S:.0f} s")

    def _check_alive(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None:
                raise StackError(f"{name} exited with status {child.returncode} while starting\n{self._tail(name)}")

    def _tail(self, name: str, lines: int = 30) -> str:
        path = self.folder / "logs" / f"{name}.log"
        try:
            text = path.read_text(errors="replace").splitlines()
        except OSError:
            return f"(no log at {path})"
        return f"last lines of {path}:\n" + "\n".join(text[-lines:])


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's process group (it and what it started), SIGKILL after a grace period."""
    if child.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    # Flow runs a worker started may outlive it in the same group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
