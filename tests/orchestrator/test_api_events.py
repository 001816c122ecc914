"""The HTTP API's event routes over a real store: S3 notifications (on SeaweedFS) and malformed bodies."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mediamesh.features import Registry
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import StoreSettings, open_store
from tests.orchestrator.api_support import AUTH, api_client, s3_event, settled
from tests.orchestrator.resources import counting_features as cf
from tests.services import S3Endpoint


def test_event_bodies_that_are_not_notifications_are_refused(mesh: Mesh) -> None:
    with api_client(mesh, max_body_bytes=2000) as client:

        def post(content: Any, content_type: str | None = "application/json", **headers: str) -> Any:
            sent = {**AUTH, **headers, **({"Content-Type": content_type} if content_type else {})}
            return client.post("/events/s3", content=content, headers=sent)

        body = json.dumps(s3_event("landing", "a.mp4")).encode()
        assert post(body, "text/plain").status_code == 415
        assert post(body, None).status_code == 415
        assert post(b"{not json", "application/json").json()["detail"].startswith("malformed JSON")
        assert post(b"{not json").status_code == 400
        assert post(b"[" * 1500).status_code == 400  # nested too deep for the parser
        assert post("\udcff".encode(errors="surrogatepass")).status_code == 400
        assert post(b'{"Records": NaN}').json() == {"detail": "malformed JSON: NaN is not JSON"}
        shape = post(b'{"Records": [{"s3": {"bucket": {}}}]}')
        assert shape.status_code == 422
        assert [e["loc"] for e in shape.json()["detail"]] == [
            ["body", "Records", 0, "s3", "bucket", "name"],
            ["body", "Records", 0, "s3", "object"],
        ]
        assert post(b"[]").status_code == 422
        big = json.dumps({"Records": [], "padding": "x" * 3000}).encode()
        too_big = post(big)
        assert (too_big.status_code, too_big.json()) == (413, {"detail": "the body is over 2000 bytes"})
        assert post(iter([big[:1000], big[1000:]])).status_code == 413  # chunked: no Content-Length to go by
        assert post(body, **{"Content-Length": "many"}).status_code == 400
        assert post(b'{"Records": []}').json() == {"results": [], "queued": 0}


def test_records_that_name_no_landing_object_are_answered_per_record(mesh: Mesh) -> None:
    with api_client(mesh) as client:
        body = s3_event("landing", "..%2Fsecret", "a.mp4")
        body["Records"].append({**body["Records"][1], "eventName": "s3:ObjectRemoved:Delete"})
        body["Records"][1] = {**body["Records"][1], "s3": {"bucket": {"name": "other"}, "object": {"key": "a.mp4"}}}
        response = client.post("/events/s3", json=body, headers=AUTH)
        assert response.status_code == 202
        assert response.json() == {
            "results": [
                {
                    "bucket": "landing",
                    "key": "..%2Fsecret",
                    "asset": None,
                    "status": "error",
                    "detail": "object key '../secret' has a '..' segment",
                    "missing": 0,
                },
                {
                    "bucket": "other",
                    "key": "a.mp4",
                    "asset": None,
                    "status": "error",
                    "detail": "bucket 'other' is not a landing bucket (landing)",
                    "missing": 0,
                },
                {
                    "bucket": "landing",
                    "key": "a.mp4",
                    "asset": None,
                    "status": "ignored",
                    "detail": "s3:ObjectRemoved:Delete adds no object",
                    "missing": 0,
                },
            ],
            "queued": 0,
        }
        # A new object needs the S3 endpoint; without one the sender is told to retry later.
        unconfigured = client.post("/events/s3", json=s3_event("landing", "a.mp4"), headers=AUTH)
        assert unconfigured.status_code == 503
        assert "no S3 endpoint configured for landing buckets" in unconfigured.json()["detail"]


def test_an_unreachable_object_store_is_503_so_the_sender_retries(mesh: Mesh) -> None:
    closed = StoreSettings(s3_endpoint="http://127.0.0.1:9", s3_access_key="k", s3_secret_key="s")
    with api_client(mesh, store_settings=closed) as client:
        response = client.post("/events/s3", json=s3_event("landing", "a.mp4"), headers=AUTH)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["detail"].startswith("try again later: the object store (s3://landing/a.mp4) is unreachable")


def test_s3_events_register_compute_and_are_idempotent(
    seaweed: S3Endpoint, database_url: str, tmp_path: Path, prefect_api: str
) -> None:
    store_settings = StoreSettings(
        home=tmp_path / "home",
        database_url=database_url,
        object_store=f"s3://mediamesh-test/{uuid.uuid4().hex}",
        s3_endpoint=seaweed.endpoint,
        s3_access_key=seaweed.access_key,
        s3_secret_key=seaweed.secret_key,
    )
    landing = f"landing-{uuid.uuid4().hex[:12]}"
    s3 = seaweed.client()
    s3.make_bucket(landing)
    data = b"good bytes from the landing bucket"
    s3.put_object(landing, "movies/My Movie+1.mp4", io.BytesIO(data), len(data))
    asset = hashlib.sha256(data).hexdigest()
    event = s3_event(landing, "movies/My+Movie%2B1.mp4", "movies/missing.mp4")

    with open_store(store_settings) as store:
        mesh = Mesh(store, Registry([cf.size, cf.doubled]), home=tmp_path)
        with api_client(mesh, store_settings=store_settings, landing=landing) as client:
            first = client.post("/events/s3", json=event, headers=AUTH)
            assert first.status_code == 202, first.text
            registered, missing = first.json()["results"]
            assert registered == {
                "bucket": landing,
                "key": "movies/My Movie+1.mp4",
                "asset": asset,
                "status": "registered",
                "detail": "new bytes",
                "missing": 2,
            }
            assert (missing["status"], missing["asset"]) == ("error", None)
            assert missing["detail"].startswith(f"s3://{landing}/movies/missing.mp4: NoSuchKey")
            assert first.json()["queued"] == 1

            assert [s["state"] for s in settled(client, asset)] == ["stored", "stored"]
            name = quote(f"s3://{landing}/movies/My Movie+1.mp4", safe="")
            assert client.get(f"/assets/{name}", headers=AUTH).json()["names"] == [
                f"s3://{landing}/movies/My Movie+1.mp4"
            ]
            assert client.get(f"/assets/{name}/features/doubled", headers=AUTH).json()["value"] == {
                "value": 2 * len(data)
            }
            assert store.blobs.describe().startswith("s3://mediamesh-test/")

            again = client.post("/events/s3", json=event, headers=AUTH)
            assert again.status_code == 202
            assert again.json()["results"][0] == {
                **registered,
                "detail": "known bytes; the name is recorded",
                "missing": 0,
            }
            assert again.json()["queued"] == 0
        assert cf.CALLS[("size", asset)] == 1
        assert cf.CALLS[("doubled", "")] == 1
        assert [a.id for a in store.assets()] == [asset]
