"""Readiness probes that speak just enough of each protocol to know a server answers.

A TCP connect alone proves little: Docker's port publisher accepts connections for a
container whose server is not listening yet. So Redis gets a PING, PostgreSQL a startup
message (it answers with an authentication request only once it accepts sessions), and
anything else a connect to the container's own address, bypassing the publisher.
Plain sockets keep the plugin free of client-library dependencies.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

__all__ = ["postgres_ready", "redis_ready", "tcp_ready", "wait_until"]


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout)


def tcp_ready(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts a TCP connection on ``host:port``."""
    try:
        with _connect(host, port, timeout):
            return True
    except OSError:
        return False


def redis_ready(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a Redis server on ``host:port`` answers PING with PONG."""
    try:
        with _connect(host, port, timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def postgres_ready(host: str, port: int, user: str, database: str, timeout: float = 1.0) -> bool:
    """Whether PostgreSQL on ``host:port`` accepts sessions (not starting up, not down).

    Sends a protocol 3.0 startup message; a ready server asks for authentication
    (message ``R``), a starting or shutting one answers with an error (``E``).
    """
    params = b"user\x00" + user.encode() + b"\x00database\x00" + database.encode() + b"\x00\x00"
    body = struct.pack("!I", 196608) + params
    message = struct.pack("!I", len(body) + 4) + body
    try:
        with _connect(host, port, timeout) as sock:
            sock.sendall(message)
            first = sock.recv(1)
            # A polite goodbye so the server does not log an incomplete startup.
            if first == b"R":
                sock.sendall(b"X\x00\x00\x00\x04")
            return first == b"R"
    except OSError:
        return False


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.01,
    alive: Callable[[], bool] | None = None,
) -> bool:
    """Poll ``ready`` until it is true or ``timeout`` seconds pass.

    The first polls are 10 ms apart, then each wait is a quarter longer (up to 0.5 s):
    a server ready after ``t`` seconds is seen within about ``t / 4`` of it.

    ``alive`` lets the caller stop early when the server process or container has died:
    waiting the full timeout for a dead server only hides the error.
    """
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return True
        if alive is not None and not alive():
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
        # Back off gently: fast starters (a Python process in 0.1-0.3 s) are seen at
        # once, slow ones (initdb, the first container) need no 100 Hz polling.
        interval = min(interval * 1.25, 0.5)
