"""Readiness probes against scripted servers: what a ready and a not-ready server say."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from pytest_chaos.services._probe import postgres_ready, redis_ready, tcp_ready, wait_until


@pytest.fixture
def scripted() -> Iterator[Callable[[bytes], int]]:
    """Start a one-shot server that answers its first read with the given bytes."""
    listeners: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def start(answer: bytes) -> int:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        listeners.append(sock)

        def serve() -> None:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                if answer:
                    conn.sendall(answer)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return int(sock.getsockname()[1])

    yield start
    for sock in listeners:
        sock.close()
    for thread in threads:
        thread.join(timeout=5)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_redis_ready_wants_pong(scripted) -> None:
    assert redis_ready("127.0.0.1", scripted(b"+PONG\r\n"))
    assert not redis_ready("127.0.0.1", scripted(b"-LOADING Redis is loading\r\n"))
    assert not redis_ready("127.0.0.1", _closed_port())


def test_postgres_ready_wants_an_authentication_request(scripted) -> None:
    assert postgres_ready("127.0.0.1", scripted(b"R\x00\x00\x00\x08\x00\x00\x00\x00"), "u", "d")
    starting = b"E\x00\x00\x00\x30SFATAL\x00Mthe database system is starting up\x00\x00"
    assert not postgres_ready("127.0.0.1", scripted(starting), "u", "d")
    assert not postgres_ready("127.0.0.1", _closed_port(), "u", "d")


def test_tcp_ready(scripted) -> None:
    assert tcp_ready("127.0.0.1", scripted(b""))
    assert not tcp_ready("127.0.0.1", _closed_port())


def test_wait_until_stops_early_when_the_server_died() -> None:
    calls: list[int] = []

    def probe() -> bool:
        calls.append(1)
        return False

    assert not wait_until(probe, timeout=60, alive=lambda: False)
    assert len(calls) == 1
    assert wait_until(lambda: True, timeout=0)
