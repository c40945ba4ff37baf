"""Fixtures for the checks' tests: a real Redis, and the small service of _svc/ in
front of it, started as a subprocess with the switches of its broken behaviours."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SERVICE = Path(__file__).parent / "_svc" / "service.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on {port} within 20 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            stream.close()


@pytest.fixture(scope="session")
def redis_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, one per xdist worker."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        pytest.fail("redis-server is not installed (apt-get install redis-server; CI does)")
    workdir = tmp_path_factory.mktemp("redis")
    for attempt in range(5):
        port = _free_port()
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_port(port, proc, "redis-server")
        except RuntimeError:
            _stop(proc)
            if attempt == 4:
                raise
            continue
        try:
            yield f"127.0.0.1:{port}"
        finally:
            _stop(proc)
        return


class Service:
    """A running _svc/service.py; HTTP calls with a client-side timeout."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, flags: tuple[str, ...]) -> None:
        self.proc = proc
        self.port = port
        self.flags = flags

    def request(self, method: str, path: str, timeout: float = 2.0) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, str]:
        return self.request("GET", path, timeout)

    def post(self, path: str, timeout: float = 2.0) -> tuple[int, str]:
        return self.request("POST", path, timeout)

    def ok(self, path: str = "/item?key=k", timeout: float = 2.0) -> bool:
        """A probe: True on 200; raises on timeouts and refused connections."""
        return self.get(path, timeout)[0] == 200

    def __repr__(self) -> str:
        return f"<Service :{self.port} {' '.join(self.flags)}>"


@pytest.fixture
def service() -> Iterator[Callable[..., Service]]:
    """Start the service with ``service(redis="host:port", *flags)``; stopped at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(redis: str, *flags: str) -> Service:
        proc = subprocess.Popen(
            [sys.executable, str(SERVICE), "--redis", redis, *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        if not line.startswith("READY "):
            raise RuntimeError(f"service did not start: {line!r} (exit {proc.poll()})")
        return Service(proc, int(line.split()[1]), flags)

    yield start
    for proc in started:
        _stop(proc)


@pytest.fixture
def redis_direct(redis_address: str) -> Iterator[object]:
    """A redis-py client straight to Redis (not through a proxy), for state snapshots."""
    import redis

    host, port = redis_address.rsplit(":", 1)
    client = redis.Redis(host=host, port=int(port), decode_responses=True)
    try:
        yield client
    finally:
        client.close()
