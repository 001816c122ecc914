"""The HTTP API over a real store: reads, S3 events (on SeaweedFS), access control and request errors."""

from __future__ import annotations

import io
import itertools
import json
import shutil
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient

from mediamesh.features import default_registry
from mediamesh.orchestrator.interfaces.api import ApiSettings
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import Store
from tests.orchestrator.api_support import AUTH, DATA, TOKEN, api_client, s3_event, write_file


def test_reads_assets_status_values_and_provenance(
    client: TestClient, mesh: Mesh, tmp_path: Path, prefect_api: str
) -> None:
    clip = write_file(tmp_path, "good.mp4", b"good bytes")
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
    clip = write_file(tmp_path, "good.mp4", b"good bytes")
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
    clip = write_file(tmp_path, "good.mp4", b"good bytes")
    asset, _ = mesh.store.register_asset(clip, name=str(clip.resolve()))
    copy = shutil.copyfile(clip, tmp_path / "copy.mp4")  # the bytes of an asset, under a name never recorded
    paths = ["/etc/shadow", "/etc/hostname", str(tmp_path), str(copy), "/etc/shadowx", str(tmp_path / "nothing.mp4")]
    assert [Path(p).exists() for p in paths] == [True, True, True, True, False, False]
    with api_client(mesh, open_reads=True) as client:
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
    [result] = mesh.ingest([write_file(tmp_path, "good.mp4", b"good bytes")])
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
    with api_client(mesh) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").json() == {"status": "ready"}
        missing = client.get("/assets")
        assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
        assert missing.json() == {"detail": "a bearer token is required"}
        assert client.get("/assets", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        wrong = client.get("/assets", headers={"Authorization": "Bearer nope"})
        assert (wrong.status_code, wrong.json()) == (403, {"detail": "the bearer token is wrong"})
        assert client.post("/events/s3", json=s3_event("landing", "a.mp4")).status_code == 401
        assert client.get("/assets", headers=AUTH).json() == []
    with api_client(mesh, open_reads=True) as client:
        assert client.get("/assets").status_code == 200
        assert client.post("/events/s3", json=s3_event("landing", "a.mp4")).status_code == 401
    with api_client(mesh, token=None, open_reads=True) as client:
        refused = client.post("/events/s3", json=s3_event("landing", "a.mp4"), headers=AUTH)
        assert (refused.status_code, refused.json()) == (
            503,
            {"detail": "no API token configured: set MEDIAMESH_API_TOKEN"},
        )
        assert client.get("/assets").status_code == 200
    with api_client(mesh, token=None) as client:
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

    with api_client(mesh) as client:
        base = f"/assets/{asset[:12]}/features"
        shots = client.get(f"{base}/shots", headers=AUTH).json()
        records = shots["value"]
        total = len(records)
        assert [(s["start_frame"], s["end_frame"]) for s in records] == [(0, 24), (24, 48), (48, 72)]
        assert shots["shots"] == {"start": 0, "stop": total, "total": total}
        assert set(records[0]) == {
            "index",
            "start_frame",
            "end_frame",
            "start_time",
            "end_time",
            "transition",
            "transition_start",
            "transition_end",
        }
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
