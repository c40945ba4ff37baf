"""The passive HTTP/1.x request counter of the upstream link (proxy/_http_count.py):
requests counted however the bytes are cut into reads; anything else is given up on."""

from __future__ import annotations

import pytest

from pytest_chaos.proxy._http_count import RequestCounter
from pytest_chaos.proxy._link import ProxyStats

GET = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nGET / HTTP/"
CHUNKED = (
    b"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nGET /\r\nc\r\nHTTP/1.1\r\n\r\n\r\n0\r\nX-Trailer: t\r\n\r\n"
)
OLD = b"GET /old HTTP/1.0\r\n\r\n"


def _count(stream: bytes, sizes: list[int] | None = None) -> tuple[int, bool]:
    stats = ProxyStats()
    counter = RequestCounter(stats)
    alive = True
    pos = 0
    for size in sizes or [len(stream)]:
        alive = counter.feed(memoryview(stream[pos : pos + size]))
        pos += size
        if not alive:
            break
    return stats.http_requests, alive


@pytest.mark.parametrize("read_size", [1, 2, 3, 7, 64, 100_000])
def test_requests_are_counted_however_the_reads_cut_them(read_size: int) -> None:
    stream = GET + POST + CHUNKED + b"\r\n" + OLD + GET  # bodies that look like requests
    sizes = [read_size] * (len(stream) // read_size + 1)
    assert _count(stream, sizes) == (5, True)


def test_a_large_body_is_skipped_by_its_length() -> None:
    head = b"POST /up HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n"
    body = b"\x00" * 10_000_000  # binary: would end the scan if it were scanned
    assert _count(head + body + GET, [len(head), *[65536] * 153, 10_000_000]) == (2, True)


@pytest.mark.parametrize(
    "stream",
    [
        b"*1\r\n$4\r\nPING\r\n",  # Redis
        b"PING\r\n",  # Redis inline
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # TLS ClientHello
        b"\x00\x00\x00\x08\x04\xd2\x16\x2f",  # PostgreSQL SSLRequest
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # HTTP/2 preface
        b"GET /x HTTP/1.1\r\nbad header line\r\n\r\n",
        b"GET /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"A" * 40,  # no method is that long
    ],
    ids=["redis", "inline", "tls", "postgres", "h2", "header", "lengths", "long"],
)
def test_anything_else_is_given_up_on_without_a_count(stream: bytes) -> None:
    assert _count(stream, [1] * len(stream)) == (0, False)


def test_it_gives_up_at_the_first_non_http_read_and_keeps_what_it_counted() -> None:
    assert _count(GET + GET + b"\x00garbage\r\n" + GET) == (2, False)
