"""HTTP toxics through the embedded proxy, against a real HTTP/1.1 server process.

The upstream (tests/toxics/_upstream.py) logs every request it receives, so each test
can count exactly what reached it, while the client sees what a user would see.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from collections.abc import Callable

import pytest

from ._httpfixtures import Admin, Upstream

pytest.importorskip("redis")
import redis

pytestmark = pytest.mark.usefixtures("http_parser")


def connect(listen: str) -> http.client.HTTPConnection:
    host, port = listen.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=10)


def call(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    conn.request(method, path, body=body)
    response = conn.getresponse()
    return response.status, response.read()


def test_error_share_is_within_statistical_bounds(admin: Admin, upstream: Upstream) -> None:
    name, listen = admin.proxy(upstream.address)
    admin.toxic(name, "http_error", status=503, rate=0.3, body="injected")
    conn = connect(listen)
    statuses = []
    try:
        for i in range(300):
            status, body = call(conn, "GET", f"/item/{i}")
            statuses.append(status)
            if status == 503:
                assert body == b"injected"
    finally:
        conn.close()
    errors = statuses.count(503)
    # Binomial(300, 0.3): mean 90, sd ~7.9; +-5 sd holds for any seed of a correct draw.
    assert 50 <= errors <= 130, errors
    assert set(statuses) == {200, 503}
    # Exactly the requests that were not answered by the proxy reached the upstream.
    assert len(upstream.log()) == statuses.count(200)
    stats = admin.stats(name)
    assert stats["http_requests"] == 300 and stats["http_responses"] == 300
    assert stats["connections_accepted"] == 1  # one keep-alive connection throughout


def test_duplicate_reaches_upstream_copies_times_client_sees_one(
    admin: Admin, upstream: Upstream
) -> None:
    name, listen = admin.proxy(upstream.address)
    admin.toxic(name, "http_duplicate", copies=3, method="POST")
    conn = connect(listen)
    try:
        status, body = call(conn, "POST", "/charge", b"order=1")
        assert (status, body) == (200, b"POST /charge #1 7")
        sock = conn.sock
        # The two extra answers were consumed: the next answer is the next request's.
        status, body = call(conn, "GET", "/after")
        assert (status, body) == (200, b"GET /after #4 0")
        assert conn.sock is sock  # the same keep-alive connection
    finally:
        conn.close()
    log = upstream.log()
    assert [(e["method"], e["path"], e["body"]) for e in log] == [
        ("POST", "/charge", "order=1")
    ] * 3 + [("GET", "/after", "")]
    ports = [e["port"] for e in log]
    # The original and the next request on the client's connection, each copy on its own.
    assert len(set(ports[:3])) == 3 and ports[3] == ports[0]


def test_chunked_request_bodies_are_duplicated_intact(admin: Admin, upstream: Upstream) -> None:
    name, listen = admin.proxy(upstream.address)
    admin.toxic(name, "http_duplicate", copies=2)
    payload = [bytes(range(256)) * 40, b"\r\n0\r\n\r\n", b"x" * 70_000, b"end"]
    conn = connect(listen)
    try:
        conn.request(
            "PUT", "/blob", body=iter(payload), encode_chunked=True,
            headers={"Transfer-Encoding": "chunked"},
        )  # fmt: skip
        response = conn.getresponse()
        assert response.status == 200
        response.read()
    finally:
        conn.close()
    log = upstream.log()
    expected = b"".join(payload).decode("latin-1")
    assert [e["body"] == expected for e in log] == [True, True]


def test_keep_alive_survives_errors_and_duplicates_in_turn(
    admin: Admin, upstream: Upstream
) -> None:
    name, listen = admin.proxy(upstream.address)
    admin.toxic(name, "http_error", status=500, path_prefix="/fail")
    admin.toxic(name, "http_duplicate", path_prefix="/twice")
    conn = connect(listen)
    try:
        results = [call(conn, "GET", p) for p in ["/fail", "/ok", "/twice", "/fail", "/ok"]]
        sock = conn.sock
        assert sock is not None
    finally:
        conn.close()
    assert [s for s, _ in results] == [500, 200, 200, 500, 200]
    assert [e["path"] for e in upstream.log()] == ["/ok", "/twice", "/twice", "/ok"]
    assert admin.stats(name)["connections_accepted"] == 1


def test_path_and_method_matching(admin: Admin, upstream: Upstream) -> None:
    name, listen = admin.proxy(upstream.address)
    admin.toxic(name, "http_error", status=418, method="DELETE,PUT", path_prefix="/api/v1")
    conn = connect(listen)
    cases = [
        ("DELETE", "/api/v1/x", 418), ("PUT", "/api/v1?q=1", 418), ("GET", "/api/v1/x", 200),
        ("DELETE", "/api/v2", 200), ("DELETE", "/other/api/v1", 200),
    ]  # fmt: skip
    try:
        got = [(m, p, call(conn, m, p)[0]) for m, p, _ in cases]
    finally:
        conn.close()
    assert got == cases
    assert len(upstream.log()) == 3


def test_pipelined_requests_keep_their_order(admin: Admin, upstream: Upstream) -> None:
    name, listen = admin.proxy(upstream.address)
    admin.toxic(name, "http_error", status=503, path_prefix="/b")
    host, port = listen.rsplit(":", 1)
    wire = b"".join(
        f"GET /{p} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for p in ["a", "b", "c", "b", "d"]
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(wire)
        received = b""
        while b"GET /d #3 0" not in received:  # the last answer
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    statuses = [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", received)]
    assert statuses == [200, 503, 200, 503, 200]
    assert [e["path"] for e in upstream.log()] == ["/a", "/c", "/d"]


def test_delay_holds_only_matching_requests(admin: Admin, upstream: Upstream) -> None:
    name, listen = admin.proxy(upstream.address)
    admin.toxic(name, "http_delay", delay=400, path_prefix="/slow")
    conn = connect(listen)
    try:
        call(conn, "GET", "/warm")
        t0 = time.perf_counter()
        call(conn, "GET", "/slow")
        slow = time.perf_counter() - t0
        t0 = time.perf_counter()
        call(conn, "GET", "/fast")
        fast = time.perf_counter() - t0
    finally:
        conn.close()
    # A delay can only be longer, never shorter, than asked; the bound below is loose.
    assert slow >= 0.39
    assert fast < slow


def test_removing_the_toxic_mid_connection_restores_plain_forwarding(
    admin: Admin, upstream: Upstream
) -> None:
    name, listen = admin.proxy(upstream.address)
    toxic = admin.toxic(name, "http_duplicate")
    conn = connect(listen)
    try:
        assert call(conn, "POST", "/one", b"1")[0] == 200
        admin.remove_toxic(name, toxic)
        assert call(conn, "POST", "/two", b"2")[0] == 200
    finally:
        conn.close()
    assert [e["path"] for e in upstream.log()] == ["/one", "/one", "/two"]


def test_toxic_added_on_the_downstream_stream_acts_on_requests_too(
    admin: Admin, upstream: Upstream
) -> None:
    name, listen = admin.proxy(upstream.address)
    admin.toxic(name, "http_error", stream="downstream", status=502)
    conn = connect(listen)
    try:
        assert call(conn, "GET", "/x")[0] == 502
    finally:
        conn.close()
    assert upstream.log() == []


def test_redis_through_http_toxics_passes_through_intact(admin: Admin, redis_address: str) -> None:
    name, listen = admin.proxy(redis_address)
    admin.toxic(name, "http_duplicate", copies=3)
    admin.toxic(name, "http_error", status=500)
    host, port = listen.rsplit(":", 1)
    client = redis.Redis(host=host, port=int(port), socket_timeout=10)
    try:
        key = f"h6:{name}"
        big = bytes(range(256)) * 4096  # 1 MiB, binary
        assert client.set(key, big)
        assert client.get(key) == big
        assert client.incr(f"{key}:n") == 1  # not duplicated
        assert client.incr(f"{key}:n") == 2
        assert client.delete(key, f"{key}:n") == 2
    finally:
        client.close()
    stats = admin.stats(name)
    assert stats["http_requests"] == 0
    assert stats["http_passthrough_connections"] == 1
    notes = admin.notes(name)
    assert [label for label, _ in notes] == ["http_passthrough"]
    assert "not HTTP" in str(notes[0][1]["reason"])


def test_toxicity_picks_whole_connections(admin: Admin, upstream: Upstream) -> None:
    """Toxicity is rolled once per connection for HTTP toxics: a connection has the
    fault on every request or on none, and both of its directions agree."""
    name, listen = admin.proxy(upstream.address)
    admin.toxic(name, "http_error", toxicity=0.5, status=503)
    per_connection = []
    for _ in range(30):
        conn = connect(listen)
        try:
            per_connection.append([call(conn, "GET", "/")[0] for _ in range(3)])
        finally:
            conn.close()
    assert all(len(set(statuses)) == 1 for statuses in per_connection), per_connection
    # Both kinds occur (all 30 alike has probability 2 * 0.5**30).
    assert {statuses[0] for statuses in per_connection} == {200, 503}


def test_a_plain_toxiproxy_client_drives_http_toxics(
    admin: Admin, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP toxics are ordinary toxic types of the API: toxiproxy-python adds them."""
    from toxiproxy import Toxiproxy
    from toxiproxy.api import APIConsumer

    host, port = admin.url.removeprefix("http://").rsplit(":", 1)
    # toxiproxy-python keeps the server address in class attributes.
    monkeypatch.setattr(APIConsumer, "host", host)
    monkeypatch.setattr(APIConsumer, "port", int(port))
    name, listen = admin.proxy(upstream.address)
    proxy = Toxiproxy().get_proxy(name)
    proxy.add_toxic(type="http_duplicate", stream="upstream", attributes={"copies": 2})
    conn = connect(listen)
    try:
        assert call(conn, "POST", "/t", b"1")[0] == 200
    finally:
        conn.close()
    assert [t.type for t in proxy.toxics().values()] == ["http_duplicate"]
    assert len(upstream.log()) == 2


