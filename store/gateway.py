"""The one gateway to Postgres and object storage. Values are inserted, never updated."""

from __future__ import annotations

import hashlib
import json
import random
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import xxhash
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine

from mediamesh.features.errors import MediameshError
from mediamesh.features.values import MediaFMCheckpoint, SourceMedia, Subtitles, SubtitleTrack, TitleMetadata
from mediamesh.store import codecs, faults, schema
from mediamesh.store.blobs import BlobIntegrityError, BlobNotFoundError, BlobStore

__all__ = [
    "VERIFY_ON_READ_BYTES",
    "AmbiguousAssetError",
    "ArtefactNotFoundError",
    "ArtefactRecord",
    "AssetNotFoundError",
    "AssetRecord",
    "AttachmentRecord",
    "AttemptRecord",
    "BadBlob",
    "BlobUse",
    "CatalogueEntry",
    "CorruptValueError",
    "FeatureVersion",
    "GarbageCollectionBusyError",
    "NewValue",
    "Store",
    "ValueNotFoundError",
    "ValueRecord",
    "VerifyReport",
    "hash_file",
]

_HASH_CHUNK = 4 * 1024 * 1024
_HEX_OR_COMMA = frozenset("0123456789abcdef,")
# Computing work holds this advisory lock shared; garbage collection takes it exclusively, so gc never
# sweeps a blob whose row is about to be written.
_GC_LOCK = 0x6D6D6763
# Values up to this size are re-hashed on every read: xxh3 runs at several GB/s, so 64 MiB costs a few
# milliseconds, less than reading it. Larger values (long media files) are hashed when streamed whole.
VERIFY_ON_READ_BYTES = 64 << 20


class AssetNotFoundError(MediameshError):
    """No asset matches the id, prefix, path or name given."""


class AmbiguousAssetError(MediameshError):
    """An id prefix matches more than one asset."""


class ArtefactNotFoundError(MediameshError):
    """No artefact matches the id or prefix given."""


class ValueNotFoundError(MediameshError):
    """No stored value matches the asset, feature and version asked for."""


class GarbageCollectionBusyError(MediameshError):
    """Work is in progress; garbage collection must wait for it."""

    retryable = True


class CorruptValueError(BlobIntegrityError):
    """A stored value's bytes no longer match the checksum or size its row recorded; the same read will fail
    again, so retrying cannot help (``mediamesh verify`` finds every damaged blob)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)

    def __reduce__(self) -> tuple[type[CorruptValueError], tuple[str]]:
        # Errors cross process boundaries pickled (task runners); rebuild from the constructor's arguments.
        return type(self), (str(self),)


@dataclass(frozen=True)
class AssetRecord:
    id: str
    size: int
    blob_key: str
    created_at: datetime
    names: tuple[str, ...]


@dataclass(frozen=True)
class AttachmentRecord:
    """A file attached to an asset (a subtitle sidecar), stored by content."""

    asset_id: str
    kind: str
    sha256: str
    language: str | None
    name: str
    blob_key: str
    attached_at: datetime


@dataclass(frozen=True)
class ArtefactRecord:
    """A stored artefact (a trained checkpoint): its bytes live in the blob store under ``blob_key``."""

    id: str
    kind: str
    blob_key: str
    bytes: int
    meta: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class NewValue:
    """What the executor knows about a freshly computed value, besides the value itself."""

    key: str
    asset_id: str
    feature: str
    version: str
    params: dict[str, Any]
    model_fingerprint: str | None
    code_fingerprint: str
    inputs: Sequence[tuple[str, str]]
    started_at: datetime
    finished_at: datetime
    worker: str
    device: str


@dataclass(frozen=True)
class ValueRecord:
    key: str
    asset_id: str
    feature: str
    version: str
    params: dict[str, Any]
    model_fingerprint: str | None
    code_fingerprint: str
    payload_kind: str
    blob_key: str
    meta: dict[str, Any]
    shape: list[int] | None
    dtype: str | None
    bytes: int
    checksum: str
    started_at: datetime
    finished_at: datetime
    duration_s: float
    worker: str
    device: str
    created_at: datetime
    xxh3: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.feature}@{self.version}"


@dataclass(frozen=True)
class FeatureVersion:
    """A feature version as a run saw it: recorded in ``feature_versions`` for the catalogue."""

    name: str
    version: str
    fingerprint: str
    resources: str
    module: str = ""
    output_type: str = ""
    payload_kind: str = ""


@dataclass(frozen=True)
class CatalogueEntry:
    """One feature version as it is stored: a row of the ``feature_catalogue`` view (one per code, params and
    model it was computed with). ``module`` and ``output_type`` are '' where no run recorded them (before 0007)."""

    name: str
    version: str
    fingerprint: str
    params: dict[str, Any]
    model_fingerprint: str | None
    payload_kind: str
    output_type: str
    module: str
    resources: str
    value_count: int
    asset_count: int
    first_computed: datetime
    last_computed: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        found = asdict(self)
        return {
            **found,
            "first_computed": self.first_computed.isoformat(),
            "last_computed": self.last_computed.isoformat(),
        }


@dataclass(frozen=True)
class AttemptRecord:
    value_key: str
    asset_id: str
    feature: str
    version: str
    error_type: str
    message: str
    retryable: bool
    worker: str
    started_at: datetime
    finished_at: datetime


@dataclass(frozen=True)
class BlobUse:
    """A row that names a blob: its table (``source``), its key there, and the asset it belongs to."""

    source: str
    row_key: str
    asset_id: str | None

    @property
    def ref(self) -> str:
        """A value's key as it is; any other row as ``table:key`` (``attachments:ASSET/KIND/SHA256``)."""
        return self.row_key if self.source == "feature_values" else f"{self.source}:{self.row_key}"


