"""Fuzzing every endpoint of the real server: never a crash, never a 5xx but bind errors.

Runs its own EmbeddedServer (the real manager and data path) rather than the
conformance URL, because the fuzzer creates and deletes proxies with arbitrary names.
``CHAOS_FUZZ_EXAMPLES`` raises the number of examples per test (150 by default) for a
deeper run.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from pytest_chaos.proxy import EmbeddedServer

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=int(os.environ.get("CHAOS_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Listen values that never make the server resolve a random host name (no DNS
# traffic) nor bind beyond loopback ("" would bind every interface).
LISTENS = [
    "127.0.0.1:0",
    "localhost:0",
    "[::1]:0",
    "127.0.0.1",
    "127.0.0.1:-1",
    "127.0.0.1:99999",
    "127.0.0.1:http",
    "not-an-address",
]
TOXIC_TYPES = [
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
    "noop",
    "LATENCY",
    "bogus",
    "",
]
ATTRIBUTE_NAMES = [
    "latency",
    "jitter",
    "rate",
    "delay",
    "timeout",
    "average_size",
    "size_variation",
    "bytes",
    "Latency",
    "unknown",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31, 2**63, 2**64, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, 1.5, -0.0, 1e308, 1e-300]),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
attributes = st.one_of(
    st.dictionaries(st.sampled_from(ATTRIBUTE_NAMES), json_values, max_size=4), json_values
)
proxy_bodies = st.fixed_dictionaries(
    # Always a listen, never null: a missing one means "" (every interface), as in Go.
    {
        "listen": st.one_of(
            st.sampled_from(LISTENS), scalars.filter(lambda v: not isinstance(v, str | None))
        )
    },
    optional={
        "name": st.one_of(st.sampled_from(["fz", "fz2", ""]), json_values),
        "upstream": st.one_of(st.sampled_from(["127.0.0.1:9", "", "x"]), json_values),
        "enabled": json_values,
        "NAME": st.just("fz3"),
    },
)
toxic_bodies = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.sampled_from(["t", "t2"]), json_values),
        "type": st.one_of(st.sampled_from(TOXIC_TYPES), json_values),
        "stream": st.one_of(st.sampled_from(["upstream", "DOWNSTREAM", "both", ""]), json_values),
        "toxicity": json_values,
        "attributes": attributes,
    },
)
raw_bodies = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"{",
            b"[",
            b"null",
            b"\xff\xfe\xfd",
            b'{"name": NaN}',
            b"[" * 5000,
            b'{"a": 1e999}',
            b"9" * 5000,
            b'"\xc3\x28"',
        ]
    ),
)
bodies = st.one_of(
    proxy_bodies.map(lambda d: json.dumps(d).encode()),
    toxic_bodies.map(lambda d: json.dumps(d).encode()),
    st.lists(proxy_bodies, max_size=3).map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda d: json.dumps(d).encode()),
    raw_bodies,
)
segments = st.one_of(
    st.sampled_from(["fz", "fz2", "fz3", "ghost", "t", "t2", "%20", "%ff", "..", "a%2Fb"]),
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"),
        min_size=1,
        max_size=12,
    ),
)
paths = st.one_of(
    st.sampled_from(["/proxies", "/populate", "/reset", "/version", "/", "/proxies/", ""]),
    segments.map(lambda p: f"/proxies/{p}"),
    segments.map(lambda p: f"/proxies/{p}/toxics"),
    segments.map(lambda p: f"/proxies/{p}/stats"),
    st.tuples(segments, segments).map(lambda pt: f"/proxies/{pt[0]}/toxics/{pt[1]}"),
    st.lists(segments, max_size=5).map(lambda s: "/" + "/".join(s)),
)
methods = st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS", "FROB"])
# Real endpoints on proxies that exist (``_ensure_base`` recreates them), so that most
# examples reach the body checks rather than a 404 or 405.
KNOWN = [
    ("POST", "/proxies"),
    ("POST", "/populate"),
    ("POST", "/reset"),
    ("POST", "/proxies/fz"),
    ("PATCH", "/proxies/fz"),
    ("DELETE", "/proxies/fz2"),
    ("POST", "/proxies/fz/toxics"),
    ("POST", "/proxies/fz2/toxics"),
    ("PATCH", "/proxies/fz/toxics/t"),
    ("POST", "/proxies/fz/toxics/t"),
    ("DELETE", "/proxies/fz/toxics/t"),
    ("GET", "/proxies/fz/stats"),
]
endpoints = st.one_of(
    st.sampled_from(KNOWN),
    st.sampled_from(KNOWN),
    st.sampled_from(KNOWN),
    st.tuples(methods, paths),
)


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(seed=1) as srv:
        yield srv


def _request(port: int, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path or "/", body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _assert_alive(port: int) -> None:
    status, body = _request(port, "GET", "/version", b"")
    assert status == 200 and json.loads(body)["version"] == "2.12.0"
    status, body = _request(port, "GET", "/proxies", b"")
    assert status == 200 and isinstance(json.loads(body), dict)


def _assert_not_5xx(status: int, body: bytes, what: str) -> None:
    if status < 500:
        return
    error: Any = json.loads(body).get("error", "")
    # The one allowed 5xx: a listener that cannot bind, worded like Go's net.Listen.
    assert status == 500 and error.startswith("listen tcp"), f"{what} -> {status} {body!r}"


def _ensure_base(port: int) -> None:
    for name in ("fz", "fz2"):
        body = {"name": name, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}
        _request(port, "POST", "/proxies", json.dumps(body).encode())
    toxic = {"name": "t", "type": "latency", "attributes": {"latency": 1}}
    _request(port, "POST", "/proxies/fz/toxics", json.dumps(toxic).encode())


@FUZZ
@given(endpoint=endpoints, body=bodies)
def test_any_request_is_answered_without_5xx(
    server: EmbeddedServer, endpoint: tuple[str, str], body: bytes
) -> None:
    method, path = endpoint
    _ensure_base(server.port)
    status, reply = _request(server.port, method, path, body)
    _assert_not_5xx(status, reply, f"{method} {path} {body[:80]!r}")
    if status >= 400 and method != "HEAD" and reply and status != 403:
        decoded = json.loads(reply)
        assert decoded["status"] == status and decoded["error"]
    _assert_alive(server.port)


@FUZZ
@given(
    toxic=toxic_bodies,
    update=st.fixed_dictionaries({}, optional={"toxicity": json_values, "attributes": attributes}),
)
def test_toxic_create_and_update_with_any_values(
    server: EmbeddedServer, toxic: dict[str, Any], update: dict[str, Any]
) -> None:
    port = server.port
    _request(port, "DELETE", "/proxies/fzt", b"")
    status, reply = _request(
        port,
        "POST",
        "/proxies",
        json.dumps({"name": "fzt", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}).encode(),
    )
    assert status == 201, reply
    status, reply = _request(port, "POST", "/proxies/fzt/toxics", json.dumps(toxic).encode())
    _assert_not_5xx(status, reply, f"create {toxic}")
    if status == 200:
        name = json.loads(reply)["name"]
        status, reply = _request(
            port,
            "PATCH",
            f"/proxies/fzt/toxics/{quote(name, safe='')}",
            json.dumps(update).encode(),
        )
        _assert_not_5xx(status, reply, f"update {update}")
        listing = json.loads(_request(port, "GET", "/proxies/fzt/toxics", b"")[1])
        assert [t["name"] for t in listing] == [name]
    _assert_alive(port)


@FUZZ
@given(data=st.binary(max_size=300))
def test_raw_bytes_on_the_socket_get_a_4xx_or_a_close(server: EmbeddedServer, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    if reply:
        status_line = reply.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 "), reply[:80]
        assert status_line[9:10] != b"5", reply[:200]
    _assert_alive(server.port)


def test_after_fuzzing_the_server_is_clean_and_answers(server: EmbeddedServer) -> None:
    # Whatever the fuzzers left, delete it all and check the server is still whole.
    names = json.loads(_request(server.port, "GET", "/proxies", b"")[1])
    for name in names:
        status, _ = _request(server.port, "DELETE", f"/proxies/{name}", b"")
        assert status == 204
    assert json.loads(_request(server.port, "GET", "/proxies", b"")[1]) == {}
