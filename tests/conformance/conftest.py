"""The Toxiproxy API conformance suite: fixtures and markers.

Point it at any Toxiproxy-compatible server with ``CHAOS_CONFORMANCE_URL``
(e.g. ``http://127.0.0.1:8474``); without it, each test module gets its own
:class:`~pytest_chaos.proxy.EmbeddedServer`. Tests create uniquely named proxies and
delete them afterwards, so a shared server is fine.

Markers:

- ``embedded_only``: behaviour only pytest-chaos's server has (the stats extension,
  400 where Toxiproxy hangs); skipped when the server does not name itself
  pytest-chaos in ``GET /version``.
- ``data_path``: needs the server to share this machine's loopback: it connects to a
  proxy's listener, sends bytes to an upstream on 127.0.0.1, or holds a port that the
  server must find taken (a container needs ``--network host``); deselect with
  ``-m "not data_path"`` otherwise.
- ``embedded_gap(reason)``: Toxiproxy behaviour the embedded server does not match
  yet; a strict xfail against the embedded server (so fixing it turns the test red
  until the marker goes), a normal test against any other server.
- ``server_wide``: calls ``POST /reset``, which touches every proxy on the server; run
  against ``CHAOS_CONFORMANCE_URL`` only when ``CHAOS_CONFORMANCE_SERVER_WIDE=1`` says
  that nothing else uses that server meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("requests")
import requests

ENV_URL = "CHAOS_CONFORMANCE_URL"
ENV_SERVER_WIDE = "CHAOS_CONFORMANCE_SERVER_WIDE"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "embedded_only: needs pytest-chaos's embedded server (skipped on others)"
    )
    config.addinivalue_line(
        "markers", "data_path: needs the server on this machine's loopback (connects, binds)"
    )
    config.addinivalue_line(
        "markers", "embedded_gap(reason): known difference of the embedded server (strict xfail)"
    )
    config.addinivalue_line(
        "markers", "server_wide: calls POST /reset, which touches every proxy on the server"
    )


@pytest.fixture(scope="module")
def toxiproxy_url() -> Iterator[str]:
    """The server under test: ``$CHAOS_CONFORMANCE_URL`` or a fresh embedded server."""
    url = os.environ.get(ENV_URL)
    if url:
        yield url.rstrip("/")
        return
    from pytest_chaos.proxy import EmbeddedServer

    with EmbeddedServer() as server:
        yield server.url


@pytest.fixture(scope="module")
def is_embedded(toxiproxy_url: str) -> bool:
    with requests.get(f"{toxiproxy_url}/version", timeout=10) as resp:
        return "pytest-chaos" in str(resp.json().get("implementation", ""))


@pytest.fixture(autouse=True)
def _skip_embedded_only(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("embedded_only") is not None and not request.getfixturevalue(
        "is_embedded"
    ):
        pytest.skip("needs the pytest-chaos embedded server")
    gap = request.node.get_closest_marker("embedded_gap")
    if gap is not None and request.getfixturevalue("is_embedded"):
        request.applymarker(pytest.mark.xfail(reason=gap.args[0], strict=True))
    if (
        request.node.get_closest_marker("server_wide") is not None
        and os.environ.get(ENV_URL)
        and os.environ.get(ENV_SERVER_WIDE) != "1"
    ):
        pytest.skip(f"POST /reset touches every proxy of a shared server; set {ENV_SERVER_WIDE}=1")


class Api:
    """A tiny Toxiproxy HTTP client that remembers the proxies it made, to clean up."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "pytest-chaos-conformance"
        self.created: list[str] = []
        self._prefix = f"conf-{uuid.uuid4().hex[:8]}"
        self._count = 0

    def name(self, label: str = "p") -> str:
        """A proxy name unique to this test (and remembered for cleanup)."""
        self._count += 1
        name = f"{self._prefix}-{label}-{self._count}"
        self.created.append(name)
        return name

    def call(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None, **kw: Any
    ) -> requests.Response:
        data = raw
        headers = dict(kw.pop("headers", {}))
        if body is not None:
            import json

            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        return self.session.request(
            method, self.url + path, data=data, headers=headers, timeout=30, **kw
        )

    def create(self, upstream: str, *, label: str = "p", **fields: Any) -> dict[str, Any]:
        body = {"name": self.name(label), "upstream": upstream, "listen": "127.0.0.1:0"}
        body.update(fields)
        resp = self.call("POST", "/proxies", body)
        assert resp.status_code == 201, resp.text
        result: dict[str, Any] = resp.json()
        return result

    def close(self) -> None:
        for name in self.created:
            self.call("DELETE", f"/proxies/{name}")
        self.session.close()


@pytest.fixture
def api(toxiproxy_url: str) -> Iterator[Api]:
    client = Api(toxiproxy_url)
    try:
        yield client
    finally:
        client.close()


class EchoServer:
    """A threaded TCP echo server on 127.0.0.1: the upstream behind test proxies."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._conns.append(conn)
                thread = threading.Thread(target=self._echo, args=(conn,), daemon=True)
                self._threads.append(thread)
            thread.start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = list(self._conns)
        # shutdown wakes the blocked accept() on Linux
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._accept.join(5)
        for thread in self._threads:
            thread.join(5)
        for conn in conns:
            conn.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.close()


def host_port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
