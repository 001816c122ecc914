"""The HTTP API over a real store: reads, S3 events (on SeaweedFS), access control and request errors."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient

from mediamesh.features import Registry, default_registry
from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import Store, StoreSettings, open_store
from tests.orchestrator.resources import counting_features as cf
from tests.services import S3Endpoint

DATA = Path(__file__).parents[1] / "data"
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    cf.CALLS.clear()


@pytest.fixture
def mesh(local_store: Store, tmp_path: Path) -> Mesh:
    return Mesh(local_store, Registry([cf.size, cf.doubled]), home=tmp_path)


def _client(
    mesh: Mesh, store_settings: StoreSettings | None = None, landing: str = "landing", **settings: Any
) -> TestClient:
    api = ApiSettings(**{"token": TOKEN, "landing_buckets": [landing], **settings})
    app = create_app(lambda: mesh, api, store_settings=store_settings or StoreSettings(s3_endpoint=None))
    return TestClient(app)


@pytest.fixture
def client(mesh: Mesh) -> Iterator[TestClient]:
    with _client(mesh) as opened:
        yield opened


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _event(bucket: str, *keys: str, event: str = "s3:ObjectCreated:Put") -> dict[str, Any]:
    """A MinIO notification for ``keys`` (already URL-encoded, as S3 sends them)."""
    return {
        "EventName": event,
        "Key": f"{bucket}/{keys[0]}",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "eventName": event,
                "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1, "eTag": "e"}},
            }
            for key in keys
        ],
    }


def _settled(client: TestClient, asset: str, timeout: float = 60) -> list[dict[str, Any]]:
    """The asset's feature states once nothing is missing or running (its queued run has finished)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/assets/{asset}/status", headers=AUTH)
        assert response.status_code == 200, response.text
        states: list[dict[str, Any]] = response.json()["features"]
        if all(s["state"] in ("stored", "failed") for s in states) or time.monotonic() > deadline:
            return states
        time.sleep(0.1)


def test_reads_assets_status_values_and_provenance(
    client: TestClient, mesh: Mesh, tmp_path: Path, prefect_api: str
) -> None:
    clip = _file(tmp_path, "good.mp4", b"good bytes")
    [result] = mesh.ingest([clip])
    asset = result.asset
    assert asset is not None

    listed = client.get("/assets", headers=AUTH).json()
    assert [(a["id"], a["size"], a["names"]) for a in listed] == [(asset, 10, [str(clip.resolve())])]
    for ref in (asset, asset[:6], quote(str(clip.resolve()), safe="")):
        got = client.get(f"/assets/{ref}", headers=AUTH)
        assert (got.status_code, got.json()["id"]) == (200, asset), ref

    states = client.get(f"/assets/{asset[:8]}/status", headers=AUTH).json()
    assert states["asset"] == asset
    assert [(s["feature"], s["version"], s["state"]) for s in states["features"]] == [
        ("size", "1", "stored"),
        ("doubled", "1", "stored"),
    ]
    assert all(s["duration_s"] >= 0 and s["worker"] for s in states["features"])

    value = client.get(f"/assets/{asset}/features/doubled", headers=AUTH)
    assert value.status_code == 200
    record, _ = mesh.read(asset, "doubled")
    assert value.json() == {
        "asset": asset,
        "feature": "doubled",
        "version": "1",
        "key": record.key,
        "payload": "json",
        "shots": None,
        "value": {"value": 20},
        "shape": None,
        "dtype": None,
        "meta": None,
        "data": None,
    }
    assert client.get(f"/assets/{asset}/features/doubled?version=1", headers=AUTH).json()["key"] == record.key

    provenance = client.get(f"/assets/{asset}/features/doubled/provenance", headers=AUTH).json()
    size_key = mesh.read(asset, "size")[0].key
    assert provenance["key"] == record.key and provenance["current"] is True
    assert (provenance["params"], provenance["payload_kind"], provenance["device"]) == ({"factor": 2}, "json", "cpu")
    assert provenance["code_fingerprint"] == mesh.registry["doubled"].fingerprint
    assert provenance["inputs"] == [{"name": "size", "key": size_key, "ref": "size@1"}]
    assert provenance["worker"] == record.worker and provenance["duration_s"] == record.duration_s
    size_inputs = client.get(f"/assets/{asset}/features/size/provenance", headers=AUTH).json()["inputs"]
    assert size_inputs == [{"name": "source", "key": asset, "ref": None}]