@dataclass(frozen=True)
class BadBlob:
    """A referenced blob that is missing or whose bytes do not match what its rows recorded."""

    key: str
    problem: str
    uses: tuple[BlobUse, ...]

    @property
    def values(self) -> list[str]:
        """The rows that use the blob, as ``BlobUse.ref``; an asset's own bytes are listed under ``assets``."""
        return sorted({u.ref for u in self.uses if u.source != "assets"})

    @property
    def assets(self) -> list[str]:
        return sorted({u.asset_id for u in self.uses if u.asset_id is not None})

    def to_json(self) -> dict[str, Any]:
        return {"blob": self.key, "values": self.values, "assets": self.assets}


@dataclass(frozen=True)
class VerifyReport:
    """What a scrub found: blobs and bytes checked, and the blobs missing or corrupt."""

    checked: int
    bytes: int
    missing: tuple[BadBlob, ...]
    corrupt: tuple[BadBlob, ...]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "bytes": self.bytes,
            "missing": [b.to_json() for b in self.missing],
            "corrupt": [b.to_json() for b in self.corrupt],
        }


def hash_file(path: Path) -> str:
    """SHA-256 of a file's bytes: the asset id."""
    return _digest_file(path, hashlib.sha256())


def _digest_file(path: Path, digest: Any) -> str:
    """The hex digest of a file's bytes, read in chunks into ``digest`` (a hashlib or xxhash object)."""
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return str(digest.hexdigest())


def _lock_id(key: str) -> int:
    """A signed 64-bit advisory-lock id from a hex key."""
    return int(struct.unpack(">q", bytes.fromhex(key[:16]))[0])


