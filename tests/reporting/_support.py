"""A small real chaos suite and a way to run it in a fresh pytest process.

The suite puts the embedded fault proxy in front of a line echo server on loopback and
has one test per outcome the reports tell apart: passed, failed (a violated
hypothesis), aborted (a guard healed everything), error (an injection outside the
blast radius), plus a test that is not a chaos test at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONFTEST = '''
import socket
import threading

import pytest


class EchoServer:
    """Echoes every byte back; one thread per connection, all joined at close."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self._conns = []
        self._threads = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            thread = threading.Thread(target=self._echo, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _echo(self, conn):
        with conn:
            try:
                while data := conn.recv(4096):
                    conn.sendall(data)
            except OSError:
                pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._accept.join(10)
        for conn in list(self._conns):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(10)


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()


def ping(proxy, timeout=2.0):
    with socket.create_connection((proxy.host, proxy.port), timeout=timeout) as conn:
        conn.sendall(b"ping\\n")
        data = b""
        while not data.endswith(b"\\n"):
            chunk = conn.recv(64)
            if not chunk:
                raise ConnectionError("closed by the proxy")
            data += chunk
        return data == b"ping\\n"
'''

SUITE = """
import time

import pytest

from conftest import ping


@pytest.mark.chaos(blast_radius=["echo"])
def test_copes_with_latency(chaos, echo):
    proxy = chaos.proxy("echo", upstream=echo.address)
    with proxy.latency(50, jitter=10):
        chaos.steady_state(lambda: ping(proxy), calls=4, p99=30.0, target="echo")
    chaos.recovers(lambda: ping(proxy), within=30.0, target="echo")


@pytest.mark.chaos(blast_radius=["echo"])
def test_too_slow(chaos, echo):
    proxy = chaos.proxy("echo", upstream=echo.address)
    with proxy.latency(300):
        # every call waits for 300 ms of latency: p99 <= 10 ms cannot hold
        chaos.steady_state(lambda: ping(proxy), calls=3, p99=0.01, target="echo")


@pytest.mark.chaos(blast_radius=["echo"])
def test_guard_aborts(chaos, echo):
    proxy = chaos.proxy("echo", upstream=echo.address)
    with chaos.guard(lambda: ping(proxy, timeout=1.0), interval=0.01, target="echo"):
        proxy.down()
        deadline = time.monotonic() + 30
        while chaos.aborted is None and time.monotonic() < deadline:
            time.sleep(0.01)


@pytest.mark.chaos(blast_radius=["echo"])
def test_outside_radius(chaos, echo):
    other = chaos.proxy("other", upstream=echo.address)
    other.latency(10)


def test_not_chaos():
    assert 1 + 1 == 2
"""

NODEIDS = {
    "test_suite.py::test_copes_with_latency": "passed",
    "test_suite.py::test_too_slow": "failed",
    "test_suite.py::test_guard_aborts": "aborted",
    "test_suite.py::test_outside_radius": "error",
}


def write_suite(directory: Path) -> None:
    """Write the suite (conftest.py and test_suite.py) into ``directory``."""
    (directory / "conftest.py").write_text(CONFTEST)
    (directory / "test_suite.py").write_text(SUITE)


def run_pytest(
    directory: Path, *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run pytest on ``directory`` in a fresh process, as a user would from a shell.

    The environment is scrubbed of the outer run's pytest and xdist variables, so the
    inner run is not mistaken for a worker of the outer one.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-W",
        "error",
        "--color=no",
        "-rN",
        *args,
    ]
    return subprocess.run(
        command,
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
