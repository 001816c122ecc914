"""The managed Prefect server's process: Prefect's app behind ``RetrySoon``, which tells a client when to retry a
503 (Prefect's answer to a SQLite write conflict) instead of leaving it to back off for seconds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import httpx
from prefect.client.base import _parse_retry_after

from mediamesh.orchestrator.services.prefect_app import RETRY_AFTER_S, RetrySoon


class Fake:
    """An ASGI app standing in for Prefect's: each path answers its status, ``/given`` with its own Retry-After;
    lifespan messages are recorded."""

    def __init__(self) -> None:
        self.lifespan: list[str] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            self.lifespan.append(message["type"])
            await send({"type": "lifespan.startup.complete"})
            return
        status = 503 if scope["path"] in ("/busy", "/given") else 200
        headers = [(b"content-type", b"application/json")]
        if scope["path"] == "/given":
            headers.append((b"Retry-After", b"30"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps({"path": scope["path"]}).encode()})


def _get(app: Any, path: str) -> httpx.Response:
    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://prefect") as client:
            return await client.get(path)

    return asyncio.run(get())


def test_a_503_says_when_to_retry_and_other_answers_pass_unchanged() -> None:
    app = RetrySoon(Fake())
    busy = _get(app, "/busy")
    assert busy.status_code == 503 and busy.json() == {"path": "/busy"}
    assert busy.headers.get_list("retry-after") == [str(RETRY_AFTER_S)]
    # Prefect's client reads it as the seconds to wait, where it would otherwise wait 2, 4, 8... seconds.
    assert _parse_retry_after(busy.headers["retry-after"]) == RETRY_AFTER_S
    given = _get(app, "/given")
    assert given.headers.get_list("retry-after") == [str(RETRY_AFTER_S)]  # replaced, not doubled
    fine = _get(app, "/api/health")
    assert fine.status_code == 200 and "retry-after" not in fine.headers
    assert fine.headers["content-type"] == "application/json"


def test_lifespan_reaches_the_app() -> None:
    fake = Fake()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(RetrySoon(fake)({"type": "lifespan"}, receive, send))
    assert fake.lifespan == ["lifespan.startup"] and sent == [{"type": "lifespan.startup.complete"}]


def test_the_managed_server_runs_prefect_behind_it(prefect_api: str) -> None:
    port = urllib.parse.urlsplit(prefect_api).port
    commands = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            commands.append(cmdline.read_bytes().decode(errors="replace").split("\0"))
    serving = [c for c in commands if "--port" in c and c[c.index("--port") + 1] == str(port)]
    assert len(serving) == 1 and serving[0][1:3] == ["-m", "mediamesh.orchestrator.services.prefect_app"], serving
    with httpx.Client() as client:
        assert client.get(f"{prefect_api}/health").status_code == 200
