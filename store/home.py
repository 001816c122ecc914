"""A home's record of the stores it was created with, and the dev stack that may be running in it.

``$MEDIAMESH_HOME/home.toml`` names the object store and the database the home was first used with, without
secrets; every later command in the home must use the same two, or it stops with one line naming both (a
catalogue whose rows point at blobs in another store reads as "reused" and then fails on every read).
``$MEDIAMESH_HOME/stack.json`` is written by ``mediamesh dev-stack`` while it runs; its settings are the
home's defaults then.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy.engine import make_url

from mediamesh.features.errors import DefinitionError
from mediamesh.features.processes import tag_alive

__all__ = ["EMBEDDED", "HOME_FILE", "STACK_FILE", "HomeMismatchError", "HomeStores", "running_stack"]

HOME_FILE = "home.toml"
STACK_FILE = "stack.json"
EMBEDDED = "embedded"


class HomeMismatchError(DefinitionError):
    """A command's object store or database is not the one its home was created with; retrying cannot help."""


@dataclass(frozen=True)
class HomeStores:
    """Which object store and database a home uses: ``file:///...`` or ``s3://BUCKET/PREFIX`` (the endpoint
    may move, the bucket may not), and ``embedded`` or the database's URL without its password."""

    object_store: str
    database: str
    dev_stack: bool = False

    @classmethod
    def of(
        cls, home: Path, object_store: str | None, database_url: str | None, *, dev_stack: bool = False
    ) -> HomeStores:
        return cls(_object_store_uri(home, object_store), _database(home, database_url), dev_stack)

    @classmethod
    def read(cls, home: Path) -> HomeStores | None:
        """The home's record, or None where it has none yet."""
        try:
            data = tomllib.loads((home / HOME_FILE).read_text())
        except FileNotFoundError:
            return None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise HomeMismatchError(f"{home / HOME_FILE} cannot be read ({exc}); fix or remove it") from exc
        return cls(str(data.get("object_store", "")), str(data.get("database", "")), bool(data.get("dev_stack")))

    def write(self, home: Path) -> None:
        """Record these stores as the home's, unless it has a record already (the first writer wins)."""
        home.mkdir(parents=True, exist_ok=True)
        lines = [
            "# The stores this mediamesh home was created with; every command run in it must use the same ones.",
            f"object_store = {json.dumps(self.object_store)}",
            f"database = {json.dumps(self.database)}",
        ]
        if self.dev_stack:
            lines.append("dev_stack = true  # the dev stack's SeaweedFS: run `mediamesh dev-stack` to reach it")
        try:
            fd = os.open(home / HOME_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")

    def check(self, home: Path) -> None:
        """Raise HomeMismatchError where the home records other stores than these."""
        recorded = HomeStores.read(home)
        if recorded is None or (recorded.object_store, recorded.database) == (self.object_store, self.database):
            return
        if recorded.dev_stack and running_stack(home) is None:
            raise HomeMismatchError(
                f"the home {home} keeps its blobs in the dev stack's SeaweedFS ({recorded.object_store}), and the "
                "dev stack is not running: start `mediamesh dev-stack` there, or use another MEDIAMESH_HOME"
            )
        raise HomeMismatchError(
            f"the home {home} was created with object store {recorded.object_store} and database "
            f"{recorded.database} ({home / HOME_FILE}), but this command uses object store {self.object_store} "
            f"and database {self.database}: use the home's settings, or another MEDIAMESH_HOME"
        )


def running_stack(home: Path) -> dict[str, Any] | None:
    """What ``stack.json`` holds while the dev stack that wrote it runs; None when there is none, or it died."""
    try:
        info = json.loads((home / STACK_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not tag_alive(str(info.get("process", ""))):
        return None
    return info


def _object_store_uri(home: Path, object_store: str | None) -> str:
    if object_store is None:
        return (home / "blobs").as_uri()
    if object_store.startswith("file://"):
        path = unquote(object_store.removeprefix("file://"))
        return Path(path).expanduser().resolve().as_uri() if path else object_store
    return object_store.rstrip("/")


def _database(home: Path, database_url: str | None) -> str:
    if database_url is None:
        return EMBEDDED
    url = make_url(database_url)
    host = url.query.get("host") or url.host or ""
    if isinstance(host, tuple):
        host = host[0] if host else ""
    if host and host in _embedded_sockets(home):
        return EMBEDDED
    # URL.set(password=None) keeps the password; the NamedTuple's own _replace drops it.
    plain = url._replace(drivername=url.get_backend_name(), password=None)
    return plain.render_as_string(hide_password=False)


def _embedded_sockets(home: Path) -> set[str]:
    """Where this home's embedded server listens: its data folder, and the socket folder it wrote down."""
    pgdata = home / "pgdata"
    sockets = {str(pgdata)}
    try:
        # postmaster.pid's fifth line is the socket directory (a short one elsewhere when pgdata's path is long).
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return sockets
    if len(lines) > 4 and lines[4]:
        sockets.add(lines[4])
    return sockets
