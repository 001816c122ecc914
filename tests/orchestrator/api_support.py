"""What the HTTP API tests share: a mesh of cheap features, a client with a token, S3 event bodies."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi.testclient import TestClient

from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import StoreSettings

DATA = Path(__file__).parents[1] / "data"
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def api_client(
    mesh: Mesh, store_settings: StoreSettings | None = None, landing: str = "landing", **settings: Any
) -> TestClient:
    api = ApiSettings(**{"token": TOKEN, "landing_buckets": [landing], **settings})
    app = create_app(lambda: mesh, api, store_settings=store_settings or StoreSettings(s3_endpoint=None))
    return TestClient(app)


def write_file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def s3_event(bucket: str, *keys: str, event: str = "s3:ObjectCreated:Put") -> dict[str, Any]:
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


def settled(client: TestClient, asset: str, timeout: float = 60) -> list[dict[str, Any]]:
    """The asset's feature states once nothing is missing or running (its queued run has finished)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/assets/{asset}/status", headers=AUTH)
        assert response.status_code == 200, response.text
        states: list[dict[str, Any]] = response.json()["features"]
        if all(s["state"] in ("stored", "failed") for s in states) or time.monotonic() > deadline:
            return states
        time.sleep(0.1)


@contextlib.contextmanager
def serving(app: object) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread; its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