def test_unknown_things_are_404_with_a_clear_detail(
    client: TestClient, mesh: Mesh, tmp_path: Path, prefect_api: str
) -> None:
    clip = _file(tmp_path, "good.mp4", b"good bytes")
    [result] = mesh.ingest([clip])
    asset = result.asset
    assert asset is not None

    def detail(url: str, status: int = 404) -> str:
        response = client.get(url, headers=AUTH)
        assert response.status_code == status, response.text
        assert "Traceback" not in response.text
        return str(response.json()["detail"])

    assert (
        detail("/assets/ffffffff")
        == "no asset matches 'ffffffff' (give an asset id, a unique prefix or a name it was ingested under)"
    )
    assert detail("/assets/no-such-name/status").startswith("no asset matches 'no-such-name'")
    assert detail(f"/assets/{asset}/features/doubeld") == "no feature named 'doubeld'. Did you mean 'doubled'?"
    assert detail(f"/assets/{asset}/features/doubled?version=9") == f"asset {asset[:12]} has no stored doubled@9"
    assert detail(f"/assets/{asset}/features/doubled/provenance?version=9").endswith("has no stored doubled@9")
    # The server never hashes its own files for a caller: a path is only a name here.
    copy = shutil.copyfile(clip, tmp_path / "copy.mp4")
    assert detail(f"/assets/{quote(str(copy), safe='')}").startswith("no asset matches")
    assert detail(f"/assets/{quote('/etc/hostname', safe='')}").startswith("no asset matches")
    assert detail("/assets/a%00b").startswith("no asset matches")
    assert detail("/assets/" + "x" * 300).startswith("no asset matches")


def test_a_path_on_the_server_gets_the_same_404_whether_or_not_it_exists(mesh: Mesh, tmp_path: Path) -> None:
    clip = _file(tmp_path, "good.mp4", b"good bytes")
    asset, _ = mesh.store.register_asset(clip, name=str(clip.resolve()))
    copy = shutil.copyfile(clip, tmp_path / "copy.mp4")  # the bytes of an asset, under a name never recorded
    paths = ["/etc/shadow", "/etc/hostname", str(tmp_path), str(copy), "/etc/shadowx", str(tmp_path / "nothing.mp4")]
    assert [Path(p).exists() for p in paths] == [True, True, True, True, False, False]
    with _client(mesh, open_reads=True) as client:
        for suffix in ("", "/status", "/features/size", "/features/size/provenance"):
            bodies = set()
            for path in paths:
                response = client.get(f"/assets/{quote(path, safe='')}{suffix}")
                assert response.status_code == 404, (path, suffix, response.text)
                bodies.add(response.text.replace(path, "PATH"))
            assert len(bodies) == 1, (suffix, bodies)
            hint = "give an asset id, a unique prefix or a name it was ingested under"
            assert bodies == {f'{{"detail":"no asset matches \'PATH\' ({hint})"}}'}, suffix
        assert client.get(f"/assets/{quote(str(clip.resolve()), safe='')}").json()["id"] == asset.id


