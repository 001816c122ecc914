"""The store gateway on both backends: embedded Postgres + local blobs, and Postgres + S3 (SeaweedFS)."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest
import sqlalchemy as sa

from mediamesh.features import EncodedMedia, ShotTable
from mediamesh.store import (
    AmbiguousAssetError,
    AssetNotFoundError,
    GarbageCollectionBusyError,
    NewValue,
    Store,
    hash_file,
)
from mediamesh.store.database import APP_ROLE, create_engine, migrate


def _new(store_asset: str, key: str, feature: str = "shots", inputs: tuple[tuple[str, str], ...] = ()) -> NewValue:
    now = datetime.now(UTC)
    return NewValue(
        key=key,
        asset_id=store_asset,
        feature=feature,
        version="1",
        params={"threshold": 27.0},
        model_fingerprint=None,
        code_fingerprint="f" * 64,
        inputs=inputs or (("source", store_asset),),
        started_at=now,
        finished_at=now,
        worker="test:1",
        device="cpu",
    )


def _key(n: int) -> str:
    return f"{n:064x}"


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.bin"
    path.write_bytes(b"not really a video, but bytes are bytes" * 1000)
    return path


def test_same_bytes_under_another_name_are_the_same_asset(store: Store, clip: Path, tmp_path: Path) -> None:
    asset, new = store.register_asset(clip, name="a/clip.mp4")
    assert new and asset.id == hash_file(clip) and asset.size == clip.stat().st_size
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(clip.read_bytes())
    again, new_again = store.register_asset(copy, name="b/renamed.mp4")
    assert (again.id, new_again) == (asset.id, False)
    assert again.names == ("a/clip.mp4", "b/renamed.mp4")
    assert list(store.blobs.iter_keys()) == [asset.blob_key]
    assert store.source(asset.id).path.read_bytes() == clip.read_bytes()


def test_values_round_trip_with_lineage_for_each_payload_kind(store: Store, clip: Path, tmp_path: Path) -> None:
    asset, _ = store.register_asset(clip, name="clip")
    table = ShotTable.from_frames(24.0, [(0, 24), (24, 100)])
    media_file = tmp_path / "mediamesh-encode-x" / "encode.mp4"
    media_file.parent.mkdir()
    media_file.write_bytes(b"mp4 bytes")
    media = EncodedMedia(media_file, 640, 360, 24.0, 100, 4.1667, False, None)
    array = np.arange(12, dtype=np.float32).reshape(3, 4)

    enc = store.put_value(_new(asset.id, _key(1), "encode"), media)
    shots = store.put_value(_new(asset.id, _key(2), "shots", (("encode", _key(1)),)), table)
    emb = store.put_value(_new(asset.id, _key(3), "emb", (("shots", _key(2)), ("encode", _key(1)))), array)

    assert store.load(shots, ShotTable) == table
    loaded_media = store.load(enc, EncodedMedia)
    assert loaded_media.path.read_bytes() == b"mp4 bytes" and loaded_media.width == 640
    loaded = store.load(emb, np.ndarray)
    assert np.array_equal(loaded, array) and loaded.dtype == np.float32 and not loaded.flags.writeable
    assert (emb.shape, emb.dtype, emb.payload_kind) == ([3, 4], "float32", "array")
    assert store.lineage(emb.key) == [("shots", _key(2)), ("encode", _key(1))]
    assert store.stored_keys([_key(1), _key(2), _key(3), _key(4)]) == {_key(1), _key(2), _key(3)}
    assert [v.key for v in store.values_for(asset.id, "shots")] == [_key(2)]


def test_values_cannot_be_updated_deleted_or_truncated(store: Store, clip: Path, owner_database_url: str) -> None:
    asset, _ = store.register_asset(clip, name="clip")
    store.put_value(_new(asset.id, _key(7)), ShotTable.from_frames(24.0, [(0, 10)]))
    # Even the role that owns the tables (the application role lacks the privileges: test_privileges.py).
    owner = create_engine(owner_database_url)
    for statement in (
        "UPDATE feature_values SET version = '2'",
        "DELETE FROM feature_values",
        "TRUNCATE feature_values CASCADE",
        "DELETE FROM lineage",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="values are immutable"), owner.begin() as conn:
            conn.execute(sa.text(statement))
    owner.dispose()
    record = store.value(_key(7))
    assert record is not None and record.version == "1"


def test_writing_the_same_key_twice_keeps_the_first_value(store: Store, clip: Path) -> None:
    asset, _ = store.register_asset(clip, name="clip")
    first = store.put_value(_new(asset.id, _key(8)), ShotTable.from_frames(24.0, [(0, 10)]))
    second = store.put_value(_new(asset.id, _key(8)), ShotTable.from_frames(24.0, [(0, 5), (5, 10)]))
    assert second.checksum == first.checksum
    assert len(store.load(second, ShotTable)) == 1


def test_failed_attempts_are_kept_apart_from_values(store: Store, clip: Path) -> None:
    asset, _ = store.register_asset(clip, name="clip")
    store.record_attempt(
        value_key=_key(9),
        asset_id=asset.id,
        feature="encode",
        version="1",
        error=ValueError("boom"),
        worker="w",
        started_at=datetime.now(UTC),
    )
    assert store.stored_keys([_key(9)]) == set()
    [attempt] = store.attempts_for(asset.id)
    assert (attempt.error_type, attempt.message, attempt.retryable) == ("ValueError", "boom", False)


def test_resolve_asset_by_id_prefix_and_name_and_a_local_file_only_when_asked(
    store: Store, clip: Path, tmp_path: Path
) -> None:
    asset, _ = store.register_asset(clip, name="/data/clip.mp4")
    assert store.resolve_asset(asset.id) == asset.id
    assert store.resolve_asset(asset.id[:8].upper()) == asset.id
    assert store.resolve_asset("/data/clip.mp4") == asset.id
    # A path is only a name unless the caller opts in to hashing its own files (the CLI does, the API never).
    with pytest.raises(AssetNotFoundError, match=r"no asset matches '.*clip.bin' \(give an asset id"):
        store.resolve_asset(str(clip))
    assert store.resolve_local_asset(str(clip)) == asset.id
    assert store.resolve_local_asset("/data/clip.mp4") == asset.id
    other = tmp_path / "other.bin"
    other.write_bytes(b"other")
    with pytest.raises(AssetNotFoundError, match=r"the bytes of '.*other.bin' were never ingested"):
        store.resolve_local_asset(str(other))
    with pytest.raises(AssetNotFoundError, match=r"no asset matches 'a\\x00b'"):
        store.resolve_asset("a\x00b")
    with pytest.raises(AssetNotFoundError, match="no asset matches 'nothing-like-this'"):
        store.resolve_asset("nothing-like-this")
    with store.engine.begin() as conn:  # two assets whose ids share a prefix
        for twin in ("abcd" + "1" * 60, "abcd" + "2" * 60):
            conn.execute(sa.text("INSERT INTO assets (id, size, blob_key) VALUES (:i, 0, 'none')"), {"i": twin})
    with pytest.raises(AmbiguousAssetError, match="asset prefix 'abcd' matches several assets"):
        store.resolve_asset("abcd")
    assert store.resolve_asset("abcd1") == "abcd" + "1" * 60


def test_resolve_asset_tries_the_id_then_a_name_then_a_prefix_of_any_length_and_a_file_last(
    store: Store, clip: Path, tmp_path: Path
) -> None:
    asset, _ = store.register_asset(clip, name="/data/clip.mp4")
    other = next(c for c in "0123456789abcdef" if c != asset.id[0])
    twins = [other + "1" * 63, other + "2" * 63]
    with store.engine.begin() as conn:
        for twin in twins:
            conn.execute(sa.text("INSERT INTO assets (id, size, blob_key) VALUES (:i, 0, 'none')"), {"i": twin})
        # A name that is also the prefix of another asset's id.
        conn.execute(
            sa.text("INSERT INTO aliases (asset_id, name) VALUES (:a, :n)"), {"a": asset.id, "n": twins[0][:8]}
        )
    assert store.resolve_asset(asset.id[0]) == asset.id  # one character is enough where it is unique
    assert store.resolve_asset(asset.id[0].upper()) == asset.id
    with pytest.raises(AmbiguousAssetError, match=rf"^asset prefix '{other}' matches several assets; give more"):
        store.resolve_asset(other)
    assert store.resolve_asset(twins[1]) == twins[1]
    assert store.resolve_asset(twins[0][:8]) == asset.id  # a name before a prefix
    assert store.resolve_asset(twins[0][:9]) == twins[0]
    with pytest.raises(AssetNotFoundError, match="no asset matches 'g'"):
        store.resolve_asset("g")  # not hex: never a prefix
    with pytest.raises(AssetNotFoundError, match="no asset matches ''"):
        store.resolve_asset("")
    # A file's bytes come last: a path recorded as a name (an earlier cut) is that name's asset.
    recut = tmp_path / "recut.mp4"
    recut.write_bytes(b"the director's cut")
    new, _ = store.register_asset(recut, name="recut")
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO aliases (asset_id, name) VALUES (:a, :n)"), {"a": asset.id, "n": str(recut)})
    assert store.resolve_local_asset(str(recut)) == asset.id
    assert store.resolve_local_asset(f"{tmp_path}/./recut.mp4") == new.id  # no name: the bytes


def test_a_second_claim_waits_for_the_first(store: Store, clip: Path) -> None:
    asset, _ = store.register_asset(clip, name="clip")
    order: list[str] = []
    first_in = threading.Event()

    def holder() -> None:
        with store.claim(_key(5), asset_id=asset.id, feature="f", version="1", worker="first") as claim:
            order.append(f"first in, stored: {claim.stored}")
            first_in.set()
            time.sleep(0.5)
            store.put_value(_new(asset.id, _key(5), "f"), np.zeros(3, np.float32))
            order.append("first out")

    thread = threading.Thread(target=holder)
    thread.start()
    first_in.wait(10)
    assert [c["worker"] for c in store.live_claims(asset.id)] == ["first"]
    with store.claim(_key(5), asset_id=asset.id, feature="f", version="1", worker="second") as claim:
        order.append(f"second in, stored: {claim.stored}")  # what the first stored while the second waited
    thread.join()
    assert order == ["first in, stored: False", "first out", "second in, stored: True"]
    assert store.live_claims(asset.id) == []


def test_a_dead_claimant_releases_its_claim_at_once(store: Store, clip: Path) -> None:
    asset, _ = store.register_asset(clip, name="clip")
    url = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    lock = int.from_bytes(bytes.fromhex(_key(6)[:16]), "big", signed=True)
    dead = psycopg.connect(url, autocommit=True)
    dead.execute("SELECT pg_advisory_lock(%s)", (lock,))
    dead.execute(
        "INSERT INTO claims (value_key, asset_id, feature, version, worker) VALUES (%s, %s, 'f', '1', 'dead')",
        (_key(6), asset.id),
    )
    dead.close()  # the worker dies: its session ends, and the server drops its lock as the backend exits
    deadline = time.monotonic() + 5
    while store.live_claims(asset.id) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.live_claims(asset.id) == []
    with store.claim(_key(6), asset_id=asset.id, feature="f", version="1", worker="taker"):
        assert [c["worker"] for c in store.live_claims(asset.id)] == ["taker"]


def test_gc_sweeps_orphan_blobs_only_and_waits_for_work_in_progress(store: Store, clip: Path) -> None:
    asset, _ = store.register_asset(clip, name="clip")
    kept = store.put_value(_new(asset.id, _key(10)), ShotTable.from_frames(24.0, [(0, 3)]))
    orphan = store.blobs.put_bytes(b"written, then the process died before its row")
    assert store.gc(dry_run=True) == [orphan.key]
    assert store.blobs.exists(orphan.key)
    with (
        store.claim(_key(11), asset_id=asset.id, feature="f", version="1", worker="busy"),
        pytest.raises(GarbageCollectionBusyError, match="work is in progress"),
    ):
        store.gc()
    assert store.gc() == [orphan.key]
    assert not store.blobs.exists(orphan.key)
    assert store.blobs.exists(kept.blob_key) and store.blobs.exists(asset.blob_key)


def test_migrations_are_idempotent_and_recorded(store: Store, owner_database_url: str) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(migrate.__code__.co_filename).parent / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    owner = create_engine(owner_database_url)
    migrate(owner, app_role=APP_ROLE)  # the fixture's database is migrated already
    owner.dispose()
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == head
        tables = set(sa.inspect(conn).get_table_names())
    assert {"assets", "aliases", "feature_values", "lineage", "attempts", "claims", "runs", "attachments"} <= tables


def test_feature_fingerprints_are_recorded_once(store: Store) -> None:
    store.record_features([("shots", "1", "a" * 64, "cpu"), ("encode", "1", "b" * 64, "cpu")])
    store.record_features([("shots", "1", "a" * 64, "cpu"), ("shots", "1", "c" * 64, "cpu")])
    assert store.recorded_fingerprints() == {("shots", "1"): {"a" * 64, "c" * 64}, ("encode", "1"): {"b" * 64}}


def test_attachments_keep_one_current_file_per_language(store: Store, clip: Path, tmp_path: Path) -> None:
    asset, _ = store.register_asset(clip, name="clip")
    english = tmp_path / "clip.en.srt"
    english.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n")
    german = tmp_path / "clip.de.srt"
    german.write_text("1\n00:00:01,000 --> 00:00:02,000\nHallo\n")
    store.attach(asset.id, "subtitles", english, name=english.name, language="en")
    store.attach(asset.id, "subtitles", german, name=german.name, language="de")
    current = store.attachments([asset.id], "subtitles")[asset.id]
    assert [(a.language, a.name) for a in current] == [("de", "clip.de.srt"), ("en", "clip.en.srt")]

    english.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello again\n")  # a corrected file replaces it
    store.attach(asset.id, "subtitles", english, name=english.name, language="en")
    again = store.attach(asset.id, "subtitles", english, name=english.name, language="en")  # no-op
    current = store.attachments([asset.id], "subtitles")[asset.id]
    assert [a.sha256 for a in current if a.language == "en"] == [again.sha256]
    assert again.sha256 == hash_file(english)

    tracks = store.subtitles(asset.id).tracks
    assert [(t.language, t.path.read_text()) for t in tracks] == [
        ("de", german.read_text()),
        ("en", english.read_text()),
    ]
    assert store.attachments([asset.id, "0" * 64], "subtitles").get("0" * 64) is None
    assert store.subtitles("0" * 64).tracks == ()


def test_artefacts_are_stored_by_content_and_promotion_switches_at_once(store: Store) -> None:
    from mediamesh.store import ArtefactNotFoundError

    assert store.promoted("mediafm") is None
    assert store.mediafm_checkpoint().path is None
    first = store.put_artefact("mediafm", b"checkpoint one", {"config": "small"})
    again = store.put_artefact("mediafm", b"checkpoint one", {"config": "other"})
    assert again.id == first.id
    assert again.meta == {"config": "small"}
    second = store.put_artefact("mediafm", b"checkpoint two", {"config": "small"})
    assert [a.id for a in store.artefacts("mediafm")] == [second.id, first.id]
    store.promote("mediafm", first.id[:10])
    assert store.promoted("mediafm") == first
    store.promote("mediafm", second.id)
    checkpoint = store.mediafm_checkpoint()
    assert (checkpoint.sha256, checkpoint.path.read_bytes() if checkpoint.path else None) == (
        second.id,
        b"checkpoint two",
    )
    store.promote("mediafm", first.id)  # rolling back is another promotion
    assert store.promoted("mediafm") == first
    with pytest.raises(ArtefactNotFoundError, match="no artefact 'ffff'"):
        store.promote("mediafm", "ffff")
    other = store.put_artefact("probe", b"a probe", {})
    with pytest.raises(ArtefactNotFoundError, match="is a 'probe', not a 'mediafm'"):
        store.promote("mediafm", other.id)


def test_feature_promotion_needs_a_stored_version_and_its_history_is_append_only(
    local_store: Store, clip: Path, owner_database_url: str
) -> None:
    from mediamesh.store import ValueNotFoundError

    asset, _ = local_store.register_asset(clip, name="clip")
    assert local_store.promoted_version("shots") is None
    with pytest.raises(ValueNotFoundError, match=r"no asset has a stored shots@1; compute it before promoting it"):
        local_store.promote_feature("shots", "1")
    table = ShotTable.from_frames(24.0, [(0, 10)])
    local_store.put_value(_new(asset.id, _key(11)), table)
    local_store.put_value(dataclasses.replace(_new(asset.id, _key(12)), version="2"), table)
    local_store.promote_feature("shots", "2")
    assert local_store.promoted_version("shots") == "2"
    local_store.promote_feature("shots", "1")  # rolling back is another promotion
    assert (local_store.promoted_version("shots"), local_store.promoted_version("encode")) == ("1", None)
    assert local_store.version_coverage("shots", "2") == (1, 1)
    assert local_store.version_coverage("shots", "3") == (0, 1)
    owner = create_engine(owner_database_url)
    for statement in (
        "UPDATE feature_promotions SET version = '2'",
        "DELETE FROM feature_promotions",
        "TRUNCATE feature_promotions",
    ):
        with (
            pytest.raises(sa.exc.DBAPIError, match="on feature_promotions is not allowed"),
            owner.begin() as conn,
        ):
            conn.execute(sa.text(statement))
    owner.dispose()
    assert local_store.promoted_version("shots") == "1"
