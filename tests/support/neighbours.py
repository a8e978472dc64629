"""Neighbours that misbehave, on loopback and bounded, for the hardening tests.

`silent_server()` accepts TCP connections and never answers (an
Alertmanager stuck in a GC pause, a proxy holding requests); it keeps at
most `max_connections` open and closes all of them at the end.
`closed_port()` is a loopback port nothing listens on.
"""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator


@dataclass
class SilentServer:
    port: int
    accepted: list[socket.socket] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def silent_server(max_connections: int = 64) -> Iterator[SilentServer]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    server = SilentServer(listener.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            if len(server.accepted) >= max_connections:
                stop.wait(0.2)  # further clients wait in the backlog: still no answer
                continue
            try:
                connection, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            server.accepted.append(connection)  # held open, never read, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in server.accepted:
            connection.close()
        listener.close()


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
