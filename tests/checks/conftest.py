"""Fixtures for the checks' tests: the small service of _svc/ in front of a real Redis
(``redis_address``, from tests/conftest.py), started as a subprocess with the switches
of its broken behaviours."""

from __future__ import annotations

import http.client
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SERVICE = Path(__file__).parent / "_svc" / "service.py"

# _svc's breaker switches: the open period (1 s) comfortably fits the 5 fast calls that
# verify it, even on a busy machine; a shorter one could let the trial call through
# mid-verification
BREAKER = ("--timeout", "0.5", "--breaker-threshold", "3", "--breaker-reset", "1.0")


def reads_redis(svc: Service) -> Callable[[], bool]:
    """One call of the system under test that reads Redis (the breaker and retry checks)."""
    return lambda: svc.ok("/item?key=k", timeout=3.0)


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