def test_bad_query_values_are_422(client: TestClient, mesh: Mesh, tmp_path: Path, prefect_api: str) -> None:
    [result] = mesh.ingest([_file(tmp_path, "good.mp4", b"good bytes")])
    url = f"/assets/{result.asset}/features/doubled"
    for query, message in [
        ("start=-1", "greater than or equal to 0"),
        ("t0=abc", "valid number"),
        ("t1=nan", "finite number"),
        ("format=csv", "'json' or 'npy'"),
        ("version=", "at least 1 character"),
        ("start=1&t0=2", "not both"),
        ("start=3&stop=1", "stop (1) is before start (3)"),
        ("t0=3&t1=1", "t1 (1.0) must be after t0 (3.0)"),
        ("start=0&stop=1", "doubled@1 is not a per-shot value"),
        ("format=npy", "doubled@1 is not an array"),
    ]:
        response = client.get(f"{url}?{query}", headers=AUTH)
        assert response.status_code == 422, query
        assert message in json.dumps(response.json()), (query, response.text)
    assert client.get("/assets?limit=0", headers=AUTH).status_code == 422


def test_access_needs_the_bearer_token(mesh: Mesh) -> None:
    with _client(mesh) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").json() == {"status": "ready"}
        missing = client.get("/assets")
        assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
        assert missing.json() == {"detail": "a bearer token is required"}
        assert client.get("/assets", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        wrong = client.get("/assets", headers={"Authorization": "Bearer nope"})
        assert (wrong.status_code, wrong.json()) == (403, {"detail": "the bearer token is wrong"})
        assert client.post("/events/s3", json=_event("landing", "a.mp4")).status_code == 401
        assert client.get("/assets", headers=AUTH).json() == []
    with _client(mesh, open_reads=True) as client:
        assert client.get("/assets").status_code == 200
        assert client.post("/events/s3", json=_event("landing", "a.mp4")).status_code == 401
    with _client(mesh, token=None, open_reads=True) as client:
        refused = client.post("/events/s3", json=_event("landing", "a.mp4"), headers=AUTH)
        assert (refused.status_code, refused.json()) == (
            503,
            {"detail": "no API token configured: set MEDIAMESH_API_TOKEN"},
        )
        assert client.get("/assets").status_code == 200
    with _client(mesh, token=None) as client:
        assert client.get("/assets", headers=AUTH).status_code == 503


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAMESH_API_TOKEN", "from-env")
    monkeypatch.setenv("MEDIAMESH_API_OPEN_READS", "true")
    monkeypatch.setenv("MEDIAMESH_API_LANDING_BUCKETS", "landing, uploads")
    monkeypatch.setenv("MEDIAMESH_API_MAX_BODY_BYTES", "2048")
    settings = ApiSettings()
    assert settings.token is not None and settings.token.get_secret_value() == "from-env"
    assert (settings.open_reads, settings.landing_buckets, settings.max_body_bytes) == (
        True,
        ["landing", "uploads"],
        2048,
    )
    assert "from-env" not in repr(settings)
    monkeypatch.setenv("MEDIAMESH_API_LANDING_BUCKETS", '["a", "b"]')
    monkeypatch.setenv("MEDIAMESH_API_TOKEN", "")
    assert (ApiSettings().landing_buckets, ApiSettings().token) == (["a", "b"], None)


def test_event_bodies_that_are_not_notifications_are_refused(mesh: Mesh) -> None:
    with _client(mesh, max_body_bytes=2000) as client:

        def post(content: Any, content_type: str | None = "application/json", **headers: str) -> Any:
            sent = {**AUTH, **headers, **({"Content-Type": content_type} if content_type else {})}
            return client.post("/events/s3", content=content, headers=sent)

        body = json.dumps(_event("landing", "a.mp4")).encode()
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
    with _client(mesh) as client:
        body = _event("landing", "..%2Fsecret", "a.mp4")
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
        unconfigured = client.post("/events/s3", json=_event("landing", "a.mp4"), headers=AUTH)
        assert unconfigured.status_code == 503
        assert "no S3 endpoint configured for landing buckets" in unconfigured.json()["detail"]


def test_an_unreachable_object_store_is_503_so_the_sender_retries(mesh: Mesh) -> None:
    closed = StoreSettings(s3_endpoint="http://127.0.0.1:9", s3_access_key="k", s3_secret_key="s")
    with _client(mesh, store_settings=closed) as client:
        response = client.post("/events/s3", json=_event("landing", "a.mp4"), headers=AUTH)
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
    event = _event(landing, "movies/My+Movie%2B1.mp4", "movies/missing.mp4")

    with open_store(store_settings) as store:
        mesh = Mesh(store, Registry([cf.size, cf.doubled]), home=tmp_path)
        with _client(mesh, store_settings=store_settings, landing=landing) as client:
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

            assert [s["state"] for s in _settled(client, asset)] == ["stored", "stored"]
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


def test_builtin_features_over_http_with_shot_and_time_slices(
    local_store: Store, tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAMESH_ENCODERS", "lite")
    monkeypatch.setenv("MEDIAMESH_DEVICE", "cpu")
    monkeypatch.setenv("MEDIAMESH_CONFIG", str(tmp_path / "no-config.toml"))
    # counter.mp4 changes colour every second; six frames of the original let those changes cut (3 shots).
    registry = default_registry()
    mesh = Mesh(local_store, registry.replace(registry["shots"].replace(params={"min_scene_len": 6})), home=tmp_path)
    clip = shutil.copyfile(DATA / "counter.mp4", tmp_path / "counter.mp4")
    [result] = mesh.ingest([clip], targets=["shots", "video_embedding"])
    assert result.ok, result.errors
    asset = result.asset
    assert asset is not None

    with _client(mesh) as client:
        base = f"/assets/{asset[:12]}/features"
        shots = client.get(f"{base}/shots", headers=AUTH).json()
        records = shots["value"]
        total = len(records)
        assert [(s["start_frame"], s["end_frame"]) for s in records] == [(0, 24), (24, 48), (48, 72)]
        assert shots["shots"] == {"start": 0, "stop": total, "total": total}
        assert set(records[0]) == {"index", "start_frame", "end_frame", "start_time", "end_time"}
        assert all(a["end_frame"] == b["start_frame"] for a, b in itertools.pairwise(records))

        sliced = client.get(f"{base}/shots?start=1&stop=3", headers=AUTH).json()
        assert sliced["value"] == records[1:3]
        assert sliced["shots"] == {"start": 1, "stop": 3, "total": total}
        assert client.get(f"{base}/shots?start={total + 5}", headers=AUTH).json()["value"] == []

        # The shots overlapping [t0, t1): from the one holding t0 to the one holding t1.
        t0 = (records[1]["start_time"] + records[1]["end_time"]) / 2
        t1 = records[2]["end_time"]
        by_time = client.get(f"{base}/shots?t0={t0}&t1={t1}", headers=AUTH).json()
        assert by_time["value"] == records[1:3]
        assert client.get(f"{base}/shots?t0={records[-1]['end_time']}", headers=AUTH).json()["value"] == []

        embedding = client.get(f"{base}/video_embedding", headers=AUTH).json()
        assert embedding["payload"] == "array" and embedding["dtype"] == "float32"
        assert embedding["shape"][0] == total and len(embedding["data"]) == total
        rows = client.get(f"{base}/video_embedding?t0={t0}&t1={t1}", headers=AUTH).json()
        assert rows["shots"] == {"start": 1, "stop": 3, "total": total}
        assert rows["data"] == embedding["data"][1:3] and rows["shape"] == [2, embedding["shape"][1]]
        npy = client.get(f"{base}/video_embedding?start=1&stop=3&format=npy", headers=AUTH)
        assert npy.headers["content-type"] == "application/octet-stream"
        np.testing.assert_array_equal(np.load(io.BytesIO(npy.content)), np.asarray(rows["data"], dtype=np.float32))

        media = client.get(f"{base}/encode", headers=AUTH)
        assert (media.status_code, media.headers["content-type"]) == (200, "video/mp4")
        record, encoded = mesh.read(asset, "encode")
        assert media.content == encoded.path.read_bytes()
        assert media.headers["x-mediamesh-key"] == record.key
        meta = client.get(f"{base}/encode?format=json", headers=AUTH).json()
        assert (meta["payload"], meta["value"]["height"]) == ("file", 360)
        assert client.get(f"{base}/encode?t0=1", headers=AUTH).status_code == 422
