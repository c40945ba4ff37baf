"""ChaosProxy.reset_peer per stream: does the client's write reach the server?

The docstring and docs/faults.md promise: with ``downstream`` (the default) it does and
the client gets a reset instead of the answer; with ``upstream`` or ``both`` it does not.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from pytest_chaos.experiment import ChaosProxy


class _Recorder(socketserver.BaseRequestHandler):
    received: list[bytes]

    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.server.received.append(data)  # type: ignore[attr-defined]
                self.request.sendall(data)
        except OSError:
            pass


@pytest.fixture
def recorder() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Recorder)
    server.daemon_threads = True
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_the_docstring_says_where_the_write_goes() -> None:
    doc = ChaosProxy.reset_peer.__doc__ or ""
    assert 'stream="downstream"' in doc and "still reaches the" in doc
    assert '``"upstream"`` or\n        ``"both"`` the write does not reach the server' in doc


@pytest.mark.parametrize(
    ("stream", "reaches_server"),
    [("downstream", True), ("upstream", False), ("both", False)],
)
@pytest.mark.chaos(blast_radius=["server"])
def test_reset_peer_per_stream(chaos, recorder, stream: str, reaches_server: bool) -> None:
    port = recorder.server_address[1]
    proxy = chaos.proxy("server", upstream=f"127.0.0.1:{port}")
    with proxy.reset_peer(stream=stream):
        with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
            sock.sendall(b"order 1")
            with pytest.raises(ConnectionResetError):
                sock.recv(64)
        if reaches_server:  # wait for it, without a fixed sleep
            deadline = time.monotonic() + 5
            while not recorder.received and time.monotonic() < deadline:
                time.sleep(0.02)
        else:
            time.sleep(0.3)  # what would arrive has had the time to
    assert (recorder.received == [b"order 1"]) is reaches_server
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
        sock.sendall(b"after heal")  # healed: the server answers again
        assert sock.recv(64) == b"after heal"
