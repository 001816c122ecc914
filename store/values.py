"""Values and their lineage, and the feature versions they were computed by: recorded, catalogued, promoted."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import xxhash
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from mediamesh.store import codecs, faults, schema
from mediamesh.store.blobs import BlobIntegrityError
from mediamesh.store.indexes import IndexBatch, IndexStore
from mediamesh.store.records import (
    HASH_CHUNK,
    VERIFY_ON_READ_BYTES,
    CatalogueEntry,
    CorruptValueError,
    FeatureVersion,
    NewValue,
    ValueNotFoundError,
    ValueRecord,
    digest_file,
)

__all__ = ["ValueStore"]

_HEX_OR_COMMA = frozenset("0123456789abcdef,")
#: The columns ``put_value`` gives a value's row: all but those the server fills (``created_at``).
_ROW_COLUMNS = tuple(c.name for c in schema.values.c if c.server_default is None)


class ValueStore(IndexStore):
    """Immutable values: inserted once under their key, never updated; read back checked against their row."""

    def stored_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are stored: one query, however many keys."""
        wanted = list(keys)
        if not wanted:
            return set()
        # Keys are hex digests, so one array literal needs no quoting, and sending one string is far cheaper
        # than binding a 100,000-element list element by element.
        joined = ",".join(wanted)
        if not _HEX_OR_COMMA.issuperset(joined):
            raise ValueError("value keys are lowercase hex digests")
        with self._autocommit() as conn:
            # One string back, too: fetching 100,000 one-column rows costs more than the lookup itself.
            found = conn.execute(
                sa.text("SELECT string_agg(key, ',') FROM feature_values WHERE key = ANY(CAST(:keys AS varchar[]))"),
                {"keys": "{" + joined + "}"},
            ).scalar_one()
        return set(found.split(",")) if found else set()

    def put_value(self, new: NewValue, value: Any, *, index: Sequence[IndexBatch] = ()) -> ValueRecord:
        """Write the blob (verified), then the row, its lineage and its search-index rows in one transaction."""
        payload = codecs.encode(value)
        faults.fault_point(faults.BEFORE_BLOB, new.feature)
        if payload.path is not None:
            info = self.blobs.put_file(payload.path)
            xxh3 = digest_file(payload.path, xxhash.xxh3_64())
        elif payload.data is not None:
            info = self.blobs.put_bytes(payload.data)
            xxh3 = xxhash.xxh3_64_hexdigest(payload.data)
        else:  # pragma: no cover - codecs.encode always sets one of the two
            raise TypeError(f"value {new.key} has no payload")
        faults.fault_point(faults.AFTER_BLOB, new.feature)
        row = {
            "key": new.key,
            "asset_id": new.asset_id,
            "feature": new.feature,
            "version": new.version,
            "params": new.params,
            "model_fingerprint": new.model_fingerprint,
            "code_fingerprint": new.code_fingerprint,
            "payload_kind": payload.kind,
            "blob_key": info.key,
            "meta": payload.meta,
            "shape": payload.shape,
            "dtype": payload.dtype,
            "bytes": info.size,
            "checksum": info.sha256,
            "xxh3": xxh3,
            "started_at": new.started_at,
            "finished_at": new.finished_at,
            "duration_s": (new.finished_at - new.started_at).total_seconds(),
            "worker": new.worker,
            "device": new.device,
        }
        # The row and its lineage in one statement: alone (no index rows), it commits on its own, one round trip.
        lineage = {"input_names": [name for name, _ in new.inputs], "input_keys": [key for _, key in new.inputs]}
        with self._begin() if index else self._autocommit() as conn:
            inserted = conn.execute(_insert_with_lineage(bool(new.inputs)), {**row, **lineage}).first()
            if index:
                faults.fault_point(faults.BEFORE_INDEX, new.feature)
                # Also for a row that was already there (stored before its index existed): markers say what is held.
                self.write_index_rows(conn, new.key, new.asset_id, new.version, new.model_fingerprint, index)
        faults.fault_point(faults.AFTER_ROW, new.feature)
        record = ValueRecord(**inserted._mapping) if inserted is not None else self.value(new.key)
        if record is None:  # pragma: no cover - the row was just written or already there
            raise ValueNotFoundError(f"value {new.key} vanished after writing")
        return record

    def value(self, key: str) -> ValueRecord | None:
        with self._autocommit() as conn:
            row = conn.execute(sa.select(schema.values).where(schema.values.c.key == key)).first()
        return ValueRecord(**row._mapping) if row is not None else None

    def values_for(self, asset_id: str, feature: str | None = None, version: str | None = None) -> list[ValueRecord]:
        """The asset's values, newest first, optionally of one feature (and version)."""
        query = sa.select(schema.values).where(schema.values.c.asset_id == asset_id)
        if feature is not None:
            query = query.where(schema.values.c.feature == feature)
        if version is not None:
            query = query.where(schema.values.c.version == version)
        with self._autocommit() as conn:
            rows = conn.execute(query.order_by(schema.values.c.created_at.desc())).all()
        return [ValueRecord(**r._mapping) for r in rows]

    def lineage(self, key: str) -> list[tuple[str, str]]:
        """The (input name, input key) pairs a value was computed from, in parameter order."""
        with self._autocommit() as conn:
            rows = conn.execute(
                sa.select(schema.lineage.c.input_name, schema.lineage.c.input_key)
                .where(schema.lineage.c.value_key == key)
                .order_by(schema.lineage.c.position)
            ).all()
        return [(r[0], r[1]) for r in rows]

    def load(self, record: ValueRecord, output_type: Any, *, verify: bool = True) -> Any:
        """The stored value as its Python type (a file value gets a local path, read-only); with
        ``output_type=None``, as ``codecs.decode`` reads a value without its code (JSON, array, or a path).

        The size is always checked against the row. With ``verify`` (the default) a value of up to
        ``VERIFY_ON_READ_BYTES`` is re-hashed too, by its xxh3 (SHA-256 for rows from before xxh3); a larger
        media file is hashed when streamed whole (``stream_value``). A mismatch is a ``CorruptValueError``.
        """
        hashed = verify and record.bytes <= VERIFY_ON_READ_BYTES
        if record.payload_kind == "file":
            try:
                path = self.blobs.local_path(record.blob_key)
            except BlobIntegrityError as exc:  # a remote store's bytes failed their hash on download
                raise _corrupt(record, "does not hash to its key when downloaded") from exc
            if hashed:
                with path.open("rb") as fh:
                    _check_value(record, iter(lambda: fh.read(HASH_CHUNK), b""))
            elif (size := path.stat().st_size) != record.bytes:
                raise _corrupt(record, f"has {size} bytes, its row says {record.bytes}")
            return codecs.decode("file", output_type, record.meta, path=path)
        data = self.blobs.get_bytes(record.blob_key)
        if hashed:
            _check_value(record, (data,))
        elif len(data) != record.bytes:
            raise _corrupt(record, f"has {len(data)} bytes, its row says {record.bytes}")
        return codecs.decode(record.payload_kind, output_type, record.meta, data=data)

    def stream_value(self, record: ValueRecord) -> Iterator[bytes]:
        """The value's bytes in pieces, from the store itself, in bounded memory: for sending a media file
        whole. Hashed as they pass; after the last piece a mismatch raises ``CorruptValueError``, so a
        consumer that stops at the error (an aborted download, a removed file) never keeps wrong bytes."""
        yield from _checked(record, self.blobs.chunks(record.blob_key))

    def insert_rows(
        self, assets: Sequence[Mapping[str, Any]], values: Sequence[Mapping[str, Any]], *, batch: int = 5_000
    ) -> None:
        """Insert asset and value rows as given, in one transaction, then gather the planner's statistics.

        No blob is written and nothing is checked: for benchmarks that need a large catalogue fast.
        """
        with self._begin() as conn:
            for table, rows in ((schema.assets, assets), (schema.values, values)):
                for start in range(0, len(rows), batch):
                    conn.execute(table.insert(), list(rows[start : start + batch]))
        with self._connect() as conn:
            # Statistics now, as autovacuum would soon gather them itself, so its ANALYZE cannot land mid-timing.
            conn.execute(sa.text(f"ANALYZE {schema.values.name}, {schema.assets.name}"))
            conn.commit()

    def insert_placeholder_values(
        self,
        feature: str,
        version: str,
        pairs: Sequence[tuple[str, str]],
        *,
        model_fingerprint: str | None = None,
        worker: str = "bench",
    ) -> None:
        """An asset row and one ``feature@version`` value row (no blob) for each ``(asset id, value key)``, through
        ``insert_rows``: synthetic titles for benchmarks and index tests, whose rows need values to refer to."""
        now = datetime.now(UTC)
        self.insert_rows(
            [{"id": asset, "size": 0, "blob_key": asset} for asset, _ in pairs],
            [
                {
                    "key": key,
                    "asset_id": asset,
                    "feature": feature,
                    "version": version,
                    "params": {},
                    "model_fingerprint": model_fingerprint,
                    "code_fingerprint": key,
                    "payload_kind": "array",
                    "blob_key": key,
                    "meta": {},
                    "shape": None,
                    "dtype": None,
                    "bytes": 0,
                    "checksum": key,
                    "started_at": now,
                    "finished_at": now,
                    "duration_s": 0.0,
                    "worker": worker,
                    "device": "cpu",
                }
                for asset, key in pairs
            ],
        )

    def record_features(self, specs: Iterable[FeatureVersion | tuple[str, str, str, str]]) -> None:
        """Record feature versions as seen (a bare tuple is name, version, code fingerprint, resources); known
        ones are left alone, and the same code seen from another module is a row of its own."""
        rows = [asdict(s if isinstance(s, FeatureVersion) else FeatureVersion(*s)) for s in specs]
        if rows:
            with self._autocommit() as conn:
                conn.execute(pg_insert(schema.feature_versions).values(rows).on_conflict_do_nothing())

    def recorded_fingerprints(self) -> dict[tuple[str, str], set[str]]:
        """Every code fingerprint recorded for each (feature, version)."""
        found: dict[tuple[str, str], set[str]] = {}
        with self._connect() as conn:
            fv = schema.feature_versions
            for name, version, fp in conn.execute(sa.select(fv.c.name, fv.c.version, fv.c.fingerprint)):
                found.setdefault((name, version), set()).add(fp)
        return found

    def catalogue(self, feature: str | None = None) -> list[CatalogueEntry]:
        """Every feature version ever computed (or those of ``feature``), by name, then first computed."""
        c = schema.feature_catalogue
        query = sa.select(c).order_by(c.c.name, c.c.first_computed, c.c.version)
        if feature is not None:
            query = query.where(c.c.name == feature)
        with self._connect() as conn:
            return [CatalogueEntry(**row._mapping) for row in conn.execute(query)]

    def stored_feature_names(self) -> list[str]:
        """The name of every feature that has a stored value, sorted."""
        v = schema.values
        with self._connect() as conn:
            return list(conn.execute(sa.select(v.c.feature).distinct().order_by(v.c.feature)).scalars())

    def promote_feature(self, feature: str, version: str) -> None:
        """Make ``version`` the one default readers of ``feature`` get, at once; pinned readers are unaffected.

        Refused when no asset has a value of that version: promoting it would leave default readers
        with nothing. Earlier promotions stay as history, and promoting an older version is a rollback.
        """
        v = schema.values
        with self._begin() as conn:
            stored = conn.execute(
                sa.select(v.c.key).where(v.c.feature == feature, v.c.version == version).limit(1)
            ).first()
            if stored is None:
                raise ValueNotFoundError(f"no asset has a stored {feature}@{version}; compute it before promoting it")
            conn.execute(schema.feature_promotions.insert().values(feature=feature, version=version))

    def promoted_version(self, feature: str) -> str | None:
        """The version of ``feature`` promoted last, or None if none ever was."""
        p = schema.feature_promotions
        with self._connect() as conn:
            version = conn.execute(
                sa.select(p.c.version)
                .where(p.c.feature == feature)
                .order_by(p.c.promoted_at.desc(), p.c.id.desc())
                .limit(1)
            ).scalar()
        return str(version) if version is not None else None

    def version_coverage(self, feature: str, version: str) -> tuple[int, int]:
        """How many assets have a stored ``feature@version``, and how many assets there are."""
        v = schema.values
        with self._connect() as conn:
            of_version = sa.and_(v.c.feature == feature, v.c.version == version)
            having = conn.execute(sa.select(sa.func.count(sa.distinct(v.c.asset_id))).where(of_version)).scalar_one()
            total = conn.execute(sa.select(sa.func.count()).select_from(schema.assets)).scalar_one()
        return int(having), int(total)


