"""circuit_breaker under down(): refused connections never reach the proxy's counters,
so the check cannot judge a breaker and must say so instead of passing."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from pytest_chaos.checks import CircuitBreakerViolated, circuit_breaker
from pytest_chaos.errors import CheckError

pytestmark = pytest.mark.chaos(blast_radius=["echo"])


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


@pytest.fixture
def echo_address() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _plain_call(proxy):
    """A client without any breaker: one connection per call."""

    def call() -> bytes:
        with socket.create_connection((proxy.host, proxy.port), timeout=0.3) as sock:
            sock.sendall(b"ping")
            return sock.recv(16)

    return call


def test_under_down_a_client_without_breaker_does_not_pass(chaos, echo_address) -> None:
    p = chaos.proxy("echo", upstream=echo_address)
    with p.down(), pytest.raises(CheckError) as info:
        chaos.circuit_breaker(_plain_call(p), proxy=p, opens_within_calls=3)
    message = str(info.value)
    assert "down() refuses connections before the proxy counts them" in message
    assert "timeout()" in message
    assert "steady_state/observe" in message and "recovers" in message
    assert "watch_breaker" in message


def test_the_same_client_under_timeout_is_judged_and_fails(chaos, echo_address) -> None:
    p = chaos.proxy("echo", upstream=echo_address)
    with p.timeout(), pytest.raises(CircuitBreakerViolated, match="did not open within 3"):
        chaos.circuit_breaker(_plain_call(p), proxy=p, opens_within_calls=3, open_calls=2)


def test_the_two_phases_are_in_the_public_docstring(chaos) -> None:
    for doc in (circuit_breaker.__doc__ or "", chaos.circuit_breaker.__doc__ or ""):
        assert "1. Opening:" in doc and "2. Closing" in doc
        assert "looks open" in doc and "half-open trial" in doc
        assert "module docstring" not in doc
