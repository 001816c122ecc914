"""Assets and the names (aliases) they were registered under."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert

from mediamesh.features.values import SourceMedia
from mediamesh.store import schema
from mediamesh.store.core import StoreCore
from mediamesh.store.records import AmbiguousAssetError, AssetNotFoundError, AssetRecord, hash_file

__all__ = ["AssetStore"]


class AssetStore(StoreCore):
    """Assets, stored once by content, and their names."""

    def register_asset(self, path: Path, name: str, *, sha256: str | None = None) -> tuple[AssetRecord, bool]:
        """Store the file's bytes once and record ``name`` as an alias. Returns (asset, whether new)."""
        asset_id = sha256 or hash_file(path)
        with self._begin() as conn:
            known = conn.execute(sa.select(schema.assets.c.id).where(schema.assets.c.id == asset_id)).first()
            if known is not None:
                conn.execute(pg_insert(schema.aliases).values(asset_id=asset_id, name=name).on_conflict_do_nothing())
        if known is not None:
            return self.asset(asset_id), False
        with self._gc_guard():
            info = self.blobs.put_file(path, sha256=asset_id)
            with self._begin() as conn:
                inserted = conn.execute(
                    pg_insert(schema.assets)
                    .values(id=asset_id, size=info.size, blob_key=info.key)
                    .on_conflict_do_nothing()
                    .returning(schema.assets.c.id)
                ).first()
                conn.execute(pg_insert(schema.aliases).values(asset_id=asset_id, name=name).on_conflict_do_nothing())
        return self.asset(asset_id), inserted is not None

    def asset(self, asset_id: str) -> AssetRecord:
        with self._autocommit() as conn:
            row = conn.execute(_asset_rows().where(schema.assets.c.id == asset_id)).first()
        if row is None:
            raise AssetNotFoundError(f"no asset {asset_id!r}")
        return _asset_record(row)

    def assets(self, *, offset: int = 0, limit: int | None = None) -> list[AssetRecord]:
        """The assets in the order they were registered, from ``offset``, at most ``limit``: one query."""
        assets = schema.assets
        query = _asset_rows().order_by(assets.c.created_at, assets.c.id).offset(offset).limit(limit)
        with self._autocommit() as conn:
            return [_asset_record(row) for row in conn.execute(query)]

    def count_assets(self) -> int:
        with self._autocommit() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(schema.assets)).scalar_one())

    def assets_named(self, names: Sequence[str]) -> dict[str, str]:
        """The asset each of ``names`` was registered under (names never registered are left out); one query."""
        if not names:
            return {}
        table = schema.aliases
        with self._autocommit() as conn:
            rows = conn.execute(
                sa.select(table.c.name, table.c.asset_id)
                .where(table.c.name.in_(list(dict.fromkeys(names))))
                .order_by(table.c.created_at)
            ).all()
        return {row.name: row.asset_id for row in rows}

    def resolve_asset(self, ref: str) -> str:
        """An asset id from, in this order: the exact id, a name the asset was ingested under (or an alias),
        then a unique id prefix of any length (hex, any case).

        Only the database is asked, never the file system, so the answer cannot tell a caller which paths
        exist on this machine (the API resolves with this). ``resolve_local_asset`` also takes a file.
        """
        unknown = f"no asset matches {ref!r} (give an asset id, a unique prefix or a name it was ingested under)"
        if "\x00" in ref:  # no name holds one, and Postgres text cannot
            raise AssetNotFoundError(unknown)
        ids = schema.assets.c.id
        hex_ref = ref.lower() if ref and all(c in "0123456789abcdef" for c in ref.lower()) else None
        with self._autocommit() as conn:
            if hex_ref is not None and conn.execute(sa.select(ids).where(ids == hex_ref)).first() is not None:
                return hex_ref
            by_name = (
                conn.execute(sa.select(schema.aliases.c.asset_id).where(schema.aliases.c.name == ref).distinct())
                .scalars()
                .all()
            )
            if len(by_name) > 1:
                raise AmbiguousAssetError(f"{ref!r} names several assets (the file changed between ingests)")
            if by_name:
                return str(by_name[0])
            if hex_ref is not None:
                matches = conn.execute(sa.select(ids).where(ids.startswith(hex_ref)).limit(2)).scalars().all()
                if len(matches) > 1:
                    raise AmbiguousAssetError(f"asset prefix {ref!r} matches several assets; give more characters")
                if matches:
                    return str(matches[0])
        raise AssetNotFoundError(unknown)

    def resolve_local_asset(self, ref: str) -> str:
        """As ``resolve_asset``, then, as the last resort, a path to a file on this machine means the asset of
        that file's bytes.

        For the CLI, whose user names their own files; never for a remote caller.
        """
        try:
            return self.resolve_asset(ref)
        except AssetNotFoundError:
            path = Path(ref)
            if not path.is_file():
                raise
        asset_id = hash_file(path)
        if self._asset_exists(asset_id):
            return asset_id
        raise AssetNotFoundError(f"the bytes of {ref!r} were never ingested (sha256 {asset_id[:12]})")

    def _asset_exists(self, asset_id: str) -> bool:
        with self._autocommit() as conn:
            return conn.execute(sa.select(schema.assets.c.id).where(schema.assets.c.id == asset_id)).first() is not None

    def assets_by_id(self, asset_ids: Iterable[str]) -> dict[str, AssetRecord]:
        """The assets of ``asset_ids`` that exist, by id: one query."""
        wanted = list(dict.fromkeys(asset_ids))
        if not wanted:
            return {}
        with self._autocommit() as conn:
            rows = conn.execute(_asset_rows().where(schema.assets.c.id.in_(wanted))).all()
        return {row.id: _asset_record(row) for row in rows}

    def source(self, asset_id: str, name: str | None = None, *, asset: AssetRecord | None = None) -> SourceMedia:
        """The asset's bytes as a local file (downloaded and cached when the blobs are remote); ``asset``, its
        record when already in hand (``assets_by_id``), saves looking it up."""
        if asset is None or asset.id != asset_id:
            asset = self.asset(asset_id)
        return SourceMedia(asset=asset_id, path=self.blobs.local_path(asset.blob_key), name=name or _first(asset.names))


def _asset_rows() -> sa.Select[Any]:
    """Assets with their names (oldest first) gathered in the same query."""
    aliases = schema.aliases
    names = (
        sa.select(sa.func.array_agg(aggregate_order_by(aliases.c.name, aliases.c.created_at, aliases.c.name)))
        .where(aliases.c.asset_id == schema.assets.c.id)
        .scalar_subquery()
    )
    return sa.select(schema.assets, names.label("names"))


def _asset_record(row: sa.Row[Any]) -> AssetRecord:
    return AssetRecord(row.id, row.size, row.blob_key, row.created_at, tuple(row.names or ()))


def _first(names: tuple[str, ...]) -> str | None:
    return names[0] if names else None
