"""Nothing stored is lost or silently wrong: gc keeps every kind of blob, reads and ``verify`` catch damage.

Every test runs on both backends (local blobs, and S3 on SeaweedFS). Damage is done the way it happens: bytes
changed in place under the same key (bit rot, a bad disk, a hand edit), or a blob removed behind our back.
"""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from mediamesh.features import EncodedMedia, ShotTable, TitleMetadata
from mediamesh.store import (
    CorruptValueError,
    LocalBlobStore,
    NewValue,
    S3BlobStore,
    Store,
    ValueRecord,
    schema,
)
from mediamesh.store.blobs import BlobIntegrityError


def _new(asset: str, key: str, feature: str = "shots") -> NewValue:
    now = datetime.now(UTC)
    return NewValue(
        key=key,
        asset_id=asset,
        feature=feature,
        version="1",
        params={},
        model_fingerprint=None,
        code_fingerprint="f" * 64,
        inputs=(("source", asset),),
        started_at=now,
        finished_at=now,
        worker="test:1",
        device="cpu",
    )


def _key(n: int) -> str:
    return f"{n:064x}"


def _overwrite(request: pytest.FixtureRequest, store: Store, key: str, data: bytes) -> None:
    """Replace the blob's bytes under the same key, as bit rot or a hand edit would."""
    if isinstance(store.blobs, LocalBlobStore):
        path = store.blobs.root / key
        path.chmod(0o644)  # blobs are written read-only
        path.write_bytes(data)
        return
    assert isinstance(store.blobs, S3BlobStore)
    name = f"{store.blobs.prefix}/{key}" if store.blobs.prefix else key
    request.getfixturevalue("seaweed").client().put_object(store.blobs.bucket, name, io.BytesIO(data), len(data))


def _flip_last_byte(request: pytest.FixtureRequest, store: Store, key: str) -> bytes:
    """Change one byte of the blob, keeping its size; the edited bytes."""
    data = bytearray(store.blobs.get_bytes(key))
    data[-1] ^= 0x01
    _overwrite(request, store, key, bytes(data))
    return bytes(data)


def _edit(request: pytest.FixtureRequest, store: Store, key: str, old: bytes, new: bytes) -> bytes:
    """Replace ``old`` with ``new`` (as long) in the blob: an edit that still parses; the edited bytes."""
    data = store.blobs.get_bytes(key)
    assert len(old) == len(new) and data.count(old) == 1
    edited = data.replace(old, new)
    _overwrite(request, store, key, edited)
    return edited


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"not really a video, but bytes are bytes" * 1000)
    return path


def test_gc_keeps_every_kind_of_referenced_blob_and_removes_a_real_orphan(
    store: Store, clip: Path, tmp_path: Path
) -> None:
    asset, _ = store.register_asset(clip, name="clip.mp4")
    table = ShotTable.from_frames(24.0, [(0, 24), (24, 48)])
    value = store.put_value(_new(asset.id, _key(1)), table)
    subtitles = tmp_path / "clip.en.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:01,000\nHello.\n")
    store.attach(asset.id, "subtitles", subtitles, name=subtitles.name, language="en")
    title = TitleMetadata(title="Clip", synopsis="A clip that is not a video.", tags=("test",))
    store.set_title_metadata(asset.id, title, name="clip.json")
    checkpoint = store.put_artefact("mediafm", b"checkpoint weights" * 100, {"config": "small"})
    orphan = store.blobs.put_bytes(b"written, then the process died before its row")

    assert store.gc(dry_run=True) == [orphan.key]
    assert store.gc() == [orphan.key]

    assert not store.blobs.exists(orphan.key)
    assert store.source(asset.id).path.read_bytes() == clip.read_bytes()
    assert store.load(value, ShotTable) == table
    [track] = store.subtitles(asset.id).tracks
    assert track.path.read_text() == subtitles.read_text()
    assert store.title_metadata(asset.id) == title
    assert store.blobs.get_bytes(checkpoint.blob_key) == b"checkpoint weights" * 100
    assert store.verify().ok


