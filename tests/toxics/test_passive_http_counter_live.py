"""http_requests counts a keep-alive client's requests through a proxy with no HTTP
toxic (the passive counter of the upstream link); non-HTTP traffic is not counted and
goes through untouched."""

from __future__ import annotations

import http.client

import pytest

from pytest_chaos.checks import RetriesViolated, retries

from ._httpfixtures import Admin, Upstream

pytest.importorskip("redis")
pytest.importorskip("requests")
import redis
import requests


def _delta(before: dict[str, int], after: dict[str, int], *keys: str) -> dict[str, int]:
    return {key: after[key] - before[key] for key in keys}


def test_five_requests_on_one_keepalive_connection_count_five(
    admin: Admin, upstream: Upstream
) -> None:
    name, listen = admin.proxy(upstream.address)
    before = admin.stats(name)
    host, port = listen.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for i in range(5):
            conn.request("GET" if i % 2 else "POST", f"/k{i}", body=b"x" * i or None)
            response = conn.getresponse()
            assert response.status == 200
            response.read()
    finally:
        conn.close()
    after = admin.stats(name)
    assert _delta(before, after, "http_requests", "connections_accepted") == {
        "http_requests": 5,
        "connections_accepted": 1,  # what connections_accepted alone would have counted
    }
    assert [entry["path"] for entry in upstream.log()] == [f"/k{i}" for i in range(5)]


def test_a_requests_session_with_chunked_bodies_is_counted(
    admin: Admin, upstream: Upstream
) -> None:
    name, listen = admin.proxy(upstream.address)
    with requests.Session() as session:
        for i in range(3):
            body = (part for part in (b"chunk-", str(i).encode()))  # chunked
            assert session.post(f"http://{listen}/c{i}", data=body, timeout=10).ok
        assert session.get(f"http://{listen}/last", timeout=10).ok
    assert admin.stats(name)["http_requests"] == 4
    assert [entry["body"] for entry in upstream.log()][:3] == ["chunk-0", "chunk-1", "chunk-2"]


def test_retries_counts_http_requests_without_an_http_toxic(
    admin: Admin, upstream: Upstream
) -> None:
    name, listen = admin.proxy(upstream.address)
    session = requests.Session()

    def call() -> None:  # a client that tries three times on one pooled connection
        for _ in range(3):
            session.get(f"http://{listen}/retry", timeout=10)

    try:
        with pytest.raises(RetriesViolated, match=r"9 attempts .* for 3 calls = 3.0 per call"):
            retries(
                call,
                proxy=lambda: admin.stats(name),
                max_attempts_per_call=2,
                calls=3,
                counter="http_requests",
            )
    finally:
        session.close()


def test_redis_through_a_plain_proxy_is_not_counted_and_not_harmed(
    admin: Admin, redis_address: str
) -> None:
    name, listen = admin.proxy(redis_address)
    host, port = listen.rsplit(":", 1)
    client = redis.Redis(host=host, port=int(port), socket_timeout=10)
    try:
        assert client.ping() is True
        key = f"passive:{name}"
        big = b"GET / HTTP/1.1\r\n\r\n" * 50_000  # looks like HTTP, inside a Redis value
        assert client.set(key, big)
        assert client.get(key) == big
        assert client.delete(key) == 1
    finally:
        client.close()
    stats = admin.stats(name)
    assert stats["http_requests"] == 0
    assert stats["connections_accepted"] == 1