def _in_background(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    thread.start()
    return thread, result


def test_changing_other_toxics_keeps_a_delayed_request_delivered_once(
    admin: Admin, upstream: Upstream
) -> None:
    name, listen = admin.proxy(upstream.address)
    admin.toxic(name, "http_delay", delay=800)
    conn = connect(listen)
    try:
        started = time.perf_counter()
        thread, result = _in_background(lambda: call(conn, "POST", "/held", b"x"))
        time.sleep(0.3)  # the request is now held by the delay
        latency = admin.toxic(name, "latency", stream="downstream", latency=1)  # rebuild
        admin.remove_toxic(name, latency)  # and again
        thread.join(10)
        elapsed = time.perf_counter() - started
        assert result == [(200, b"POST /held #1 1")]
        assert call(conn, "GET", "/next") == (200, b"GET /next #2 0")
    finally:
        conn.close()
    assert elapsed >= 0.75  # the delay survived the rebuilds
    assert [e["path"] for e in upstream.log()] == ["/held", "/next"]


def test_healing_a_delay_lets_held_requests_go_and_other_http_toxics_keep_working(
    admin: Admin, upstream: Upstream
) -> None:
    name, listen = admin.proxy(upstream.address)
    delay = admin.toxic(name, "http_delay", delay=5000, path_prefix="/slow")
    admin.toxic(name, "http_error", status=503, path_prefix="/err")
    conn = connect(listen)
    try:
        started = time.perf_counter()
        thread, result = _in_background(lambda: call(conn, "GET", "/slow"))
        time.sleep(0.3)
        admin.remove_toxic(name, delay)
        thread.join(10)
        assert time.perf_counter() - started < 4  # released at the heal, not after 5 s
        assert result == [(200, b"GET /slow #1 0")]
        assert call(conn, "GET", "/err")[0] == 503
        assert call(conn, "GET", "/ok") == (200, b"GET /ok #2 0")
    finally:
        conn.close()
    assert [e["path"] for e in upstream.log()] == ["/slow", "/ok"]


def _raw(listen: str) -> socket.socket:
    host, port = listen.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_expect_100_continue_through_error_and_duplicate(admin: Admin, upstream: Upstream) -> None:
    name, listen = admin.proxy(upstream.address)
    admin.toxic(name, "http_error", status=507, path_prefix="/full")
    admin.toxic(name, "http_duplicate", path_prefix="/twice")
    head = "PUT {} HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    with _raw(listen) as sock:
        for path, final in [("/full", b"HTTP/1.1 507 "), ("/twice", b"HTTP/1.1 200 ")]:
            sock.sendall(head.format(path).encode())
            # The client may send its body only after "100 Continue" (from the proxy for
            # an injected error, from the server otherwise).
            assert _read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 100 Continue\r\n")
            sock.sendall(b"hello")
            answer = _read_until(sock, b"\r\n\r\n")
            assert answer.startswith(final), answer
            match = re.search(rb"(?i)content-length: (\d+)", answer)
            assert match is not None, answer
            length = int(match.group(1))
            body = answer.split(b"\r\n\r\n", 1)[1]
            while len(body) < length:
                body += sock.recv(65536)
    assert [(e["path"], e["body"]) for e in upstream.log()] == [("/twice", "hello")] * 2


def test_http_1_0_client_gets_the_error_and_the_close(admin: Admin, upstream: Upstream) -> None:
    name, listen = admin.proxy(upstream.address)
    admin.toxic(name, "http_error", status=500, body="x")
    with _raw(listen) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):  # ends when the proxy closes
            data += chunk
    assert data.startswith(b"HTTP/1.1 500 ") and data.endswith(b"\r\n\r\nx")
    assert b"connection: close" in data.lower()
    assert upstream.log() == []


def test_a_toxic_added_to_an_idle_keep_alive_connection_applies_to_its_next_request(
    admin: Admin, upstream: Upstream
) -> None:
    """Applications keep pooled connections open: a fault injected between two requests
    must reach the connection the pool already holds."""
    name, listen = admin.proxy(upstream.address)
    conn = connect(listen)
    try:
        assert call(conn, "GET", "/before")[0] == 200
        toxic = admin.toxic(name, "http_error", status=503)
        assert call(conn, "GET", "/during")[0] == 503
        admin.remove_toxic(name, toxic)
        assert call(conn, "GET", "/after")[0] == 200
    finally:
        conn.close()
    assert [e["path"] for e in upstream.log()] == ["/before", "/after"]
    assert admin.stats(name)["connections_accepted"] == 1