def test_blob_references_covers_every_table_with_a_blob_key(store: Store) -> None:
    """A later table with a ``blob_key`` must add itself to the view, or gc would sweep its blobs."""
    with store.engine.connect() as conn:
        with_blob_keys = set(
            conn.execute(
                sa.text(
                    "SELECT c.table_name FROM information_schema.columns c"
                    " JOIN information_schema.tables t USING (table_schema, table_name)"
                    " WHERE c.table_schema = current_schema() AND c.column_name = 'blob_key'"
                    " AND t.table_type = 'BASE TABLE'"
                )
            ).scalars()
        )
        in_view = set(
            conn.execute(
                # The tables the view's rule reads (pg_depend: information_schema hides tables of other owners).
                sa.text(
                    "SELECT DISTINCT c.relname FROM pg_rewrite r JOIN pg_depend d ON d.objid = r.oid"
                    " JOIN pg_class c ON c.oid = d.refobjid"
                    " WHERE r.ev_class = 'blob_references'::regclass AND d.refobjid <> r.ev_class"
                )
            ).scalars()
        )
    assert {"assets", "feature_values", "attachments", "artefacts"} <= with_blob_keys
    assert with_blob_keys - in_view == set(), "add these tables to the blob_references view in their migration"


def test_verify_reports_nothing_on_a_clean_store(store: Store, clip: Path, tmp_path: Path) -> None:
    asset, _ = store.register_asset(clip, name="clip.mp4")
    store.put_value(_new(asset.id, _key(1)), ShotTable.from_frames(24.0, [(0, 24)]))
    store.put_value(_new(asset.id, _key(2), "emb"), np.arange(6, dtype=np.float32))
    store.set_title_metadata(asset.id, TitleMetadata(title="Clip"), name="clip.json")
    store.put_artefact("mediafm", b"weights", {})
    seen: list[tuple[int, int]] = []

    report = store.verify(progress=lambda done, total: seen.append((done, total)))

    assert (report.checked, report.missing, report.corrupt) == (5, (), ())
    assert report.bytes == sum(len(store.blobs.get_bytes(k)) for k in store.blobs.iter_keys())
    assert seen == [(n, 5) for n in range(1, 6)]
    assert report.to_json() == {"checked": 5, "bytes": report.bytes, "missing": [], "corrupt": []}


def test_a_same_size_edit_is_found_by_verify_and_refused_by_load(
    request: pytest.FixtureRequest, store: Store, clip: Path
) -> None:
    asset, _ = store.register_asset(clip, name="clip.mp4")
    table = ShotTable.from_frames(24.0, [(0, 24), (24, 48)])
    # Two values with the same content share one blob; both are named as its users.
    first = store.put_value(_new(asset.id, _key(1)), table)
    second = store.put_value(_new(asset.id, _key(2), "shots_copy"), table)
    untouched = store.put_value(_new(asset.id, _key(3), "emb"), np.arange(6, dtype=np.float32))
    assert first.blob_key == second.blob_key and first.xxh3 is not None

    edited = _edit(request, store, first.blob_key, b'"end_frame":48', b'"end_frame":49')
    assert len(edited) == first.bytes

    report = store.verify()
    assert report.checked == 3 and report.missing == ()
    [bad] = report.corrupt
    assert (bad.key, bad.values, bad.assets) == (first.blob_key, [_key(1), _key(2)], [asset.id])
    assert "hashes to SHA-256" in bad.problem and "xxh3" in bad.problem
    assert report.to_json()["corrupt"] == [{"blob": first.blob_key, "values": [_key(1), _key(2)], "assets": [asset.id]}]

    with pytest.raises(CorruptValueError, match=rf"shots@1 {_key(1)[:12]} .* is corrupt: blob {first.blob_key} ") as e:
        store.load(first, ShotTable)
    assert "run `mediamesh verify`" in str(e.value)
    assert isinstance(e.value, BlobIntegrityError) and e.value.retryable is False
    # Switched off, the check is what stands between the edit and the reader.
    assert store.load(first, ShotTable, verify=False) != table
    assert np.array_equal(store.load(untouched, np.ndarray), np.arange(6, dtype=np.float32))


def test_a_changed_array_is_refused_and_a_size_change_is_corrupt_not_retryable(
    request: pytest.FixtureRequest, store: Store, clip: Path
) -> None:
    asset, _ = store.register_asset(clip, name="clip.mp4")
    array = store.put_value(_new(asset.id, _key(1), "emb"), np.arange(12, dtype=np.float32).reshape(3, 4))
    _flip_last_byte(request, store, array.blob_key)
    with pytest.raises(CorruptValueError, match=r"emb@1 .* does not match the xxh3 its row recorded"):
        store.load(array, np.ndarray)

    _overwrite(request, store, array.blob_key, store.blobs.get_bytes(array.blob_key) + b"\0")
    for verify in (True, False):
        with pytest.raises(CorruptValueError, match=rf"has {array.bytes + 1} bytes, its row says {array.bytes}"):
            store.load(array, np.ndarray, verify=verify)
    [bad] = store.verify().corrupt
    assert f"has {array.bytes + 1} bytes, its rows say {array.bytes}" in bad.problem


