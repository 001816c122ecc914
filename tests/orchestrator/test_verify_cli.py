"""``mediamesh verify``, ``gc --json`` and reads of damaged values, run as a user runs them: a subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mediamesh.features import EncodedMedia, ShotTable, default_registry
from mediamesh.store import NewValue, Store, StoreSettings, ValueRecord, open_store

DATA = Path(__file__).parents[1] / "data"
MEDIAMESH = str(Path(sys.executable).parent / "mediamesh")
REGISTRY = default_registry()


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """A user's environment on a fresh database and home; nothing here starts Prefect."""
    return {
        **os.environ,
        "MEDIAMESH_HOME": str(tmp_path / "home"),
        "MEDIAMESH_DATABASE_URL": database_url,
        "MEDIAMESH_CONFIG": str(tmp_path / "no-config.toml"),
        "MEDIAMESH_ENCODERS": "lite",
        "MEDIAMESH_DEVICE": "cpu",
        "COLUMNS": "200",
    }


@pytest.fixture
def store(env: dict[str, str]) -> Iterator[Store]:
    settings = StoreSettings(home=Path(env["MEDIAMESH_HOME"]), database_url=env["MEDIAMESH_DATABASE_URL"])
    with open_store(settings) as opened:
        yield opened


def mediamesh(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [MEDIAMESH, *args], env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def put_test_value(store: Store, asset: str, feature: str, value: object) -> ValueRecord:
    now = datetime.now(UTC)
    new = NewValue(
        key=f"{feature}-{asset}".encode().hex()[:64].ljust(64, "0"),
        asset_id=asset,
        feature=feature,
        version=REGISTRY[feature].version,
        params={},
        model_fingerprint=None,
        code_fingerprint="f" * 64,
        inputs=(("source", asset),),
        started_at=now,
        finished_at=now,
        worker="test:1",
        device="cpu",
    )
    return store.put_value(new, value)


def _rewrite(store: Store, key: str, old: bytes, new: bytes) -> None:
    """Edit a local blob in place, keeping its size (blobs are written read-only)."""
    path = store.blobs.local_path(key)
    data = path.read_bytes()
    assert len(old) == len(new) and data.count(old) == 1
    path.chmod(0o644)
    path.write_bytes(data.replace(old, new))


def test_read_of_an_edited_value_fails_in_one_line_and_verify_names_it(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    asset, _ = store.register_asset(DATA / "counter.mp4", name="counter.mp4")
    shots = put_test_value(store, asset.id, "shots", ShotTable.from_frames(24.0, [(0, 24), (24, 48)]))
    media_file = tmp_path / "encode.mp4"
    media_file.write_bytes(b"standardized media bytes " * 4000 + b"the end")
    encode = put_test_value(store, asset.id, "encode", EncodedMedia(media_file, 640, 360, 24.0, 100, 4.2, False, None))
    assert json.loads(mediamesh(env, "read", asset.id, "shots", "--json").stdout)[1]["end_frame"] == 48

    clean = mediamesh(env, "verify", "--json")
    assert clean.returncode == 0, clean.stderr
    size = asset.size + shots.bytes + encode.bytes
    assert json.loads(clean.stdout) == {"checked": 3, "bytes": size, "missing": [], "corrupt": []}

    _rewrite(store, shots.blob_key, b'"end_frame":48', b'"end_frame":49')
    read = mediamesh(env, "read", asset.id, "shots", "--json")
    assert (read.returncode, read.stdout) == (1, "")
    [line] = read.stderr.splitlines()
    assert re.fullmatch(
        rf"error: the stored value shots@\d+ {shots.key[:12]} of asset {asset.id[:12]} is corrupt: blob "
        rf"{shots.blob_key} does not match the xxh3 its row recorded \([0-9a-f]{{16}}\); "
        r"run `mediamesh verify` to find every damaged blob",
        line,
    ), line

    found = mediamesh(env, "verify", "--json")
    assert found.returncode == 1
    assert json.loads(found.stdout) == {
        "checked": 3,
        "bytes": size,
        "missing": [],
        "corrupt": [{"blob": shots.blob_key, "values": [shots.key], "assets": [asset.id]}],
    }

    # A media file copied out whole is hashed on the way; a damaged one leaves no file behind.
    out = tmp_path / "encode-out.mp4"
    assert mediamesh(env, "read", asset.id, "encode", "--out", str(out)).returncode == 0
    assert out.read_bytes() == media_file.read_bytes()
    out.unlink()
    _rewrite(store, encode.blob_key, b"the end", b"THE END")
    copied = mediamesh(env, "read", asset.id, "encode", "--out", str(out))
    assert copied.returncode == 1 and not out.exists()
    assert copied.stderr.startswith(f"error: the stored value encode@{encode.version} {encode.key[:12]}")

    store.blobs.delete(asset.blob_key)
    text = mediamesh(env, "verify")
    assert text.returncode == 1
    assert f"checked 3 blob(s), {(shots.bytes + encode.bytes) / (1 << 20):.1f} MiB: 1 missing, 2 corrupt" in text.stdout
    assert f"missing {asset.blob_key}: not in file://" in text.stdout
    assert f"corrupt {shots.blob_key}: hashes to SHA-256" in text.stdout
    assert f"  values: {shots.key}\n  assets: {asset.id}" in text.stdout

    sampled = mediamesh(env, "verify", "--sample", "1", "--json")
    report: dict[str, Any] = json.loads(sampled.stdout)
    assert report["checked"] == 1 and len(report["missing"]) + len(report["corrupt"]) == 1
    assert sampled.returncode == 1
    refused = mediamesh(env, "verify", "--sample", "0")
    assert refused.returncode == 2 and "--sample" in refused.stderr


def test_gc_json_lists_what_it_removes_and_keeps_attachments_and_checkpoints(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    asset, _ = store.register_asset(DATA / "counter.mp4", name="counter.mp4")
    subtitles = tmp_path / "counter.en.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:01,000\nOne.\n")
    store.attach(asset.id, "subtitles", subtitles, name=subtitles.name, language="en")
    checkpoint = store.put_artefact("mediafm", b"weights" * 10, {})
    orphan = store.blobs.put_bytes(b"left by a crash between blob and row")

    dry = mediamesh(env, "gc", "--dry-run", "--json")
    assert json.loads(dry.stdout) == {"would_remove": [orphan.key], "count": 1}
    assert store.blobs.exists(orphan.key)
    removed = mediamesh(env, "gc", "--json")
    assert json.loads(removed.stdout) == {"removed": [orphan.key], "count": 1}
    assert mediamesh(env, "gc").stdout.strip() == "removed 0 orphan blob(s)"

    assert not store.blobs.exists(orphan.key)
    assert store.blobs.get_bytes(checkpoint.blob_key) == b"weights" * 10
    assert store.subtitles(asset.id).tracks[0].path.read_text() == subtitles.read_text()
    verified = mediamesh(env, "verify", "--json")
    assert (verified.returncode, json.loads(verified.stdout)["checked"]) == (0, 3)


@pytest.mark.slow
def test_a_home_with_attachments_a_promoted_checkpoint_and_three_titles_verifies_clean_after_gc(
    env: dict[str, str], store: Store, tmp_path: Path, prefect_api: str
) -> None:
    env = {**env, "PREFECT_API_URL": prefect_api}
    clips = []
    for name in ("counter.mp4", "bigbuckbunny.mp4", "issue-195-aspect-ratio.mp4"):
        clips.append(tmp_path / name)
        shutil.copyfile(DATA / name, clips[-1])
    (tmp_path / "counter.en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nOne, two, three.\n")
    (tmp_path / "bigbuckbunny.json").write_text('{"title": "Big Buck Bunny", "synopsis": "A rabbit gets even."}')
    ingested = mediamesh(env, "ingest", *map(str, clips))
    assert ingested.returncode == 0, ingested.stderr
    trained = mediamesh(env, "train", "mediafm", "--steps", "2", "--promote")
    assert trained.returncode == 0, trained.stderr
    orphan = store.blobs.put_bytes(b"left by a crash between blob and row")

    gc = mediamesh(env, "gc", "--json")
    assert json.loads(gc.stdout) == {"removed": [orphan.key], "count": 1}
    verified = mediamesh(env, "verify", "--json")
    report = json.loads(verified.stdout)
    assert verified.returncode == 0, verified.stdout
    assert (report["missing"], report["corrupt"]) == ([], [])
    with store.engine.connect() as conn:
        sources = dict(
            conn.execute(sa.text("SELECT source, count(DISTINCT blob_key) FROM blob_references GROUP BY source")).all()
        )
    assert sources["assets"] == 3 and sources["attachments"] == 2 and sources["artefacts"] == 1
    assert report["checked"] == len(list(store.blobs.iter_keys()))
