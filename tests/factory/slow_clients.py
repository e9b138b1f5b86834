"""Connections that hold on to a server without asking much of it, for the fair-use test and
`bench/serve.py`: idle ones, ones stuck halfway through their headers, and event streams."""

from __future__ import annotations

import contextlib
import socket

IDLE, SLOW, STREAMS = 100, 100, 100


def open_slow_clients(port: int, event_path: str, stack: contextlib.ExitStack) -> None:
    """IDLE connections that send nothing, SLOW ones stuck halfway through their headers, and
    STREAMS event streams of `event_path`, each read until its first event arrived; all
    closed when `stack` closes."""
    for _ in range(IDLE):
        stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=30))
    for n in range(SLOW):
        slow = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=30))
        slow.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-{n}: ".encode())
    for _ in range(STREAMS):
        stream = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=30))
        stream.sendall(f"GET {event_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        seen = b""
        while b"event: stage" not in seen:
            chunk = stream.recv(4096)
            if not chunk:
                raise AssertionError(f"the event stream closed early: {seen!r}")
            seen += chunk
        if not seen.startswith(b"HTTP/1.1 200"):
            raise AssertionError(f"the event stream was refused: {seen[:200]!r}")
