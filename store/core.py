"""What every part of the gateway shares: the engine and blob store, connections, the gc lock, a statement count.

Connections come from ``_connect`` and ``_begin``, never from the engine directly, so that a pool with no
connection free is a ``BackendUnavailableError`` like a server that refuses one (``database.create_engine``
turns every psycopg ``OperationalError`` into one): no SQLAlchemy error about reaching the database leaves
the store.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mediamesh.features.errors import BackendUnavailableError
from mediamesh.store.blobs import BlobStore
from mediamesh.store.database import DATABASE_HINT, describe_url

__all__ = ["GC_LOCK", "StatementCount", "StoreCore", "lock_id"]

# Computing work holds this advisory lock shared; garbage collection takes it exclusively, so gc never
# sweeps a blob whose row is about to be written.
GC_LOCK = 0x6D6D6763


@dataclass
class StatementCount:
    """The SQL statements a store's engine executed since the count began, with their parameters."""

    statements: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


class StoreCore:
    """The engine and blob store every part of ``Store`` works through."""

    def __init__(self, engine: Engine, blobs: BlobStore, *, database_url: str) -> None:
        self.engine = engine
        self.blobs = blobs
        self.database_url = database_url

    def close(self) -> None:
        self.engine.dispose()

    def database_url_for_display(self) -> str:
        """The database's URL with its password hidden, for people and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def counting_statements(self) -> Iterator[StatementCount]:
        """Count the SQL statements this store's engine executes inside the block (in any thread)."""
        counted = StatementCount()

        def count(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            counted.statements.append((statement, parameters))

        sa.event.listen(self.engine, "before_cursor_execute", count)
        try:
            yield counted
        finally:
            sa.event.remove(self.engine, "before_cursor_execute", count)

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        try:
            conn = self.engine.connect()
        except sa.exc.TimeoutError as exc:
            raise BackendUnavailableError(
                "database", describe_url(self.engine.url), f"no connection free in the pool ({exc})", DATABASE_HINT
            ) from exc
        with conn:
            yield conn

    @contextmanager
    def _autocommit(self) -> Iterator[sa.Connection]:
        """A connection on which each statement commits on its own: for a single statement, or statements that
        need no common transaction. psycopg sends a transaction's BEGIN as a round trip of its own and SQLAlchemy
        rolls back on return, so this saves two of a lone statement's three round trips."""
        with self._connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        with self._connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _gc_guard(self) -> Iterator[None]:
        with self._connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock_shared(:g)"), {"g": GC_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock_shared(:g)"), {"g": GC_LOCK})
                conn.commit()


def lock_id(key: str) -> int:
    """A signed 64-bit advisory-lock id from a hex key."""
    return int(struct.unpack(">q", bytes.fromhex(key[:16]))[0])
