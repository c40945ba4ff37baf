"""Helpers of the process-service tests: the echo server's command, a client, pid checks."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

SCRIPT = Path(__file__).with_name("_procserver.py")
#: the echo server's ready line, capturing its port
READY = r"LISTENING on 127\.0\.0\.1:(\d+)"


def echo_argv(*extra: str, port: str = "{port}") -> list[str]:
    """The echo server's command; ``port`` is what it binds (the placeholder by default)."""
    return [sys.executable, str(SCRIPT), "--port", port, *extra]


def talk(port: int, timeout: float = 10.0) -> bytes:
    """Send one line to the echo server on ``port``; its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"ping\n")
        return sock.makefile("rb").readline()


def refused(port: int) -> bool:
    """Whether nothing listens on ``port`` (a connection is refused)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5.0):
            return False
    except ConnectionRefusedError:
        return True


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def eventually(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``condition`` until it holds (generous timeout: a loaded CI machine)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def read_pid(path: Path, timeout: float = 30.0) -> int:
    """The pid a child wrote to ``path``."""
    assert eventually(path.exists, timeout), f"no pid file {path}"
    return int(path.read_text())
