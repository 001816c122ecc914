"""A corrupt stored value over HTTP: a 500 that says so and names ``mediamesh verify``, never "try again later"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mediamesh.features import EncodedMedia, ShotTable, default_registry
from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import VERIFY_ON_READ_BYTES, CorruptValueError, Store, StoreSettings
from tests.orchestrator.test_verify_cli import put_test_value

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REGISTRY = default_registry()


@pytest.fixture
def mesh(local_store: Store, tmp_path: Path) -> Mesh:
    return Mesh(local_store, REGISTRY, home=tmp_path)


@pytest.fixture
def client(mesh: Mesh) -> Iterator[TestClient]:
    api = ApiSettings(token=TOKEN, landing_buckets=["landing"])
    with TestClient(create_app(lambda: mesh, api, store_settings=StoreSettings(s3_endpoint=None))) as opened:
        yield opened


@pytest.fixture
def asset(mesh: Mesh, tmp_path: Path) -> str:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not really a video" * 100)
    record, _ = mesh.store.register_asset(clip, name="clip.mp4")
    return record.id


def _rewrite(mesh: Mesh, key: str, edit: bytes, at: int = -1) -> None:
    """Overwrite bytes of a local blob in place (blobs are written read-only)."""
    path = mesh.store.blobs.local_path(key)
    path.chmod(0o644)
    with path.open("r+b") as fh:
        fh.seek(at, 2 if at < 0 else 0)
        fh.write(edit)


def test_a_corrupt_value_is_500_naming_mediamesh_verify(client: TestClient, mesh: Mesh, asset: str) -> None:
    record = put_test_value(mesh.store, asset, "shots", ShotTable.from_frames(24.0, [(0, 24), (24, 48)]))
    assert client.get(f"/assets/{asset}/features/shots", headers=AUTH).status_code == 200

    data = mesh.store.blobs.get_bytes(record.blob_key)
    _rewrite(mesh, record.blob_key, b"9", at=data.index(b'"end_frame":48') + len(b'"end_frame":4'))
    response = client.get(f"/assets/{asset}/features/shots", headers=AUTH)

    assert response.status_code == 500
    assert "retry-after" not in response.headers
    detail = response.json()["detail"]
    assert detail.startswith(f"the stored value shots@{record.version} {record.key[:12]}")
    assert "is corrupt" in detail and "run `mediamesh verify`" in detail
    assert "try again" not in detail

    # A changed size was a 503 "try again later"; it is the same damage.
    _rewrite(mesh, record.blob_key, b"}\n")
    grown = client.get(f"/assets/{asset}/features/shots", headers=AUTH)
    assert (grown.status_code, "mediamesh verify" in grown.json()["detail"]) == (500, True)


def test_a_media_file_too_large_to_hash_first_is_checked_as_it_streams(
    client: TestClient, mesh: Mesh, asset: str, tmp_path: Path
) -> None:
    media_file = tmp_path / "encode.mp4"
    body = bytes(range(256)) * ((VERIFY_ON_READ_BYTES + (1 << 20)) // 256)
    media_file.write_bytes(body)
    record = put_test_value(
        mesh.store, asset, "encode", EncodedMedia(media_file, 640, 360, 24.0, 100, 4.2, False, None)
    )
    assert record.bytes > VERIFY_ON_READ_BYTES

    whole = client.get(f"/assets/{asset}/features/encode", headers=AUTH)
    assert whole.status_code == 200 and whole.content == body

    _rewrite(mesh, record.blob_key, b"\xff", at=VERIFY_ON_READ_BYTES // 2)
    # The headers have gone out by the time the last byte is hashed: the server aborts the download instead
    # (Starlette re-raises, as "response already started", and the server drops the connection).
    with pytest.raises(RuntimeError, match="response already started") as aborted:
        client.get(f"/assets/{asset}/features/encode", headers=AUTH)
    assert isinstance(aborted.value.__cause__, CorruptValueError)
    assert re.search(r"encode@\d+ .* is corrupt", str(aborted.value.__cause__))