def _check_value(record: ValueRecord, chunks: Iterable[bytes]) -> None:
    for _ in _checked(record, chunks):
        pass


def _checked(record: ValueRecord, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` passed on as they are hashed by the row's xxh3 (its SHA-256 for rows older than xxh3);
    after the last, a size or digest that differs from the row's raises ``CorruptValueError``."""
    digest: Any = xxhash.xxh3_64() if record.xxh3 is not None else hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        yield chunk
    if size != record.bytes:
        raise _corrupt(record, f"has {size} bytes, its row says {record.bytes}")
    expected = record.xxh3 if record.xxh3 is not None else record.checksum
    if digest.hexdigest() != expected:
        kind = "xxh3" if record.xxh3 is not None else "SHA-256"
        raise _corrupt(record, f"does not match the {kind} its row recorded ({expected})")


@functools.cache
def _insert_with_lineage(lineage: bool) -> sa.Select[Any]:
    """Insert a value's row unless its key is there, with its lineage (only where the row is new), and return the
    inserted row, or none. Built once: a construct this size costs milliseconds to build, more than the insert.

    Parameters: the row's columns by name, and ``input_names`` and ``input_keys``, the lineage in order."""
    values = schema.values
    inserted = (
        pg_insert(values)
        .values({name: sa.bindparam(name, type_=values.c[name].type) for name in _ROW_COLUMNS})
        .on_conflict_do_nothing()
        .returning(*values.c)
        .cte("inserted")
    )
    statement = sa.select(inserted)
    if not lineage:
        return statement
    names, keys = sa.bindparam("input_names", type_=ARRAY(sa.Text)), sa.bindparam("input_keys", type_=ARRAY(sa.Text))
    given = (
        sa.func.unnest(names, keys)
        .table_valued("input_name", "input_key", with_ordinality="ordinal")
        .render_derived(name="given")
    )
    linked = schema.lineage.insert().from_select(
        ["value_key", "position", "input_name", "input_key"],
        sa.select(inserted.c.key, given.c.ordinal - 1, given.c.input_name, given.c.input_key).select_from(
            inserted.join(given, sa.true())
        ),
    )
    return statement.add_cte(linked.cte("linked"))


def _corrupt(record: ValueRecord, problem: str) -> CorruptValueError:
    return CorruptValueError(
        f"the stored value {record.ref} {record.key[:12]} of asset {record.asset_id[:12]} is corrupt: "
        f"blob {record.blob_key} {problem}; run `mediamesh verify` to find every damaged blob"
    )