class Store:
    """Assets, immutable values, lineage, attempts and claims, in Postgres plus a blob store."""

    def __init__(self, engine: Engine, blobs: BlobStore, *, database_url: str) -> None:
        self.engine = engine
        self.blobs = blobs
        self.database_url = database_url

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- assets

    def register_asset(self, path: Path, name: str, *, sha256: str | None = None) -> tuple[AssetRecord, bool]:
        """Store the file's bytes once and record ``name`` as an alias. Returns (asset, whether new)."""
        asset_id = sha256 or hash_file(path)
        with self.engine.begin() as conn:
            known = conn.execute(sa.select(schema.assets.c.id).where(schema.assets.c.id == asset_id)).first()
            if known is not None:
                conn.execute(pg_insert(schema.aliases).values(asset_id=asset_id, name=name).on_conflict_do_nothing())
        if known is not None:
            return self.asset(asset_id), False
        with self._gc_guard():
            info = self.blobs.put_file(path, sha256=asset_id)
            with self.engine.begin() as conn:
                inserted = conn.execute(
                    pg_insert(schema.assets)
                    .values(id=asset_id, size=info.size, blob_key=info.key)
                    .on_conflict_do_nothing()
                    .returning(schema.assets.c.id)
                ).first()
                conn.execute(pg_insert(schema.aliases).values(asset_id=asset_id, name=name).on_conflict_do_nothing())
        return self.asset(asset_id), inserted is not None

    def asset(self, asset_id: str) -> AssetRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.assets).where(schema.assets.c.id == asset_id)).first()
            if row is None:
                raise AssetNotFoundError(f"no asset {asset_id!r}")
            names = conn.execute(
                sa.select(schema.aliases.c.name)
                .where(schema.aliases.c.asset_id == asset_id)
                .order_by(schema.aliases.c.created_at, schema.aliases.c.name)
            ).scalars()
            return AssetRecord(row.id, row.size, row.blob_key, row.created_at, tuple(names))

    def assets(self) -> list[AssetRecord]:
        with self.engine.connect() as conn:
            ids = conn.execute(sa.select(schema.assets.c.id).order_by(schema.assets.c.created_at)).scalars().all()
        return [self.asset(i) for i in ids]

    def assets_named(self, names: Sequence[str]) -> dict[str, str]:
        """The asset each of ``names`` was registered under (names never registered are left out); one query."""
        if not names:
            return {}
        table = schema.aliases
        with self.engine.connect() as conn:
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
        with self.engine.connect() as conn:
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
        with self.engine.connect() as conn:
            return conn.execute(sa.select(schema.assets.c.id).where(schema.assets.c.id == asset_id)).first() is not None

    def source(self, asset_id: str, name: str | None = None) -> SourceMedia:
        """The asset's bytes as a local file (downloaded and cached when the blobs are remote)."""
        asset = self.asset(asset_id)
        return SourceMedia(asset=asset_id, path=self.blobs.local_path(asset.blob_key), name=name or _first(asset.names))

    # ---- attachments

    def attach(self, asset_id: str, kind: str, path: Path, *, name: str, language: str | None) -> AttachmentRecord:
        """Store ``path``'s bytes and make them the asset's current ``kind`` file for ``language``.

        An asset has at most one current file per (kind, language); attaching another replaces it for
        reading (the older row stays, as history). Attaching the same bytes again changes nothing.
        """
        sha256 = hash_file(path)
        with self._gc_guard():
            info = self.blobs.put_file(path, sha256=sha256)
            row = {
                "asset_id": asset_id,
                "kind": kind,
                "sha256": sha256,
                "language": language or "",
                "name": name,
                "blob_key": info.key,
            }
            table = schema.attachments
            with self.engine.begin() as conn:
                current = self._current_attachments(conn, [asset_id], kind).get(asset_id, [])
                if not any(a.sha256 == sha256 and (a.language or "") == (language or "") for a in current):
                    # A new row even for bytes attached before: rows are history, never changed.
                    conn.execute(table.insert().values(**row, attached_at=sa.func.clock_timestamp()))
                records = self._current_attachments(conn, [asset_id], kind)[asset_id]
        return next(r for r in records if r.sha256 == sha256)

    def attachments(self, asset_ids: Sequence[str], kind: str) -> dict[str, list[AttachmentRecord]]:
        """Each asset's current files of ``kind`` (one per language), in one query."""
        with self.engine.connect() as conn:
            return self._current_attachments(conn, asset_ids, kind)

    @staticmethod
    def _current_attachments(
        conn: sa.Connection, asset_ids: Sequence[str], kind: str
    ) -> dict[str, list[AttachmentRecord]]:
        table = schema.attachments
        # The newest row of each file says its language now; the newest of those per language is current.
        newest_per_file = (
            sa.select(table)
            .where(table.c.asset_id == sa.func.any(sa.literal(list(asset_ids))), table.c.kind == kind)
            .ext(distinct_on(table.c.asset_id, table.c.sha256))
            .order_by(table.c.asset_id, table.c.sha256, table.c.attached_at.desc(), table.c.id.desc())
            .subquery()
        )
        latest = (
            sa.select(newest_per_file)
            .ext(distinct_on(newest_per_file.c.asset_id, newest_per_file.c.language))
            .order_by(
                newest_per_file.c.asset_id,
                newest_per_file.c.language,
                newest_per_file.c.attached_at.desc(),
                newest_per_file.c.id.desc(),
            )
        )
        found: dict[str, list[AttachmentRecord]] = {}
        for r in conn.execute(latest):
            record = AttachmentRecord(
                r.asset_id, r.kind, r.sha256, r.language or None, r.name, r.blob_key, r.attached_at
            )
            found.setdefault(r.asset_id, []).append(record)
        for records in found.values():
            records.sort(key=lambda a: (a.language or "", a.name))
        return found

    def subtitles(self, asset_id: str) -> Subtitles:
        """The asset's current subtitle files as local files."""
        records = self.attachments([asset_id], "subtitles").get(asset_id, [])
        return Subtitles(tuple(SubtitleTrack(self.blobs.local_path(a.blob_key), a.name, a.language) for a in records))

    # ---- artefacts (trained checkpoints) and promotion

    def put_artefact(self, kind: str, data: bytes, meta: dict[str, Any]) -> ArtefactRecord:
        """Store an artefact once, by content; the same bytes again return the existing record."""
        with self._gc_guard():
            info = self.blobs.put_bytes(data)
            with self.engine.begin() as conn:
                conn.execute(
                    pg_insert(schema.artefacts)
                    .values(id=info.sha256, kind=kind, blob_key=info.key, bytes=info.size, meta=meta)
                    .on_conflict_do_nothing()
                )
        return self.artefact(info.sha256)

    def artefact(self, ref: str) -> ArtefactRecord:
        """An artefact by id or unique id prefix."""
        table = schema.artefacts
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.id.startswith(ref.lower())).limit(2)).all()
        if not rows:
            raise ArtefactNotFoundError(f"no artefact {ref!r}")
        if len(rows) > 1:
            raise AmbiguousAssetError(f"artefact prefix {ref!r} matches several artefacts; give more characters")
        return ArtefactRecord(**rows[0]._mapping)

    def artefacts(self, kind: str) -> list[ArtefactRecord]:
        """The artefacts of ``kind``, newest first."""
        table = schema.artefacts
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.kind == kind).order_by(table.c.created_at.desc()))
            return [ArtefactRecord(**r._mapping) for r in rows]

    def promote(self, kind: str, artefact_id: str) -> ArtefactRecord:
        """Make ``artefact_id`` the one readers of ``kind`` use, at once; earlier promotions stay as history."""
        record = self.artefact(artefact_id)
        if record.kind != kind:
            raise ArtefactNotFoundError(f"artefact {record.id[:12]} is a {record.kind!r}, not a {kind!r}")
        with self.engine.begin() as conn:
            conn.execute(schema.promotions.insert().values(kind=kind, artefact_id=record.id))
        return record

    def promoted(self, kind: str) -> ArtefactRecord | None:
        """The artefact of ``kind`` promoted last, or None."""
        p, a = schema.promotions, schema.artefacts
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(a)
                .join(p, p.c.artefact_id == a.c.id)
                .where(p.c.kind == kind)
                .order_by(p.c.promoted_at.desc(), p.c.id.desc())
                .limit(1)
            ).first()
        return ArtefactRecord(**row._mapping) if row is not None else None

    def mediafm_checkpoint(self) -> MediaFMCheckpoint:
        """The promoted MediaFM checkpoint as a local file (none until one is trained and promoted)."""
        record = self.promoted("mediafm")
        if record is None:
            return MediaFMCheckpoint()
        return MediaFMCheckpoint(path=self.blobs.local_path(record.blob_key), sha256=record.id)

    # ---- feature promotion

    def promote_feature(self, feature: str, version: str) -> None:
        """Make ``version`` the one default readers of ``feature`` get, at once; pinned readers are unaffected.

        Refused when no asset has a value of that version: promoting it would leave default readers
        with nothing. Earlier promotions stay as history, and promoting an older version is a rollback.
        """
        v = schema.values
        with self.engine.begin() as conn:
            stored = conn.execute(
                sa.select(v.c.key).where(v.c.feature == feature, v.c.version == version).limit(1)
            ).first()
            if stored is None:
                raise ValueNotFoundError(f"no asset has a stored {feature}@{version}; compute it before promoting it")
            conn.execute(schema.feature_promotions.insert().values(feature=feature, version=version))

    def promoted_version(self, feature: str) -> str | None:
        """The version of ``feature`` promoted last, or None if none ever was."""
        p = schema.feature_promotions
        with self.engine.connect() as conn:
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
        with self.engine.connect() as conn:
            of_version = sa.and_(v.c.feature == feature, v.c.version == version)
            having = conn.execute(sa.select(sa.func.count(sa.distinct(v.c.asset_id))).where(of_version)).scalar_one()
            total = conn.execute(sa.select(sa.func.count()).select_from(schema.assets)).scalar_one()
        return int(having), int(total)

    # ---- title metadata

    def set_title_metadata(self, asset_id: str, metadata: TitleMetadata, *, name: str) -> None:
        """Attach ``metadata`` to the asset as its current title metadata (stored by content)."""
        data = json.dumps(metadata.to_json(), sort_keys=True, separators=(",", ":")).encode()
        with tempfile.TemporaryDirectory(prefix="mediamesh-title-") as tmp:
            path = Path(tmp) / "title.json"
            path.write_bytes(data)
            self.attach(asset_id, "title", path, name=name, language=None)

    def title_metadata(self, asset_id: str) -> TitleMetadata:
        """The asset's current title metadata (empty when none was given)."""
        records = self.attachments([asset_id], "title").get(asset_id, [])
        if not records:
            return TitleMetadata()
        return TitleMetadata.from_json(json.loads(self.blobs.get_bytes(records[0].blob_key)))

    # ---- values

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
        with self.engine.connect() as conn:
            # One string back, too: fetching 100,000 one-column rows costs more than the lookup itself.
            found = conn.execute(
                sa.text("SELECT string_agg(key, ',') FROM feature_values WHERE key = ANY(CAST(:keys AS varchar[]))"),
                {"keys": "{" + joined + "}"},
            ).scalar_one()
        return set(found.split(",")) if found else set()

    def put_value(self, new: NewValue, value: Any) -> ValueRecord:
        """Write the blob (verified), then the row and its lineage in one transaction."""
        payload = codecs.encode(value)
        faults.fault_point(faults.BEFORE_BLOB, new.feature)
        if payload.path is not None:
            info = self.blobs.put_file(payload.path)
            xxh3 = _digest_file(payload.path, xxhash.xxh3_64())
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
        with self.engine.begin() as conn:
            inserted = conn.execute(
                pg_insert(schema.values).values(**row).on_conflict_do_nothing().returning(schema.values.c.key)
            ).first()
            if inserted is not None:
                conn.execute(
                    schema.lineage.insert(),
                    [
                        {"value_key": new.key, "position": i, "input_name": n, "input_key": k}
                        for i, (n, k) in enumerate(new.inputs)
                    ],
                )
        faults.fault_point(faults.AFTER_ROW, new.feature)
        record = self.value(new.key)
        if record is None:  # pragma: no cover - the row was just written or already there
            raise ValueNotFoundError(f"value {new.key} vanished after writing")
        return record

    def value(self, key: str) -> ValueRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.values).where(schema.values.c.key == key)).first()
        return ValueRecord(**row._mapping) if row is not None else None

    def values_for(self, asset_id: str, feature: str | None = None, version: str | None = None) -> list[ValueRecord]:
        """The asset's values, newest first, optionally of one feature (and version)."""
        query = sa.select(schema.values).where(schema.values.c.asset_id == asset_id)
        if feature is not None:
            query = query.where(schema.values.c.feature == feature)
        if version is not None:
            query = query.where(schema.values.c.version == version)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(schema.values.c.created_at.desc())).all()
        return [ValueRecord(**r._mapping) for r in rows]

    def lineage(self, key: str) -> list[tuple[str, str]]:
        """The (input name, input key) pairs a value was computed from, in parameter order."""
        with self.engine.connect() as conn:
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
                    _check_value(record, iter(lambda: fh.read(_HASH_CHUNK), b""))
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

    # ---- attempts, claims, runs

    def record_attempt(
        self,
        *,
        value_key: str,
        asset_id: str,
        feature: str,
        version: str,
        error: BaseException,
        worker: str,
        started_at: datetime,
        run_id: str | None = None,
    ) -> None:
        """Keep a failed attempt apart from values, so it never poisons the key."""
        with self.engine.begin() as conn:
            conn.execute(
                schema.attempts.insert().values(
                    value_key=value_key,
                    asset_id=asset_id,
                    feature=feature,
                    version=version,
                    error_type=type(error).__name__,
                    message=str(error),
                    retryable=bool(getattr(error, "retryable", False)),
                    worker=worker,
                    run_id=run_id,
                    started_at=started_at,
                )
            )

    def attempts_for(self, asset_id: str) -> list[AttemptRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(schema.attempts)
                .where(schema.attempts.c.asset_id == asset_id)
                .order_by(schema.attempts.c.finished_at.desc())
            ).all()
        return [
            AttemptRecord(
                r.value_key,
                r.asset_id,
                r.feature,
                r.version,
                r.error_type,
                r.message,
                r.retryable,
                r.worker,
                r.started_at,
                r.finished_at,
            )
            for r in rows
        ]

    @contextmanager
    def claim(self, key: str, *, asset_id: str, feature: str, version: str, worker: str) -> Iterator[None]:
        """Hold the right to compute ``key``; a second claimant waits here until the first is done.

        The claim is a session advisory lock, so a worker that dies releases it with its connection and
        another can take over at once. The ``claims`` row only shows who is computing what.
        """
        lock = _lock_id(key)
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock_shared(:g)"), {"g": _GC_LOCK})
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": lock})
            conn.commit()
            try:
                stmt = pg_insert(schema.claims).values(
                    value_key=key, asset_id=asset_id, feature=feature, version=version, worker=worker
                )
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[schema.claims.c.value_key],
                        set_={"worker": worker, "claimed_at": sa.func.now()},
                    )
                )
                conn.commit()
                yield
            finally:
                conn.rollback()
                conn.execute(schema.claims.delete().where(schema.claims.c.value_key == key))
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": lock})
                conn.execute(sa.text("SELECT pg_advisory_unlock_shared(:g)"), {"g": _GC_LOCK})
                conn.commit()

    def live_claims(self, asset_id: str | None = None) -> list[dict[str, Any]]:
        """Claims whose holder is still alive (stale rows of dead workers are skipped)."""
        query = sa.select(schema.claims)
        if asset_id is not None:
            query = query.where(schema.claims.c.asset_id == asset_id)
        live = []
        with self.engine.connect() as conn:
            for row in conn.execute(query).all():
                free = conn.execute(
                    sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _lock_id(row.value_key)}
                ).scalar_one()
                if free:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_id(row.value_key)})
                else:
                    live.append(dict(row._mapping))
            conn.commit()
        return live

    def start_run(self, run_id: str, trigger: str, planned: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(schema.runs.insert().values(id=run_id, trigger=trigger, planned=planned))

    def finish_run(self, run_id: str, *, computed: int, reused: int, failed: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                schema.runs.update()
                .where(schema.runs.c.id == run_id)
                .values(finished_at=sa.func.now(), computed=computed, reused=reused, failed=failed)
            )

    # ---- feature versions

    def record_features(self, specs: Iterable[FeatureVersion | tuple[str, str, str, str]]) -> None:
        """Record feature versions as seen (a bare tuple is name, version, code fingerprint, resources); known
        ones are left alone, and the same code seen from another module is a row of its own."""
        rows = [asdict(s if isinstance(s, FeatureVersion) else FeatureVersion(*s)) for s in specs]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(pg_insert(schema.feature_versions).values(rows).on_conflict_do_nothing())

    def recorded_fingerprints(self) -> dict[tuple[str, str], set[str]]:
        """Every code fingerprint recorded for each (feature, version)."""
        found: dict[tuple[str, str], set[str]] = {}
        with self.engine.connect() as conn:
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
        with self.engine.connect() as conn:
            return [CatalogueEntry(**row._mapping) for row in conn.execute(query)]

    def stored_feature_names(self) -> list[str]:
        """The name of every feature that has a stored value, sorted."""
        v = schema.values
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(v.c.feature).distinct().order_by(v.c.feature)).scalars())

    # ---- garbage collection

    def gc(self, *, dry_run: bool = False) -> list[str]:
        """Remove blobs that no row refers to (left by a crash between blob and row).

        What is referenced is what the ``blob_references`` view lists: every table that names a blob (assets,
        values, attachments, artefacts) adds itself to the view in the migration that creates it.
        """
        with self.engine.connect() as conn:
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:g)"), {"g": _GC_LOCK}).scalar_one()
            if not got:
                raise GarbageCollectionBusyError("work is in progress; run gc again when it is done")
            try:
                referenced = set(conn.execute(sa.select(schema.blob_references.c.blob_key).distinct()).scalars())
                orphans = [k for k in self.blobs.iter_keys() if k not in referenced]
                if not dry_run:
                    for key in orphans:
                        self.blobs.delete(key)
                return orphans
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:g)"), {"g": _GC_LOCK})
                conn.commit()

    # ---- scrubbing

    def verify(
        self,
        *,
        sample: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        rng: random.Random | None = None,
    ) -> VerifyReport:
        """Re-hash every referenced blob (or ``sample`` of them, at random) from the store itself, against the
        SHA-256, size and xxh3 its rows recorded; streamed, so memory stays bounded whatever the blob's size.

        ``progress(done, total)`` is called after each blob.
        """
        refs = schema.blob_references
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(refs).order_by(refs.c.blob_key, refs.c.source, refs.c.row_key)).all()
        by_key: dict[str, list[sa.Row[Any]]] = {}
        for row in rows:
            by_key.setdefault(row.blob_key, []).append(row)
        keys = sorted(by_key)
        if sample is not None and sample < len(keys):
            keys = sorted((rng or random.Random()).sample(keys, sample))
        missing: list[BadBlob] = []
        corrupt: list[BadBlob] = []
        total_bytes = 0
        for done, key in enumerate(keys, 1):
            uses = tuple(BlobUse(r.source, r.row_key, r.asset_id) for r in by_key[key])
            try:
                size, problem = _scrub(self.blobs.chunks(key), by_key[key])
            except BlobNotFoundError:
                missing.append(BadBlob(key, f"not in {self.blobs.describe()}", uses))
            else:
                total_bytes += size
                if problem is not None:
                    corrupt.append(BadBlob(key, problem, uses))
            if progress is not None:
                progress(done, len(keys))
        return VerifyReport(len(keys), total_bytes, tuple(missing), tuple(corrupt))

    @contextmanager
    def _gc_guard(self) -> Iterator[None]:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock_shared(:g)"), {"g": _GC_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock_shared(:g)"), {"g": _GC_LOCK})
                conn.commit()


