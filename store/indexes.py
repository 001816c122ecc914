"""The search indexes' tables: rows written in their value's transaction, rebuilt from values, and searched.

What an index holds is declared in ``features/indexes.py``; this module only keeps and queries the rows. A
value's rows and its ``search_indexed`` marker are written together, so ``index_status`` can tell a value
indexed with no rows from one never indexed.

Vector search is cosine distance over one partial HNSW index per (index, version, width), built when the first
rows of that scope arrive (``mediamesh_ensure_vector_index``, migration 0008). With filters it uses pgvector's
iterative index scan (``hnsw.iterative_scan = strict_order``), so a filtered query still returns k hits when k
exist; where the filter is selective the planner takes the exact scan of the scope's b-tree instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from mediamesh.features.indexes import TextRow, TimeRow, VectorRow
from mediamesh.store import schema
from mediamesh.store.config import SearchSettings
from mediamesh.store.core import StoreCore

__all__ = ["CueMatch", "IndexBatch", "IndexStore", "IndexedScope", "ShotMatch"]

#: Lineage walks up from a value to the ``shots`` value its shot numbers index (its times).
_SHOTS_UPSTREAM = sa.text(
    """
    WITH RECURSIVE up(key, depth) AS (
        SELECT input_key, 1 FROM lineage WHERE value_key = :key
        UNION
        SELECT l.input_key, up.depth + 1 FROM lineage l JOIN up ON l.value_key = up.key WHERE up.depth < 32
    )
    SELECT v.key FROM up JOIN feature_values v ON v.key = up.key WHERE v.feature = :shots ORDER BY up.depth LIMIT 1
    """
)


@dataclass(frozen=True)
class IndexBatch:
    """The rows one value makes in one index (possibly none)."""

    index: str
    kind: str
    rows: Sequence[VectorRow | TextRow | TimeRow]


@dataclass(frozen=True)
class IndexedScope:
    """What one index holds of one version of its feature, against what is stored."""

    index: str
    feature: str
    version: str
    kind: str
    rows: int
    values_indexed: int
    values_stored: int

    @property
    def in_sync(self) -> bool:
        return self.values_indexed == self.values_stored


@dataclass(frozen=True)
class ShotMatch:
    """One shot an index found: ``score`` is a similarity (vectors: 1 - cosine distance; text: the rank)."""

    asset_id: str
    shots_key: str | None
    shot: int
    score: float
    cue: CueMatch | None = None


@dataclass(frozen=True)
class CueMatch:
    """The cue a dialogue hit matched: its text, times and language."""

    index: int
    text: str
    start: float
    end: float
    language: str | None


class IndexStore(StoreCore):
    """Rows of the search indexes: written with values, deleted and derived again on rebuild, searched."""

    _hnsw_ready: set[tuple[str, str, int]]
    _hnsw_lock = threading.Lock()

    def write_index_rows(
        self,
        conn: sa.Connection,
        value_key: str,
        asset_id: str,
        version: str,
        model_fingerprint: str | None,
        batches: Sequence[IndexBatch],
        *,
        ensure_hnsw: bool = True,
    ) -> None:
        """Write ``batches`` (the rows of one value) and their markers on ``conn``, inside the caller's
        transaction; rows already there are left alone, so writing twice is harmless. Without ``ensure_hnsw``
        a new scope's HNSW index is left for :meth:`ensure_vector_indexes` (a rebuild builds it once, after)."""
        if not batches:
            return
        shots_key: str | None = None
        if any(batch.kind in ("vector", "text") for batch in batches):
            shots_key = conn.execute(_SHOTS_UPSTREAM, {"key": value_key, "shots": "shots"}).scalar()
        base = {"value_key": value_key, "asset_id": asset_id, "version": version}
        for batch in batches:
            if batch.kind == "vector":
                self._write_vectors(conn, batch, base, shots_key, model_fingerprint, ensure_hnsw)
            elif batch.kind == "text":
                rows = [
                    {
                        **base,
                        "index_name": batch.index,
                        "shots_key": shots_key,
                        "cue": r.cue,
                        "shot": r.shot,
                        "start_time": r.start,
                        "end_time": r.end,
                        "language": r.language,
                        "text": r.text,
                    }
                    for r in batch.rows
                    if isinstance(r, TextRow)
                ]
                if rows:
                    conn.execute(pg_insert(schema.search_cues).on_conflict_do_nothing(), rows)
            else:
                rows = [
                    {**base, "index_name": batch.index, "shot": r.shot, "start_time": r.start, "end_time": r.end}
                    for r in batch.rows
                    if isinstance(r, TimeRow)
                ]
                if rows:
                    conn.execute(pg_insert(schema.search_shots).on_conflict_do_nothing(), rows)
            conn.execute(
                pg_insert(schema.search_indexed).on_conflict_do_nothing(),
                [{"index_name": batch.index, "value_key": value_key, "version": version, "rows": len(batch.rows)}],
            )

    def _write_vectors(
        self,
        conn: sa.Connection,
        batch: IndexBatch,
        base: dict[str, Any],
        shots_key: str | None,
        model_fingerprint: str | None,
        ensure_hnsw: bool,
    ) -> None:
        rows = [r for r in batch.rows if isinstance(r, VectorRow)]
        if not rows:
            return
        dims = int(np.asarray(rows[0].vector).shape[0])
        if ensure_hnsw:
            self._ensure_hnsw(conn, batch.index, base["version"], dims)
        conn.execute(
            pg_insert(schema.search_vectors).on_conflict_do_nothing(),
            [
                {
                    **base,
                    "index_name": batch.index,
                    "shot": r.shot,
                    "model_fingerprint": model_fingerprint,
                    "shots_key": shots_key,
                    "language": r.language,
                    "dims": dims,
                    "embedding": np.asarray(r.vector, np.float32),
                }
                for r in rows
            ],
        )

    def _ensure_hnsw(self, conn: sa.Connection, index: str, version: str, dims: int) -> None:
        scope = (index, version, dims)
        with self._hnsw_lock:
            ready = self.__dict__.setdefault("_hnsw_ready", set())
            if scope in ready:
                return
        settings = SearchSettings()
        conn.execute(
            sa.text("SELECT mediamesh_ensure_vector_index(:index, :version, :dims, :m, :ef)"),
            {
                "index": index,
                "version": version,
                "dims": dims,
                "m": settings.hnsw_m,
                "ef": settings.hnsw_ef_construction,
            },
        )
        with self._hnsw_lock:
            ready.add(scope)

    def index_value(
        self,
        value_key: str,
        asset_id: str,
        version: str,
        model_fingerprint: str | None,
        batches: Sequence[IndexBatch],
        *,
        ensure_hnsw: bool = True,
    ) -> None:
        """Index one stored value (``index rebuild``): its rows and markers in one transaction."""
        with self._begin() as conn:
            self.write_index_rows(
                conn, value_key, asset_id, version, model_fingerprint, batches, ensure_hnsw=ensure_hnsw
            )

    def drop_index_rows(self, index: str, kind: str, version: str | None = None) -> int:
        """Delete an index's rows and markers (of one version, or all), and a vector index's HNSW indexes (so its
        rows go back in without growing a graph row by row); returns how many rows went."""
        table = schema.SEARCH_TABLES[kind]
        marker = schema.search_indexed
        with self._begin() as conn:
            if kind == "vector":
                conn.execute(
                    sa.text("SELECT mediamesh_drop_vector_indexes(:index, :version)"),
                    {"index": index, "version": version},
                )
                with self._hnsw_lock:
                    ready = self.__dict__.setdefault("_hnsw_ready", set())
                    ready -= {scope for scope in ready if scope[0] == index}
            where = table.c.index_name == index
            marked = marker.c.index_name == index
            if version is not None:
                where, marked = sa.and_(where, table.c.version == version), sa.and_(marked, marker.c.version == version)
            gone = conn.execute(table.delete().where(where)).rowcount
            conn.execute(marker.delete().where(marked))
        return int(gone or 0)

    def ensure_vector_indexes(self, index: str) -> None:
        """Build the HNSW index of every (version, width) ``index`` holds rows of and lacks one (after a rebuild)."""
        t = schema.search_vectors
        with self._begin() as conn:
            scopes = conn.execute(sa.select(t.c.version, t.c.dims).where(t.c.index_name == index).distinct()).all()
            for version, dims in scopes:
                self._ensure_hnsw(conn, index, str(version), int(dims))

    def unindexed_values(self, index: str, feature: str, version: str | None = None) -> list[str]:
        """Keys of stored ``feature`` values (of ``version``) that ``index`` does not hold yet, oldest first."""
        v, m = schema.values, schema.search_indexed
        query = (
            sa.select(v.c.key)
            .where(v.c.feature == feature)
            .where(~sa.exists().where(m.c.index_name == index, m.c.value_key == v.c.key))
            .order_by(v.c.created_at, v.c.key)
        )
        if version is not None:
            query = query.where(v.c.version == version)
        with self._connect() as conn:
            return list(conn.execute(query).scalars())

    def index_scopes(self, index: str, feature: str, kind: str) -> list[IndexedScope]:
        """Per stored version of ``feature``: the index's rows and values against the values stored."""
        table = schema.SEARCH_TABLES[kind]
        v, m = schema.values, schema.search_indexed
        with self._connect() as conn:
            stored: dict[str, int] = _pairs(
                conn.execute(
                    sa.select(v.c.version, sa.func.count()).where(v.c.feature == feature).group_by(v.c.version)
                )
            )
            indexed: dict[str, int] = _pairs(
                conn.execute(
                    sa.select(m.c.version, sa.func.count())
                    .join(v, v.c.key == m.c.value_key)
                    .where(m.c.index_name == index, v.c.feature == feature)
                    .group_by(m.c.version)
                )
            )
            rows: dict[str, int] = _pairs(
                conn.execute(
                    sa.select(table.c.version, sa.func.count())
                    .where(table.c.index_name == index)
                    .group_by(table.c.version)
                )
            )
        versions = sorted(set(stored) | set(indexed), key=_version_order)
        return [
            IndexedScope(
                index, feature, ver, kind, int(rows.get(ver, 0)), int(indexed.get(ver, 0)), int(stored.get(ver, 0))
            )
            for ver in versions
        ]

    def indexed_versions(self, index: str) -> list[str]:
        """The versions ``index`` holds any value of, oldest first."""
        m = schema.search_indexed
        with self._connect() as conn:
            found = conn.execute(sa.select(m.c.version).where(m.c.index_name == index).distinct()).scalars().all()
        return sorted(found, key=_version_order)

    def vector_models(self, index: str, version: str) -> list[str | None]:
        """The model fingerprints whose vectors ``index@version`` holds."""
        t = schema.search_vectors
        with self._connect() as conn:
            query = sa.select(t.c.model_fingerprint).where(t.c.index_name == index, t.c.version == version).distinct()
            return list(conn.execute(query).scalars())

    def search_vectors(
        self,
        index: str,
        version: str,
        query: np.ndarray[Any, Any],
        k: int,
        *,
        model_fingerprint: str | None,
        assets: Sequence[str] | None = None,
        exclude: tuple[str, int] | None = None,
        languages: Sequence[str] | None = None,
        exact: bool = False,
    ) -> list[ShotMatch]:
        """The ``k`` shots nearest ``query`` by cosine distance in ``index@version`` among vectors made by
        ``model_fingerprint``, optionally only of ``assets`` and without the ``exclude`` (asset, shot)."""
        vector = np.asarray(query, np.float32).ravel()
        dims = int(vector.shape[0])
        cast = f"embedding::vector({dims})"
        conditions = [
            "index_name = :index",
            "version = :version",
            f"dims = {dims}",
            "model_fingerprint IS NOT DISTINCT FROM :model",
        ]
        params: dict[str, Any] = {
            "index": index,
            "version": version,
            "model": model_fingerprint,
            "k": k,
            "query": _vector_literal(vector),
        }
        if assets is not None:
            conditions.append("asset_id = ANY(:assets)")
            params["assets"] = list(assets)
        if languages:
            conditions.append("language = ANY(:languages)")
            params["languages"] = list(languages)
        if exclude is not None:
            conditions.append("NOT (asset_id = :ex_asset AND shot = :ex_shot)")
            params["ex_asset"], params["ex_shot"] = exclude
        sql = (
            f"SELECT asset_id, shots_key, shot, {cast} <=> CAST(:query AS vector({dims})) AS distance "
            f"FROM search_vectors WHERE {' AND '.join(conditions)} "
            f"ORDER BY {cast} <=> CAST(:query AS vector({dims})) LIMIT :k"
        )
        settings = SearchSettings()
        with self._begin() as conn:
            if exact:
                conn.execute(sa.text("SET LOCAL enable_indexscan = off"))
            else:
                conn.execute(sa.text(f"SET LOCAL hnsw.ef_search = {max(int(settings.hnsw_ef_search), k)}"))
                conn.execute(sa.text("SET LOCAL hnsw.iterative_scan = strict_order"))
            rows = conn.execute(sa.text(sql), params).all()
        return [ShotMatch(r.asset_id, r.shots_key, int(r.shot), 1.0 - float(r.distance)) for r in rows]

    def cross_candidates(
        self,
        ends: str,
        starts: str,
        version: str,
        assets: Sequence[str],
        per_shot: int,
        *,
        model_fingerprint: str | None,
    ) -> list[tuple[str, int, str, int, float]]:
        """For each row of ``ends`` among ``assets``, its ``per_shot`` nearest rows of ``starts`` in the *other*
        assets (HNSW, one probe per row, all in one statement): ``(asset a, shot a, asset b, shot b,
        similarity)``, the similarity computed exactly on the stored vectors."""
        t = schema.search_vectors
        with self._connect() as conn:
            dims = conn.execute(
                sa.select(t.c.dims)
                .where(t.c.index_name == ends, t.c.version == version, t.c.asset_id.in_(list(assets)))
                .limit(1)
            ).scalar()
        if dims is None:
            return []
        params = {
            "ends": ends,
            "starts": starts,
            "version": version,
            "model": model_fingerprint,
            "assets": list(assets),
            "per_shot": per_shot,
        }
        with self._begin() as conn:
            _cross_settings(conn, per_shot)
            rows = conn.execute(sa.text(_cross_sql(int(dims))), params).all()
        return [(r.a_asset, int(r.a_shot), r.b_asset, int(r.b_shot), 1.0 - float(r.distance)) for r in rows]

    def explain_cross(self, ends: str, starts: str, version: str, assets: Sequence[str], dims: int) -> str:
        """The plan of :meth:`cross_candidates`' statement, 10 candidates a shot (for tests)."""
        params = {"ends": ends, "starts": starts, "version": version, "model": None, "assets": list(assets)}
        with self._begin() as conn:
            _cross_settings(conn, 10)
            return "\n".join(conn.execute(sa.text("EXPLAIN " + _cross_sql(dims)), {**params, "per_shot": 10}).scalars())

    def explain_vectors(self, index: str, version: str, dims: int) -> str:
        """The plan of a nearest-neighbour query of ``index@version`` (for tests and benchmarks)."""
        probe = _vector_literal(np.ones(dims, np.float32) / np.sqrt(dims))
        with self._begin() as conn:
            conn.execute(sa.text("SET LOCAL hnsw.iterative_scan = strict_order"))
            rows = conn.execute(
                sa.text(
                    f"EXPLAIN SELECT shot FROM search_vectors WHERE index_name = :index AND version = :version "
                    f"AND dims = {dims} ORDER BY embedding::vector({dims}) <=> CAST(:q AS vector({dims})) LIMIT 10"
                ),
                {"index": index, "version": version, "q": probe},
            ).scalars()
            return "\n".join(rows)

    def vector_of(
        self, index: str, version: str, asset_id: str, shot: int
    ) -> tuple[np.ndarray[Any, Any], str | None] | None:
        """Shot ``shot`` of ``asset_id``'s vector in ``index@version`` and the model that made it, or None."""
        t = schema.search_vectors
        with self._connect() as conn:
            row = conn.execute(
                sa.select(t.c.embedding, t.c.model_fingerprint)
                .where(t.c.index_name == index, t.c.version == version, t.c.asset_id == asset_id, t.c.shot == shot)
                .limit(1)
            ).first()
        return (np.asarray(row[0], np.float32), row[1]) if row is not None else None

    def search_cues(
        self,
        index: str,
        version: str,
        text: str,
        k: int,
        *,
        assets: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
    ) -> list[ShotMatch]:
        """The ``k`` cues of ``index@version`` that match ``text`` best (full-text search, ``simple``
        configuration: every word must occur), as shots with their cue."""
        conditions = ["index_name = :index", "version = :version", "document @@ q"]
        params: dict[str, Any] = {"index": index, "version": version, "text": text, "k": k}
        if assets is not None:
            conditions.append("asset_id = ANY(:assets)")
            params["assets"] = list(assets)
        if languages:
            conditions.append("language = ANY(:languages)")
            params["languages"] = list(languages)
        sql = (
            "SELECT asset_id, shots_key, shot, cue, text, start_time, end_time, language, "
            "ts_rank_cd(document, q) AS rank FROM search_cues, websearch_to_tsquery('simple', :text) q "
            f"WHERE {' AND '.join(conditions)} ORDER BY rank DESC, asset_id, cue LIMIT :k"
        )
        with self._connect() as conn:
            rows = conn.execute(sa.text(sql), params).all()
        return [
            ShotMatch(
                r.asset_id,
                r.shots_key,
                int(r.shot),
                float(r.rank),
                CueMatch(int(r.cue), r.text, float(r.start_time), float(r.end_time), r.language),
            )
            for r in rows
        ]

    def search_times(
        self,
        index: str,
        version: str,
        start: float,
        end: float,
        k: int,
        *,
        assets: Sequence[str] | None = None,
        offset: int = 0,
    ) -> list[ShotMatch]:
        """Shots of ``index@version`` overlapping ``[start, end)`` seconds, by asset then time; one shots value
        per asset (its newest)."""
        conditions = [
            "s.index_name = :index",
            "s.version = :version",
            "s.start_time < :end",
            "s.end_time > :start",
            "s.value_key IN (SELECT DISTINCT ON (asset_id) key FROM feature_values "
            "WHERE feature = 'shots' AND version = :version ORDER BY asset_id, created_at DESC, key)",
        ]
        params: dict[str, Any] = {
            "index": index,
            "version": version,
            "start": start,
            "end": end,
            "k": k,
            "offset": offset,
        }
        if assets is not None:
            conditions.append("s.asset_id = ANY(:assets)")
            params["assets"] = list(assets)
        sql = (
            "SELECT s.asset_id, s.value_key, s.shot FROM search_shots s "
            f"WHERE {' AND '.join(conditions)} ORDER BY s.asset_id, s.start_time LIMIT :k OFFSET :offset"
        )
        with self._connect() as conn:
            rows = conn.execute(sa.text(sql), params).all()
        return [ShotMatch(r.asset_id, r.value_key, int(r.shot), 1.0) for r in rows]

    def shot_times(self, shots: Iterable[tuple[str, int]]) -> dict[tuple[str, int], tuple[float, float]]:
        """``(shots value key, shot)`` -> ``(start, end)`` seconds, from the ``shots`` time index."""
        wanted = sorted(set(shots))
        if not wanted:
            return {}
        t = schema.search_shots
        keys = sorted({key for key, _ in wanted})
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(t.c.value_key, t.c.shot, t.c.start_time, t.c.end_time).where(
                    t.c.index_name == "shots", t.c.value_key.in_(keys)
                )
            ).all()
        found = {(r.value_key, int(r.shot)): (float(r.start_time), float(r.end_time)) for r in rows}
        return {pair: found[pair] for pair in wanted if pair in found}

    def insert_vectors(
        self,
        index: str,
        version: str,
        rows: Sequence[tuple[str, str, int, np.ndarray[Any, Any]]],
        *,
        model_fingerprint: str | None = None,
        batch: int = 5_000,
    ) -> None:
        """Insert ``(value_key, asset_id, shot, vector)`` rows as given, no markers (benchmarks, synthetic
        titles), in one transaction; a new scope's HNSW index is built once its rows are in (faster than
        growing it row by row)."""
        if not rows:
            return
        dims = int(np.asarray(rows[0][3]).shape[0])
        with self._begin() as conn:
            for start in range(0, len(rows), batch):
                conn.execute(
                    schema.search_vectors.insert(),
                    [
                        {
                            "index_name": index,
                            "value_key": key,
                            "asset_id": asset,
                            "shot": shot,
                            "version": version,
                            "model_fingerprint": model_fingerprint,
                            "dims": dims,
                            "embedding": np.asarray(vec, np.float32),
                        }
                        for key, asset, shot, vec in rows[start : start + batch]
                    ],
                )
            self._ensure_hnsw(conn, index, version, dims)


