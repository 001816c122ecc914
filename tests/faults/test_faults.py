"""The fault suite: kills, backend outages, corruption and gc racing with work, each on the real CLI.

Every scenario ends the same way: each value is present exactly once with a good checksum (``mediamesh
verify``), ``gc`` leaves no orphan, and no output holds a traceback. ``MEDIAMESH_FAULT`` (``store/faults.py``)
places a kill or a pause at an exact point of a value's write: before its blob, between blob and row, after
the row.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mediamesh.store import Store, StoreSettings, open_store
from mediamesh.store.faults import AFTER_BLOB, AFTER_ROW, BEFORE_BLOB, BEFORE_INDEX
from tests.services import seaweed_s3

DATA = Path(__file__).parents[1] / "data"
MEDIAMESH = str(Path(sys.executable).parent / "mediamesh")
CLIP = "counter.mp4"  # three seconds, no audio: the quickest full pipeline


@pytest.fixture
def env(database_url: str, tmp_path: Path, prefect_api: str) -> dict[str, str]:
    return {
        **os.environ,
        "MEDIAMESH_HOME": str(tmp_path / "home"),
        "MEDIAMESH_DATABASE_URL": database_url,
        "PREFECT_API_URL": prefect_api,
        "COLUMNS": "200",
        "MEDIAMESH_ENCODERS": "lite",
        "MEDIAMESH_DEVICE": "cpu",
        "MEDIAMESH_CONFIG": str(tmp_path / "no-config.toml"),
    }


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "in" / CLIP
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / CLIP, path)
    return path


def mediamesh(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [MEDIAMESH, *args], env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


@contextlib.contextmanager
def paused_ingest(env: dict[str, str], clip: Path, point: str, feature: str, folder: Path) -> Iterator[Any]:
    """An ``ingest --json`` held at ``point`` of ``feature``'s value until the body ends; yields a result box."""
    proc = subprocess.Popen(
        [MEDIAMESH, "ingest", str(clip), "--json"],
        env={**env, "MEDIAMESH_FAULT": f"{point}:{feature}:pause:{folder}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    box: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 240
        while not (folder / "paused").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the ingest never reached the fault point"
            time.sleep(0.05)
        yield box
    finally:
        (folder / "resume").touch()
        try:
            stdout, stderr = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "Traceback" not in stdout + stderr, stderr
    box.update(returncode=proc.returncode, stdout=stdout, stderr=stderr)


def assert_intact(env: dict[str, str], store: Store) -> None:
    """Each value once, every blob good, no orphan left after gc, no claim held."""
    with store.engine.connect() as conn:
        counts = conn.execute(
            sa.text("SELECT asset_id, feature, version, count(*) FROM feature_values GROUP BY 1, 2, 3")
        ).all()
    assert counts, "nothing was stored"
    assert all(n == 1 for *_, n in counts), counts
    assert mediamesh(env, "gc").returncode == 0
    assert store.gc(dry_run=True) == []
    report = json.loads(mediamesh(env, "verify", "--json").stdout)
    assert (report["missing"], report["corrupt"]) == ([], [])
    assert report["checked"] >= len(counts)
    assert store.live_claims() == []


def _ingest_ok(env: dict[str, str], clip: Path) -> dict[str, Any]:
    rerun = mediamesh(env, "ingest", str(clip), "--json")
    assert rerun.returncode == 0, rerun.stderr
    [entry] = json.loads(rerun.stdout)
    assert entry["errors"] == [] and entry["failed"] == 0
    return dict(entry)


@pytest.fixture
def store(env: dict[str, str]) -> Iterator[Store]:
    settings = StoreSettings(home=Path(env["MEDIAMESH_HOME"]), database_url=env["MEDIAMESH_DATABASE_URL"])
    with open_store(settings) as opened:
        yield opened


def test_sigkill_mid_value_at_each_point_then_rerun(env: dict[str, str], store: Store, clip: Path) -> None:
    # One title killed four times, each kill at another point of another value's write, then a rerun. Between a
    # value's row and its search-index rows, the open transaction dies with the process: neither is stored.
    kills = [(BEFORE_BLOB, "encode"), (AFTER_BLOB, "shots"), (AFTER_ROW, "dedup"), (BEFORE_INDEX, "video_embedding")]
    for point, feature in kills:
        before = set(_values(store))
        killed = subprocess.run(
            [MEDIAMESH, "ingest", str(clip), "--json"],
            env={**env, "MEDIAMESH_FAULT": f"{point}:{feature}:kill"},
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        stored = set(_values(store))
        # Killed before the row: the value is not stored; after the row: it is, and nothing half-written is.
        assert (feature in stored) == (point == AFTER_ROW), (point, feature, stored)
        assert before <= stored
        assert "Traceback" not in killed.stderr

    entry = _ingest_ok(env, clip)
    assert entry["computed"] >= 1 and {"encode", "shots", "dedup", "video_embedding"} <= set(_values(store))
    assert_intact(env, store)
    scopes = json.loads(mediamesh(env, "index", "status", "--json").stdout)
    assert scopes and all(s["in_sync"] for s in scopes), scopes
    assert {s["index"] for s in scopes if s["rows"]} >= {"shots", "video", "fused"}
    rebuilt = json.loads(mediamesh(env, "index", "rebuild", "video", "shots", "--json").stdout)
    assert [(r["index"], r["values"]) for r in rebuilt] == [("video", 1), ("shots", 1)]
    assert all(r["dropped"] == r["rows"] > 0 for r in rebuilt), rebuilt
    hits = json.loads(mediamesh(env, "search", "time", "0", "3", "--json").stdout)["hits"]
    assert hits and {h["name"] for h in hits} == {str(clip)} and hits[0]["shot"] == 0


def test_gc_while_a_value_is_between_blob_and_row(
    env: dict[str, str], store: Store, clip: Path, tmp_path: Path
) -> None:
    with paused_ingest(env, clip, AFTER_BLOB, "shots", tmp_path / "fault") as ingest:
        busy = mediamesh(env, "gc")
        assert busy.returncode == 1
        assert busy.stderr.strip().count("\n") == 0
        assert "work is in progress" in busy.stderr
    assert ingest["returncode"] == 0, ingest["stderr"]
    assert_intact(env, store)


def test_database_stopped_mid_run_is_one_line_then_a_rerun_completes(
    env: dict[str, str], clip: Path, tmp_path: Path
) -> None:
    # The embedded default, in its own home, so stopping its server touches no other test.
    home = Path(env["MEDIAMESH_HOME"])
    embedded = {k: v for k, v in env.items() if k != "MEDIAMESH_DATABASE_URL"}
    with paused_ingest(embedded, clip, AFTER_BLOB, "shots", tmp_path / "fault") as ingest:
        _stop_postgres(home / "pgdata")
    assert ingest["returncode"] == 1
    [entry] = json.loads(ingest["stdout"])  # --json output is still printed
    errors = [line for line in ingest["stderr"].splitlines() if line.strip()]
    assert len(errors) == 1, ingest["stderr"]
    assert errors[0].startswith("error: the database (postgresql://")
    assert "is unreachable" in errors[0] and "run again" in errors[0]
    assert entry["errors"] == [errors[0].removeprefix("error: ")]

    _ingest_ok(embedded, clip)  # the embedded server starts again on demand
    settings = StoreSettings(home=home)
    with open_store(settings) as store:
        assert_intact(embedded, store)
    mediamesh(embedded, "stop")


def test_object_store_stopped_mid_run_is_one_line_then_a_rerun_completes(
    env: dict[str, str], clip: Path, tmp_path: Path
) -> None:
    data = tmp_path / "seaweed"
    with contextlib.ExitStack() as stack:
        s3 = stack.enter_context(seaweed_s3(data, buckets=["blobs"]))
        on_s3 = {**env, **_s3_env(s3)}
        with paused_ingest(on_s3, clip, BEFORE_BLOB, "shots", tmp_path / "fault") as ingest:
            stack.close()  # SeaweedFS stops while the value waits to be written
    assert ingest["returncode"] == 1
    [entry] = json.loads(ingest["stdout"])
    errors = [line for line in ingest["stderr"].splitlines() if line.strip()]
    assert len(errors) == 1, ingest["stderr"]
    assert errors[0].startswith("error: the object store (s3://blobs/")
    assert "is unreachable" in errors[0]
    assert entry["errors"] == [errors[0].removeprefix("error: ")]

    with seaweed_s3(data, buckets=["blobs"]) as s3:  # the same data, restarted
        on_s3 = {**env, **_s3_env(s3)}
        _ingest_ok(on_s3, clip)
        settings = StoreSettings(
            home=Path(env["MEDIAMESH_HOME"]),
            database_url=env["MEDIAMESH_DATABASE_URL"],
            object_store=on_s3["MEDIAMESH_OBJECT_STORE"],
            s3_endpoint=s3.endpoint,
            s3_access_key=s3.access_key,
            s3_secret_key=s3.secret_key,
        )
        with open_store(settings) as store:
            assert_intact(on_s3, store)


def test_a_corrupted_blob_is_found_named_and_never_served(env: dict[str, str], store: Store, clip: Path) -> None:
    asset = _ingest_ok(env, clip)["asset"]
    [shots] = store.values_for(asset, "shots")
    path = store.blobs.local_path(shots.blob_key)
    original = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(original.replace(b"0", b"1", 1) if b"0" in original else original[::-1])

    read = mediamesh(env, "read", asset, "shots", "--json")
    assert read.returncode == 1
    assert read.stdout == ""
    [line] = read.stderr.strip().splitlines()
    assert shots.blob_key in line and "mediamesh verify" in line
    report = json.loads(mediamesh(env, "verify", "--json").stdout)
    assert report["missing"] == []
    [bad] = report["corrupt"]
    assert bad["blob"] == shots.blob_key and shots.key in bad["values"] and bad["assets"] == [asset]
    assert mediamesh(env, "verify").returncode == 1
    assert mediamesh(env, "gc").returncode == 0
    assert store.blobs.exists(shots.blob_key), "gc must keep a referenced blob, corrupt or not"

    path.write_bytes(original)  # restored from a backup: everything reads and verifies again
    assert mediamesh(env, "read", asset, "shots", "--json").returncode == 0
    assert_intact(env, store)


def _values(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT feature FROM feature_values ORDER BY feature")).scalars())


def _s3_env(s3: Any) -> dict[str, str]:
    return {
        "MEDIAMESH_OBJECT_STORE": "s3://blobs/mesh",
        "MEDIAMESH_S3_ENDPOINT": s3.endpoint,
        "MEDIAMESH_S3_ACCESS_KEY": s3.access_key,
        "MEDIAMESH_S3_SECRET_KEY": s3.secret_key,
    }


def _stop_postgres(pgdata: Path) -> None:
    """A fast shutdown (SIGINT to the postmaster, as ``pg_ctl stop -m fast`` sends), waited for."""
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), "postgres did not stop"
