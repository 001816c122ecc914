"""Loopback ports for the services mediamesh starts on this machine."""

from __future__ import annotations

import contextlib
import socket

__all__ = ["free_port", "free_ports"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    [port] = free_ports(1)
    return port


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (every socket is held until all are chosen)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