def _scrub(chunks: Iterable[bytes], rows: Sequence[sa.Row[Any]]) -> tuple[int, str | None]:
    """The blob's size, and what is wrong with its bytes against each row's SHA-256, size and xxh3 (None: nothing)."""
    sha256 = hashlib.sha256()
    xxh3 = xxhash.xxh3_64() if any(r.xxh3 is not None for r in rows) else None
    size = 0
    for chunk in chunks:
        sha256.update(chunk)
        if xxh3 is not None:
            xxh3.update(chunk)
        size += len(chunk)
    problems = []
    digests = {r.sha256 for r in rows}
    if digests != {got := sha256.hexdigest()}:
        problems.append(f"hashes to SHA-256 {got}, its rows say {', '.join(sorted(digests))}")
    sizes = {r.bytes for r in rows if r.bytes is not None}
    if sizes - {size}:
        problems.append(f"has {size} bytes, its rows say {', '.join(map(str, sorted(sizes)))}")
    recorded = {r.xxh3 for r in rows if r.xxh3 is not None}
    if xxh3 is not None and recorded - {xxh3.hexdigest()}:
        problems.append(f"hashes to xxh3 {xxh3.hexdigest()}, its rows say {', '.join(sorted(recorded))}")
    return size, "; ".join(problems) or None


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


def _corrupt(record: ValueRecord, problem: str) -> CorruptValueError:
    return CorruptValueError(
        f"the stored value {record.ref} {record.key[:12]} of asset {record.asset_id[:12]} is corrupt: "
        f"blob {record.blob_key} {problem}; run `mediamesh verify` to find every damaged blob"
    )


def _first(names: tuple[str, ...]) -> str | None:
    return names[0] if names else None
