"""Shared helpers for the plugin's pytester tests.

``chaos_pytester`` is a pytester whose conftest gives the inner tests an ``echo``
fixture: a real TCP echo server on loopback, so faults are observed on real bytes.
``external_server`` is an EmbeddedServer started outside the inner run, standing in
for an existing Toxiproxy (``--toxiproxy-url``), so the tests can inspect the server
after the inner run ended.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_chaos.client import ToxiproxyClient
from pytest_chaos.proxy import EmbeddedServer

ECHO_CONFTEST = '''
import socket
import socketserver
import threading
import time

import pytest


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class EchoServer:
    def __init__(self):
        self._srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
        self._srv.daemon_threads = True
        self._srv.block_on_close = True
        self.address = "127.0.0.1:%d" % self._srv.server_address[1]
        self._thread = threading.Thread(target=self._srv.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @staticmethod
    def rtt(address, payload=b"ping"):
        """Seconds for one echo round trip through ``address``."""
        host, port = address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed after %r" % got)
                got += chunk
            return time.monotonic() - started

    def close(self):
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()
'''


@pytest.fixture
def chaos_pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester with the ``echo`` fixture in its conftest."""
    pytester.makeconftest(ECHO_CONFTEST)
    return pytester


@pytest.fixture
def external_server() -> Iterator[tuple[str, ToxiproxyClient]]:
    """An EmbeddedServer run outside the inner pytest, and a client for it."""
    with (
        EmbeddedServer(host="127.0.0.1", port=0) as server,
        ToxiproxyClient(server.url, embedded=True) as client,
    ):
        yield server.url, client
