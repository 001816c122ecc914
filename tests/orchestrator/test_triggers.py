"""One ingest path: a file on the command line, an S3 event and a watch pass register the same thing, and
each trigger plans once."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mediamesh.features import Registry
from mediamesh.orchestrator.execution.dispatch import LocalRuns
from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.interfaces.cli import app
from mediamesh.orchestrator.interfaces.watch import Watcher
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import Store, StoreSettings, open_store
from mediamesh.store.core import StatementCount
from mediamesh.store.landing import LandingReader
from tests.orchestrator.resources import counting_features as cf
from tests.postgres import fresh_roles_database
from tests.services import S3Endpoint

VIDEO = b"the bytes of a video, as far as registration goes"
SUBTITLES = b"1\n00:00:00,000 --> 00:00:01,000\nhello\n"
TITLE = b'{"title": "Clip", "synopsis": "A clip.", "tags": ["test"]}'
TOKEN = "trigger-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def landing(seaweed: S3Endpoint) -> str:
    bucket = f"landing-{uuid.uuid4().hex[:12]}"
    seaweed.client().make_bucket(bucket)
    return bucket


def _settings(database_url: str, home: Path, seaweed: S3Endpoint) -> StoreSettings:
    return StoreSettings(
        home=home,
        database_url=database_url,
        s3_endpoint=seaweed.endpoint,
        s3_access_key=seaweed.access_key,
        s3_secret_key=seaweed.secret_key,
    )


@contextmanager
def _fresh_store(postgres: str, home: Path, seaweed: S3Endpoint) -> Iterator[tuple[Store, StoreSettings]]:
    with fresh_roles_database(postgres) as roles:
        settings = _settings(roles.app_url, home, seaweed)
        with open_store(settings) as store:
            yield store, settings


def _put(seaweed: S3Endpoint, bucket: str, key: str, data: bytes) -> None:
    seaweed.client().put_object(bucket, key, io.BytesIO(data), len(data))


def _event(bucket: str, *keys: str) -> dict[str, Any]:
    records = [
        {"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": {"key": k}}} for k in keys
    ]
    return {"EventName": "s3:ObjectCreated:Put", "Key": f"{bucket}/{keys[0]}", "Records": records}


def _registered(store: Store) -> tuple[str, list[str], list[tuple[str, str | None, str]], dict[str, Any]]:
    """The one asset, its names, its subtitle files (name, language, sha256) and its title metadata."""
    [asset] = store.assets()
    subtitles = store.attachments([asset.id], "subtitles").get(asset.id, [])
    files = sorted((a.name, a.language or None, a.sha256) for a in subtitles)
    return asset.id, sorted(asset.names), files, store.title_metadata(asset.id).to_json()


def test_a_file_an_s3_event_and_a_watch_pass_register_the_same_asset_and_attachments(
    postgres: str, seaweed: S3Endpoint, landing: str, tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    for name, data in (("clip.mp4", VIDEO), ("clip.en.srt", SUBTITLES), ("clip.json", TITLE)):
        (folder / name).write_bytes(data)
        for prefix in ("event", "watched"):
            _put(seaweed, landing, f"{prefix}/{name}", data)
    registry = Registry([cf.size])
    seen = {}

    with _fresh_store(postgres, tmp_path / "cli", seaweed) as (store, settings):
        monkeypatch.setenv("MEDIAMESH_HOME", str(settings.home))
        monkeypatch.setenv("MEDIAMESH_DATABASE_URL", str(settings.database_url))
        monkeypatch.setenv("MEDIAMESH_FEATURES", "tests.orchestrator.resources.service_features")
        result = CliRunner().invoke(app, ["ingest", str(folder / "clip.mp4"), "--json"])
        assert result.exit_code == 0, result.output
        seen["cli"] = _registered(store)

    with _fresh_store(postgres, tmp_path / "event", seaweed) as (store, settings):
        mesh = Mesh(store, registry, home=settings.home)
        api = ApiSettings(token=TOKEN, landing_buckets=[landing])
        with TestClient(create_app(lambda: mesh, api, store_settings=settings)) as client:
            answer = client.post("/events/s3", json=_event(landing, "event/clip.mp4"), headers=AUTH)
            assert answer.status_code == 202, answer.text
        seen["event"] = _registered(store)

    with _fresh_store(postgres, tmp_path / "watch", seaweed) as (store, settings):
        mesh = Mesh(store, registry, home=settings.home)
        watcher = Watcher(mesh, f"s3://{landing}/watched/", LocalRuns(), landing=LandingReader(settings))
        done = watcher.reconcile()
        assert (done.listed, done.registered, done.errors) == (1, [f"s3://{landing}/watched/clip.mp4"], [])
        seen["watch"] = _registered(store)

    asset = hashlib.sha256(VIDEO).hexdigest()
    files = [("clip.en.srt", "en", hashlib.sha256(SUBTITLES).hexdigest())]
    title = {"title": "Clip", "synopsis": "A clip.", "tags": ["test"]}
    assert seen == {
        "cli": (asset, [str(folder / "clip.mp4")], files, title),
        "event": (asset, [f"s3://{landing}/event/clip.mp4"], files, title),
        "watch": (asset, [f"s3://{landing}/watched/clip.mp4"], files, title),
    }


def test_a_sidecar_that_lands_after_its_video_attaches_on_its_own_event(
    postgres: str, seaweed: S3Endpoint, landing: str, tmp_path: Path, prefect_api: str
) -> None:
    _put(seaweed, landing, "late/clip.mp4", VIDEO)
    _put(seaweed, landing, "late/solo.en.srt", SUBTITLES)
    asset = hashlib.sha256(VIDEO).hexdigest()
    with _fresh_store(postgres, tmp_path / "home", seaweed) as (store, settings):
        mesh = Mesh(store, Registry([cf.size, cf.subtitle_files]), home=settings.home)
        api = ApiSettings(token=TOKEN, landing_buckets=[landing])
        with TestClient(create_app(lambda: mesh, api, store_settings=settings)) as client:
            first = client.post("/events/s3", json=_event(landing, "late/clip.mp4"), headers=AUTH)
            assert first.status_code == 202, first.text
            alone = client.post("/events/s3", json=_event(landing, "late/solo.en.srt"), headers=AUTH)
            [waiting] = alone.json()["results"]
            assert (waiting["status"], waiting["asset"]) == ("ignored", None)
            assert "video is not registered yet" in waiting["detail"]

            _put(seaweed, landing, "late/clip.en.srt", SUBTITLES)
            answer = client.post("/events/s3", json=_event(landing, "late/clip.en.srt"), headers=AUTH)
            assert answer.status_code == 202, answer.text
            [attached] = answer.json()["results"]
            assert (attached["asset"], attached["status"]) == (asset, "registered")
            assert attached["missing"] >= 1  # subtitle_files of the new subtitles (and size, if not done yet)
        # The client's exit waited for the queued runs: the subtitles made a new subtitle_files value.
        assert [(a.name, a.language) for a in store.attachments([asset], "subtitles")[asset]] == [("clip.en.srt", "en")]
        assert mesh.read(asset, "subtitle_files")[1].value == 1
        assert [a.id for a in store.assets()] == [asset]  # a sidecar is never an asset of its own


def _planning_queries(counted: StatementCount, since: int) -> int:
    """Statements since ``since`` that ask which of several value keys are stored: what a plan asks once
    (a task's re-check under its claim asks for its one key)."""
    asked = [params for sql, params in counted.statements[since:] if "FROM feature_values WHERE key = ANY" in sql]
    return sum(1 for params in asked if "," in str(params.get("keys", "")))


def test_each_trigger_plans_once(
    postgres: str, seaweed: S3Endpoint, landing: str, tmp_path: Path, prefect_api: str
) -> None:
    _put(seaweed, landing, "counted/clip.mp4", VIDEO)
    with _fresh_store(postgres, tmp_path / "home", seaweed) as (store, settings):
        mesh = Mesh(store, Registry([cf.size, cf.doubled]), home=settings.home)
        with store.counting_statements() as counted:
            api = ApiSettings(token=TOKEN, landing_buckets=[landing])
            with TestClient(create_app(lambda: mesh, api, store_settings=settings)) as client:
                answer = client.post("/events/s3", json=_event(landing, "counted/clip.mp4"), headers=AUTH)
                assert answer.status_code == 202, answer.text
            assert _planning_queries(counted, 0) == 1
            mark = counted.count

            clip = tmp_path / "clip.mp4"
            clip.write_bytes(b"another video")
            [result] = mesh.ingest([clip])
            assert result.computed == 2
            assert _planning_queries(counted, mark) == 1
            mark = counted.count

            watcher = Watcher(mesh, f"s3://{landing}/counted/", LocalRuns(), landing=LandingReader(settings))
            assert watcher.reconcile().dispatched == []
            assert _planning_queries(counted, mark) == 1
