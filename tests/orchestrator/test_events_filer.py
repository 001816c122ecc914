"""SeaweedFS filer webhook events, read like S3 records; and the API endpoint that takes them."""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mediamesh.features.registry import Registry
from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.interfaces.events import FilerEvent, filer_announcements
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import StoreSettings, open_store
from tests.orchestrator.resources import counting_features as cf
from tests.services import S3Endpoint

TOKEN = "filer-token"


def _filer(key: str, event_type: str = "create", directory: bool = False) -> dict[str, Any]:
    """A filer event as weed 4.48 posts it (trimmed of fields mediamesh does not read)."""
    name = key.rsplit("/", 1)[-1]
    entry = {"name": name, "is_directory": directory, "attributes": {"file_size": 5}}
    return {"event_type": event_type, "key": key, "message": {"new_entry": entry, "new_parent_path": "/buckets/x"}}


def _judge(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(a.bucket, a.key, a.status) for a in filer_announcements(FilerEvent.model_validate(body), ["landing"])]


def test_a_file_created_in_a_landing_bucket_is_new() -> None:
    assert _judge(_filer("/buckets/landing/shows/Ep 1.mp4")) == [("landing", "shows/Ep 1.mp4", "new")]
    assert _judge(_filer("/buckets/landing/a.mp4", "update")) == [("landing", "a.mp4", "new")]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (_filer("/buckets/landing/shows", directory=True), "ignored"),
        (_filer("/buckets/landing/a.mp4", "delete"), "ignored"),
        ({"event_type": "create", "key": "/buckets/landing/a.mp4", "message": {}}, "ignored"),
        (_filer("/buckets/other/a.mp4"), "rejected"),
        (_filer("/etc/seaweedfs/a.conf"), "rejected"),
        (_filer("/buckets/landing/../secret"), "rejected"),
        (_filer("/buckets/landing/a\x00b"), "rejected"),
    ],
)
def test_folders_other_events_and_unsafe_or_foreign_paths_are_not_new(body: dict[str, Any], status: str) -> None:
    [(_, _, judged)] = _judge(body)
    assert judged == status


def test_the_api_registers_a_file_a_filer_event_announces(
    seaweed: S3Endpoint, database_url: str, tmp_path: Path, prefect_api: str
) -> None:
    settings = StoreSettings(
        home=tmp_path / "home",
        database_url=database_url,
        s3_endpoint=seaweed.endpoint,
        s3_access_key=seaweed.access_key,
        s3_secret_key=seaweed.secret_key,
    )
    landing = f"landing-{uuid.uuid4().hex[:12]}"
    client = seaweed.client()
    client.make_bucket(landing)
    data = b"bytes announced by the filer"
    client.put_object(landing, "in/clip.mp4", io.BytesIO(data), len(data))
    api = ApiSettings(token=TOKEN, landing_buckets=[landing])
    with open_store(settings) as store:
        mesh = Mesh(store, Registry([cf.size]), home=tmp_path)
        with TestClient(create_app(lambda: mesh, api, store_settings=settings)) as http:
            answer = http.post(
                "/events/seaweedfs",
                json=_filer(f"/buckets/{landing}/in/clip.mp4"),
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert answer.status_code == 202, answer.text
            [result] = answer.json()["results"]
            assert (result["status"], result["asset"]) == ("registered", hashlib.sha256(data).hexdigest())
            unauthorised = http.post("/events/seaweedfs", json=_filer(f"/buckets/{landing}/in/clip.mp4"))
            assert unauthorised.status_code == 401
            malformed = http.post("/events/seaweedfs", json={"key": 3}, headers={"Authorization": f"Bearer {TOKEN}"})
            assert malformed.status_code == 422
        assert store.assets_named([f"s3://{landing}/in/clip.mp4"]) == {
            f"s3://{landing}/in/clip.mp4": hashlib.sha256(data).hexdigest()
        }
