"""The managed Prefect server's process: Prefect's own app under uvicorn, as ``prefect server start`` runs it in the
foreground, with one difference: a 503 tells the client when to try again.

On SQLite, a write that meets another's newer snapshot fails at once (``SQLITE_BUSY_SNAPSHOT``) and Prefect answers
503. Its client then backs off exponentially, 2 s, then 4 s, then 8 s, unless the answer carries ``Retry-After``.
The conflict is over in milliseconds, so those waits were pure idle time: two workers polling one pool met it a few
times a batch, each time leaving a worker idle for 2 to 6 seconds with runs waiting. Here every 503 carries
``Retry-After: RETRY_AFTER_S``; Prefect's client still tries at most ``PREFECT_CLIENT_MAX_RETRIES`` times.

Run as ``python -m mediamesh.orchestrator.services.prefect_app --host HOST --port PORT``, with Prefect's settings in
the environment (``prefect_server._start`` sets them).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["RETRY_AFTER_S", "RetrySoon", "main"]

#: Seconds a client is told to wait before retrying a 503 (Prefect's client adds up to 20% jitter).
RETRY_AFTER_S = 0.5

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class RetrySoon:
    """ASGI middleware: a 503 response gets ``Retry-After`` (replacing any the app set); all else passes as is."""

    def __init__(self, app: App, retry_after_s: float = RETRY_AFTER_S) -> None:
        self.app = app
        self.header = (b"retry-after", str(retry_after_s).encode())

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websockets: untouched
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 503:
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"retry-after"]
                message = {**message, "headers": [*headers, self.header]}
            await send(message)

        await self.app(scope, receive, sending)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    import uvicorn
    from prefect.server.api.server import create_app
    from prefect.settings import (
        PREFECT_SERVER_API_KEEPALIVE_TIMEOUT,
        PREFECT_SERVER_API_WEBSOCKET_PING_INTERVAL,
        PREFECT_SERVER_API_WEBSOCKET_PING_TIMEOUT,
        PREFECT_SERVER_LOGGING_LEVEL,
    )

    # What `prefect server start` passes uvicorn for one worker process, services included.
    uvicorn.run(
        RetrySoon(create_app(final=True)),
        host=args.host,
        port=args.port,
        timeout_keep_alive=PREFECT_SERVER_API_KEEPALIVE_TIMEOUT.value(),
        ws_ping_interval=PREFECT_SERVER_API_WEBSOCKET_PING_INTERVAL.value(),
        ws_ping_timeout=PREFECT_SERVER_API_WEBSOCKET_PING_TIMEOUT.value(),
        log_level=PREFECT_SERVER_LOGGING_LEVEL.value().lower(),
    )


if __name__ == "__main__":
    main()
