"""The catalogue read with psycopg alone: what ``mediamesh status`` and ``mediamesh read`` need, without SQLAlchemy.

A command line call that only reads pays for its imports more than for its queries: SQLAlchemy, Alembic and
the store's gateway take longer to import than Postgres takes to answer. So the command line first tries
this reader, which imports psycopg and nothing heavy, on the embedded default home only (the database
under ``$MEDIAMESH_HOME/pgdata``, already running, and blobs under ``$MEDIAMESH_HOME/blobs``). Wherever it
cannot answer exactly as the full path would, it raises :class:`CatalogueUnavailable` and the caller takes
the full path (``Store``): another database or object store, a server that is not running, a schema other
than the one expected, an asset reference that is not a plain id, prefix or name, or a stored value it cannot
read here.

Each method answers as the ``Store`` method it names does; ``tests/store/test_catalogue_reader.py`` checks that they
agree, row for row, on a store that has values, failures, claims, attachments and promotions.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

import psycopg
import xxhash
from psycopg.rows import dict_row

from mediamesh.store.records import AttemptRecord, ValueRecord

__all__ = ["CatalogueReader", "CatalogueUnavailable"]

#: Settings that point a home away from its embedded database and local blobs: the full path reads those.
_ELSEWHERE = ("MEDIAMESH_DATABASE_URL", "MEDIAMESH_OBJECT_STORE")
_HEX = frozenset("0123456789abcdef")
_VALUE_COLUMNS = ", ".join(f.name for f in fields(ValueRecord))


class CatalogueUnavailable(Exception):
    """This reader cannot answer exactly as the store would; the caller reads through ``Store`` instead."""


class CatalogueReader:
    """One connection, as the application role, to a home's running embedded Postgres."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]], home: Path) -> None:
        self.conn = conn
        self.home = home

    @classmethod
    @contextmanager
    def open(cls, home: Path, schema: str) -> Iterator[CatalogueReader]:
        """Connect to the embedded server of ``home`` if it runs, its schema at revision ``schema``."""
        if any(os.environ.get(name) for name in _ELSEWHERE) or (home / "stack.json").exists():
            raise CatalogueUnavailable("the home's stores are configured, not embedded")
        try:
            recorded = tomllib.loads((home / "home.toml").read_text())
            lines = (home / "pgdata" / "postmaster.pid").read_text().splitlines()
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CatalogueUnavailable(f"no embedded server is running in {home}") from exc
        if recorded != {"object_store": (home / "blobs").as_uri(), "database": "embedded"}:
            raise CatalogueUnavailable("the home was created with other stores")
        if len(lines) < 8 or lines[7].strip() != "ready":
            raise CatalogueUnavailable("the embedded server is not ready")
        try:
            conn = psycopg.connect(
                host=lines[4], port=lines[3], dbname="mediamesh", user="mediamesh_app", row_factory=dict_row
            )
        except psycopg.Error as exc:
            raise CatalogueUnavailable(f"cannot connect: {exc}") from exc
        with conn:
            reader = cls(conn, home)
            try:
                if reader._one("SELECT version_num FROM alembic_version") != {"version_num": schema}:
                    raise CatalogueUnavailable("the schema is not at the expected revision")
                yield reader
            except psycopg.Error as exc:  # the server stopped with its last user, say: the full path starts it
                raise CatalogueUnavailable(f"the database failed: {exc}") from exc

    def resolve_asset(self, ref: str) -> str:
        """As ``Store.resolve_asset``; a reference it would refuse, or that may be a file, is not answered."""
        hex_ref = ref.lower() if ref and _HEX.issuperset(ref.lower()) else None
        if hex_ref is not None and self._one("SELECT id FROM assets WHERE id = %s", hex_ref):
            return hex_ref
        if "\x00" not in ref:
            named = self._all("SELECT DISTINCT asset_id FROM aliases WHERE name = %s", ref)
            if len(named) == 1:
                return str(named[0]["asset_id"])
            if len(named) > 1:
                raise CatalogueUnavailable("ambiguous name")
        if hex_ref is not None:
            matches = self._all("SELECT id FROM assets WHERE id LIKE %s LIMIT 2", hex_ref + "%")
            if len(matches) == 1:
                return str(matches[0]["id"])
        raise CatalogueUnavailable(f"{ref!r} is no asset id, prefix or name (perhaps a file)")

    def names(self, asset: str) -> tuple[str, ...]:
        """As ``Store.asset(asset).names``: oldest first."""
        rows = self._all("SELECT name FROM aliases WHERE asset_id = %s ORDER BY created_at, name", asset)
        return tuple(r["name"] for r in rows)

    def values_for(self, asset: str, feature: str | None = None, version: str | None = None) -> list[ValueRecord]:
        """As ``Store.values_for``: newest first."""
        rows = self._all(
            f"SELECT {_VALUE_COLUMNS} FROM feature_values WHERE asset_id = %s AND (%s::text IS NULL OR feature = %s)"
            " AND (%s::text IS NULL OR version = %s) ORDER BY created_at DESC",
            asset,
            feature,
            feature,
            version,
            version,
        )
        return [ValueRecord(**r) for r in rows]

    def attempts_for(self, asset: str) -> list[AttemptRecord]:
        """As ``Store.attempts_for``: newest first."""
        rows = self._all("SELECT * FROM attempts WHERE asset_id = %s ORDER BY finished_at DESC", asset)
        return [
            AttemptRecord(
                r["value_key"],
                r["asset_id"],
                r["feature"],
                r["version"],
                r["error_type"],
                r["message"],
                r["retryable"],
                r["worker"],
                r["started_at"],
                r["finished_at"],
            )
            for r in rows
        ]

    def live_claims(self, asset: str) -> list[dict[str, Any]]:
        """As ``Store.live_claims``: the claims whose holder still holds its advisory lock."""
        rows = self._all(
            "SELECT c.*, pg_try_advisory_lock(('x' || left(c.value_key, 16))::bit(64)::bigint) AS free"
            " FROM claims c WHERE c.asset_id = %s",
            asset,
        )
        if any(r["free"] for r in rows):
            self._one("SELECT pg_advisory_unlock_all()")
        return [{k: v for k, v in r.items() if k != "free"} for r in rows if not r["free"]]

    def attachment_files(self, asset: str, kind: str) -> list[tuple[str | None, str]]:
        """The (language, SHA-256) of the asset's current files of ``kind``, as ``Store.attachments`` finds them:
        the newest row of each file says its language; the newest file per language is current."""
        rows = self._all(
            "SELECT language, sha256 FROM (SELECT DISTINCT ON (language) * FROM"
            " (SELECT DISTINCT ON (sha256) * FROM attachments WHERE asset_id = %s AND kind = %s"
            "  ORDER BY sha256, attached_at DESC, id DESC) newest_per_file"
            " ORDER BY language, attached_at DESC, id DESC) latest",
            asset,
            kind,
        )
        return [(r["language"] or None, r["sha256"]) for r in rows]

    def promoted_artefact(self, kind: str) -> str | None:
        """The id of the artefact of ``kind`` promoted last (``Store.promoted``), or None."""
        row = self._one(
            "SELECT artefact_id FROM promotions WHERE kind = %s ORDER BY promoted_at DESC, id DESC LIMIT 1", kind
        )
        return str(row["artefact_id"]) if row else None

    def promoted_version(self, feature: str) -> str | None:
        """As ``Store.promoted_version``."""
        row = self._one(
            "SELECT version FROM feature_promotions WHERE feature = %s ORDER BY promoted_at DESC, id DESC LIMIT 1",
            feature,
        )
        return str(row["version"]) if row else None

    def value(self, key: str) -> ValueRecord | None:
        """As ``Store.value``."""
        row = self._one(f"SELECT {_VALUE_COLUMNS} FROM feature_values WHERE key = %s", key)
        return ValueRecord(**row) if row else None

    def value_bytes(self, record: ValueRecord) -> bytes:
        """A stored (non-file) value's bytes from the home's blobs, checked against its row as ``Store.load``
        checks them: the size, and the xxh3 (SHA-256 for older rows). Anything else is the full path's to
        report."""
        if record.payload_kind == "file":
            raise CatalogueUnavailable("a media file value")
        try:
            data = (self.home / "blobs" / record.blob_key).read_bytes()
        except OSError as exc:
            raise CatalogueUnavailable(f"cannot read {record.blob_key}: {exc}") from exc
        digest = xxhash.xxh3_64(data).hexdigest() if record.xxh3 is not None else hashlib.sha256(data).hexdigest()
        if len(data) != record.bytes or digest != (record.xxh3 or record.checksum):
            raise CatalogueUnavailable(f"{record.blob_key} does not match its row")
        return data

    def _one(self, query: str, *params: Any) -> dict[str, Any] | None:
        return self.conn.execute(query, params).fetchone()

    def _all(self, query: str, *params: Any) -> list[dict[str, Any]]:
        return self.conn.execute(query, params).fetchall()
