"""Files attached to assets (subtitles, title metadata) and artefacts (trained checkpoints) with their promotion."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert

from mediamesh.features.values import MediaFMCheckpoint, Subtitles, SubtitleTrack, TitleMetadata
from mediamesh.store import schema
from mediamesh.store.core import StoreCore
from mediamesh.store.records import (
    AmbiguousAssetError,
    ArtefactNotFoundError,
    ArtefactRecord,
    AttachmentRecord,
    hash_file,
)

__all__ = ["AttachmentStore"]


class AttachmentStore(StoreCore):
    """Attachments and artefacts: bytes stored by content, rows appended as history, the newest current."""

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
            with self._begin() as conn:
                current = self._current_attachments(conn, [asset_id], kind).get(asset_id, [])
                if not any(a.sha256 == sha256 and (a.language or "") == (language or "") for a in current):
                    # A new row even for bytes attached before: rows are history, never changed.
                    conn.execute(table.insert().values(**row, attached_at=sa.func.clock_timestamp()))
                records = self._current_attachments(conn, [asset_id], kind)[asset_id]
        return next(r for r in records if r.sha256 == sha256)

    def attachments(self, asset_ids: Sequence[str], kind: str) -> dict[str, list[AttachmentRecord]]:
        """Each asset's current files of ``kind`` (one per language), in one query."""
        with self._connect() as conn:
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
        return self.subtitles_of(self.attachments([asset_id], "subtitles").get(asset_id, []))

    def subtitles_of(self, records: Sequence[AttachmentRecord]) -> Subtitles:
        """These subtitle attachments as local files."""
        return Subtitles(tuple(SubtitleTrack(self.blobs.local_path(a.blob_key), a.name, a.language) for a in records))

    def put_artefact(self, kind: str, data: bytes, meta: dict[str, Any]) -> ArtefactRecord:
        """Store an artefact once, by content; the same bytes again return the existing record."""
        with self._gc_guard():
            info = self.blobs.put_bytes(data)
            with self._begin() as conn:
                conn.execute(
                    pg_insert(schema.artefacts)
                    .values(id=info.sha256, kind=kind, blob_key=info.key, bytes=info.size, meta=meta)
                    .on_conflict_do_nothing()
                )
        return self.artefact(info.sha256)

    def artefact(self, ref: str) -> ArtefactRecord:
        """An artefact by id or unique id prefix."""
        table = schema.artefacts
        with self._connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.id.startswith(ref.lower())).limit(2)).all()
        if not rows:
            raise ArtefactNotFoundError(f"no artefact {ref!r}")
        if len(rows) > 1:
            raise AmbiguousAssetError(f"artefact prefix {ref!r} matches several artefacts; give more characters")
        return ArtefactRecord(**rows[0]._mapping)

    def artefacts(self, kind: str) -> list[ArtefactRecord]:
        """The artefacts of ``kind``, newest first."""
        table = schema.artefacts
        with self._connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.kind == kind).order_by(table.c.created_at.desc()))
            return [ArtefactRecord(**r._mapping) for r in rows]

    def promote(self, kind: str, artefact_id: str) -> ArtefactRecord:
        """Make ``artefact_id`` the one readers of ``kind`` use, at once; earlier promotions stay as history."""
        record = self.artefact(artefact_id)
        if record.kind != kind:
            raise ArtefactNotFoundError(f"artefact {record.id[:12]} is a {record.kind!r}, not a {kind!r}")
        with self._begin() as conn:
            conn.execute(schema.promotions.insert().values(kind=kind, artefact_id=record.id))
        return record

    def promoted(self, kind: str) -> ArtefactRecord | None:
        """The artefact of ``kind`` promoted last, or None."""
        p, a = schema.promotions, schema.artefacts
        with self._connect() as conn:
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
        return self.checkpoint_of(self.promoted("mediafm"))

    def checkpoint_of(self, record: ArtefactRecord | None) -> MediaFMCheckpoint:
        """This checkpoint artefact as a local file; no checkpoint for None."""
        if record is None:
            return MediaFMCheckpoint()
        return MediaFMCheckpoint(path=self.blobs.local_path(record.blob_key), sha256=record.id)

    def set_title_metadata(self, asset_id: str, metadata: TitleMetadata, *, name: str) -> None:
        """Attach ``metadata`` to the asset as its current title metadata (stored by content)."""
        data = json.dumps(metadata.to_json(), sort_keys=True, separators=(",", ":")).encode()
        with tempfile.TemporaryDirectory(prefix="mediamesh-title-") as tmp:
            path = Path(tmp) / "title.json"
            path.write_bytes(data)
            self.attach(asset_id, "title", path, name=name, language=None)

    def title_metadata(self, asset_id: str) -> TitleMetadata:
        """The asset's current title metadata (empty when none was given)."""
        return self.title_metadata_of(self.attachments([asset_id], "title").get(asset_id, []))

    def title_metadata_of(self, records: Sequence[AttachmentRecord]) -> TitleMetadata:
        """The title metadata this attachment holds (empty for none)."""
        if not records:
            return TitleMetadata()
        return TitleMetadata.from_json(json.loads(self.blobs.get_bytes(records[0].blob_key)))
