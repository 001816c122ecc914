"""The psycopg catalogue reads (``store/catalogue.py``) answer as the ``Store`` methods they mirror."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row
from sqlalchemy.engine import make_url

from mediamesh.features import ShotTable
from mediamesh.store import NewValue, Store
from mediamesh.store.catalogue import CatalogueReader, CatalogueUnavailable


def _new(asset: str, key: str, feature: str, version: str = "1") -> NewValue:
    now = datetime.now(UTC)
    return NewValue(
        key=key,
        asset_id=asset,
        feature=feature,
        version=version,
        params={},
        model_fingerprint=None,
        code_fingerprint="f" * 64,
        inputs=(("source", asset),),
        started_at=now,
        finished_at=now,
        worker="test:1",
        device="cpu",
    )


def test_every_read_agrees_with_the_store(local_store: Store, database_url: str, tmp_path: Path) -> None:
    store = local_store
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"bytes of a clip" * 100)
    asset, _ = store.register_asset(clip, name="b/clip.mp4")
    store.register_asset(clip, name="a/clip.mp4")
    other = tmp_path / "other.bin"
    other.write_bytes(b"other bytes")
    store.register_asset(other, name="other.mp4")
    table = ShotTable.from_frames(25.0, [(0, 10), (10, 30)])
    for n, (feature, version) in enumerate((("shots", "1"), ("shots", "2"), ("dedup", "1"))):
        store.put_value(_new(asset.id, f"{n + 1:064x}", feature, version), table)
    started = datetime.now(UTC)
    store.record_attempt(
        value_key=f"{9:064x}", asset_id=asset.id, feature="broken", version="1",
        error=ValueError("no"), worker="test:1", started_at=started,
    )  # fmt: skip
    for language, text in (("en", "one"), ("en", "two"), ("fr", "un")):
        subs = tmp_path / f"{text}.srt"
        subs.write_text(f"1\n00:00:00,000 --> 00:00:01,000\n{text}\n")
        store.attach(asset.id, "subtitles", subs, name=subs.name, language=language)
    store.promote_feature("shots", "1")
    checkpoint = store.put_artefact("mediafm", b"weights", {})
    store.promote("mediafm", checkpoint.id)

    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        reader = CatalogueReader(conn, tmp_path / "home")
        for ref in (asset.id, asset.id[:5].upper(), "a/clip.mp4"):
            assert reader.resolve_asset(ref) == store.resolve_asset(ref)
        with pytest.raises(CatalogueUnavailable):
            reader.resolve_asset(str(clip))  # a file: the full path hashes it
        assert reader.names(asset.id) == store.asset(asset.id).names
        assert reader.values_for(asset.id) == store.values_for(asset.id)
        assert reader.values_for(asset.id, "shots", "2") == store.values_for(asset.id, "shots", "2")
        assert reader.value(f"{1:064x}") == store.value(f"{1:064x}")
        assert reader.attempts_for(asset.id) == store.attempts_for(asset.id)
        current = store.attachments([asset.id], "subtitles")[asset.id]
        assert sorted(reader.attachment_files(asset.id, "subtitles")) == sorted((a.language, a.sha256) for a in current)
        assert reader.promoted_version("shots") == store.promoted_version("shots") == "1"
        assert reader.promoted_version("dedup") is None
        promoted = store.promoted("mediafm")
        assert promoted is not None and reader.promoted_artefact("mediafm") == promoted.id
        record = store.value(f"{1:064x}")
        assert record is not None
        assert ShotTable.from_json(json.loads(reader.value_bytes(record))) == table

        # A claim held by a live worker shows; once given back, it does not.
        assert reader.live_claims(asset.id) == store.live_claims(asset.id) == []
        held, release = threading.Event(), threading.Event()

        def work() -> None:
            with store.claim(f"{7:064x}", asset_id=asset.id, feature="dedup", version="2", worker="w:1"):
                held.set()
                release.wait(30)

        worker = threading.Thread(target=work)
        worker.start()
        try:
            assert held.wait(30)
            claims = reader.live_claims(asset.id)
            assert claims == store.live_claims(asset.id) and [c["worker"] for c in claims] == ["w:1"]
        finally:
            release.set()
            worker.join(30)
        assert reader.live_claims(asset.id) == []


def test_a_blob_that_differs_from_its_row_is_not_read_here(
    local_store: Store, database_url: str, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"clip")
    asset, _ = local_store.register_asset(clip, name="clip")
    record = local_store.put_value(_new(asset.id, f"{1:064x}", "shots"), ShotTable.from_frames(25.0, [(0, 5)]))
    blob = tmp_path / "home" / "blobs" / record.blob_key
    blob.chmod(0o600)
    blob.write_bytes(blob.read_bytes().replace(b"25.0", b"24.0"))
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with (
        psycopg.connect(url, row_factory=dict_row) as conn,
        pytest.raises(CatalogueUnavailable, match="does not match its row"),
    ):
        CatalogueReader(conn, tmp_path / "home").value_bytes(record)