def _cross_sql(dims: int) -> str:
    """Per row of ``ends``, its ``per_shot`` nearest rows of ``starts`` in the other assets, one HNSW probe each."""
    cast = f"::vector({dims})"
    return (
        f"SELECT e.asset_id AS a_asset, e.shot AS a_shot, c.asset_id AS b_asset, c.shot AS b_shot, c.distance "
        f"FROM search_vectors e CROSS JOIN LATERAL ("
        f"  SELECT s.asset_id, s.shot, s.embedding{cast} <=> e.embedding{cast} AS distance FROM search_vectors s"
        f"  WHERE s.index_name = :starts AND s.version = :version AND s.dims = {dims}"
        f"    AND s.model_fingerprint IS NOT DISTINCT FROM :model"
        f"    AND s.asset_id = ANY(:assets) AND s.asset_id <> e.asset_id"
        f"  ORDER BY s.embedding{cast} <=> e.embedding{cast} LIMIT :per_shot) c "
        f"WHERE e.index_name = :ends AND e.version = :version AND e.dims = {dims}"
        f"  AND e.model_fingerprint IS NOT DISTINCT FROM :model AND e.asset_id = ANY(:assets)"
    )


def _cross_settings(conn: sa.Connection, per_shot: int) -> None:
    settings = SearchSettings()
    conn.execute(sa.text(f"SET LOCAL hnsw.ef_search = {max(int(settings.hnsw_cross_ef_search), per_shot)}"))
    # Every candidate is scored exactly and all are sorted after: the probes need no strict order.
    conn.execute(sa.text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
    # Each probe must walk the HNSW index: with statistics taken while the table was small (autovacuum between
    # two bulk inserts), the planner scans a title's rows and sorts them instead, ~50x slower.
    conn.execute(sa.text("SET LOCAL enable_sort = off"))


def _pairs(result: Iterable[Any]) -> dict[str, int]:
    return {str(row[0]): int(row[1]) for row in result}


def _vector_literal(vector: np.ndarray[Any, Any]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def _version_order(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if version.isdigit() else (1, version)
