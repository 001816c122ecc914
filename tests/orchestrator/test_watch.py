"""``mediamesh watch`` over a landing prefix on real S3 (SeaweedFS): what events missed is registered and handed on."""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mediamesh.features.errors import MediameshError
from mediamesh.features.registry import Registry
from mediamesh.orchestrator.execution.dispatch import LocalRuns
from mediamesh.orchestrator.interfaces.cli import app
from mediamesh.orchestrator.interfaces.watch import Watcher, parse_source
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import Store, StoreSettings, open_store
from mediamesh.store.landing import LandingReader
from tests.orchestrator.resources import counting_features as cf
from tests.services import S3Endpoint


@pytest.fixture
def s3_settings(seaweed: S3Endpoint, database_url: str, tmp_path: Path) -> StoreSettings:
    return StoreSettings(
        home=tmp_path / "home",
        database_url=database_url,
        s3_endpoint=seaweed.endpoint,
        s3_access_key=seaweed.access_key,
        s3_secret_key=seaweed.secret_key,
    )


def test_a_pass_registers_new_and_changed_objects_and_hands_on_their_assets(
    s3_settings: StoreSettings, seaweed: S3Endpoint, tmp_path: Path
) -> None:
    bucket = f"landing-{uuid.uuid4().hex[:12]}"
    s3 = seaweed.client()
    s3.make_bucket(bucket)

    def put(key: str, data: bytes) -> str:
        s3.put_object(bucket, key, io.BytesIO(data), len(data))
        return hashlib.sha256(data).hexdigest()

    known = put("in/known.mp4", b"announced by an event earlier")
    missed = put("in/missed.mp4", b"an event that never came")
    put("elsewhere/other.mp4", b"outside the prefix")
    with open_store(s3_settings) as store:
        store.register_asset(_file(tmp_path, b"announced by an event earlier"), name=f"s3://{bucket}/in/known.mp4")
        mesh = Mesh(store, Registry([cf.size]), home=tmp_path)
        watcher = Watcher(mesh, f"s3://{bucket}/in/", LocalRuns(), landing=LandingReader(s3_settings))

        first = watcher.reconcile()
        assert (first.listed, first.registered, first.errors) == (2, [f"s3://{bucket}/in/missed.mp4"], [])
        assert sorted(first.dispatched) == sorted([known, missed])  # both lacked their size

        second = watcher.reconcile()
        assert (second.registered, second.dispatched) == ([], [])  # nothing changed, nothing lacking

        changed = put("in/known.mp4", b"the same name, re-exported")
        third = watcher.reconcile()
        assert third.registered == [f"s3://{bucket}/in/known.mp4"]
        assert third.dispatched == [changed]
        assert _names(store, changed) == [f"s3://{bucket}/in/known.mp4"]


def test_sources_that_are_neither_a_bucket_nor_a_directory_are_refused(tmp_path: Path) -> None:
    assert parse_source("s3://landing/shows/") == ("landing", "shows/")
    assert parse_source(str(tmp_path)) == tmp_path.resolve()
    with pytest.raises(MediameshError, match="names no bucket"):
        parse_source("s3:///x")
    with pytest.raises(MediameshError, match="neither"):
        parse_source(str(tmp_path / "missing"))


def test_watch_once_on_a_directory_computes_what_it_finds(
    database_url: str, tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"first file")
    (folder / "a.en.srt").write_bytes(b"1\n00:00:00,000 --> 00:00:01,000\nhi\n")  # a sidecar, not an asset
    monkeypatch.setenv("MEDIAMESH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDIAMESH_DATABASE_URL", database_url)
    monkeypatch.setenv("MEDIAMESH_FEATURES", "tests.orchestrator.resources.counting_features")
    monkeypatch.delenv("MEDIAMESH_EXECUTION", raising=False)
    result = CliRunner().invoke(app, ["watch", str(folder), "--once"])
    assert result.exit_code == 0, result.output
    assert "1 object(s), 1 new, 1 asset(s) handed on, 0 error(s)" in result.output
    with open_store(StoreSettings()) as store:
        [asset] = store.assets()
        assert {r.feature for r in store.values_for(asset.id)} >= {"size", "doubled"}
        assert len(store.subtitles(asset.id).tracks) == 1


def _file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / f"{uuid.uuid4().hex}.bin"
    path.write_bytes(data)
    return path


def _names(store: Store, asset: str) -> list[str]:
    return list(store.asset(asset).names)