def test_a_row_from_before_xxh3_is_checked_by_its_sha256(
    request: pytest.FixtureRequest, store: Store, clip: Path
) -> None:
    asset, _ = store.register_asset(clip, name="clip.mp4")
    table = ShotTable.from_frames(24.0, [(0, 24)])
    new = store.put_value(_new(asset.id, _key(1)), table)
    with store.engine.begin() as conn:  # the row as migration 0004 left it: no xxh3
        row = conn.execute(sa.select(schema.values).where(schema.values.c.key == new.key)).one()._mapping
        conn.execute(
            pg_insert(schema.values).values({**row, "key": _key(2), "xxh3": None, "created_at": sa.func.now()})
        )
    old = store.value(_key(2))
    assert old is not None and old.xxh3 is None
    assert store.load(old, ShotTable) == table

    _edit(request, store, old.blob_key, b'"end_time":1.0', b'"end_time":1.5')
    with pytest.raises(CorruptValueError, match=r"does not match the SHA-256 its row recorded"):
        store.load(old, ShotTable)


def test_a_media_file_is_hashed_on_load_and_when_streamed_whole(
    request: pytest.FixtureRequest, store: Store, clip: Path, tmp_path: Path
) -> None:
    asset, _ = store.register_asset(clip, name="clip.mp4")
    media_file = tmp_path / "encode.mp4"
    media_file.write_bytes(b"mp4 bytes " * 50_000)
    media = EncodedMedia(media_file, 640, 360, 24.0, 100, 4.1667, False, None)
    record = store.put_value(_new(asset.id, _key(1), "encode"), media)
    assert b"".join(store.stream_value(record)) == media_file.read_bytes()

    _flip_last_byte(request, store, record.blob_key)
    streamed: list[bytes] = []
    with pytest.raises(CorruptValueError, match=r"encode@1 .* does not match the xxh3"):
        streamed.extend(store.stream_value(record))
    assert sum(map(len, streamed)) == record.bytes  # every byte went past; the error came after the last
    with pytest.raises(CorruptValueError, match=r"encode@1 .* is corrupt"):
        store.load(record, EncodedMedia)


def test_a_deleted_blob_is_reported_missing_with_what_uses_it(store: Store, clip: Path, tmp_path: Path) -> None:
    asset, _ = store.register_asset(clip, name="clip.mp4")
    value = store.put_value(_new(asset.id, _key(1)), ShotTable.from_frames(24.0, [(0, 24)]))
    subtitles = tmp_path / "clip.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:01,000\nHi.\n")
    attached = store.attach(asset.id, "subtitles", subtitles, name="clip.srt", language=None)
    checkpoint = store.put_artefact("mediafm", b"weights", {})
    for key in (asset.blob_key, attached.blob_key, checkpoint.blob_key, value.blob_key):
        store.blobs.delete(key)

    report = store.verify()

    assert (report.checked, report.bytes, report.corrupt) == (4, 0, ())
    found = {bad.key: (bad.values, bad.assets) for bad in report.missing}
    assert found == {
        asset.blob_key: ([], [asset.id]),
        value.blob_key: ([_key(1)], [asset.id]),
        attached.blob_key: ([f"attachments:{asset.id}/subtitles/{attached.sha256}"], [asset.id]),
        checkpoint.blob_key: ([f"artefacts:{checkpoint.id}"], []),
    }
    assert all("not in " in bad.problem for bad in report.missing)


def test_verify_checks_a_random_sample_when_asked(store: Store, clip: Path) -> None:
    asset, _ = store.register_asset(clip, name="clip.mp4")
    values: list[ValueRecord] = [
        store.put_value(_new(asset.id, _key(n), f"f{n}"), np.full(4, n, dtype=np.int64)) for n in range(1, 6)
    ]
    store.blobs.delete(values[0].blob_key)

    sampled = [store.verify(sample=2, rng=random.Random(seed)) for seed in range(20)]

    assert {r.checked for r in sampled} == {2}
    assert {len(r.missing) for r in sampled} == {0, 1}  # the missing blob is sometimes drawn, sometimes not
    assert store.verify(sample=100).checked == 6
    everything: Any = store.verify()
    assert (everything.checked, [b.key for b in everything.missing]) == (6, [values[0].blob_key])
