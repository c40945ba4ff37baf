"""http_requests stays exact while the passive counter rests: an HTTP toxic's session
counts the requests it parses as they are read, and the counter resumes where the
session stands when the toxic goes (even mid-body) or the stream stops being HTTP to
the session (an Upgrade request)."""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable

import pytest

from pytest_chaos.proxy._core import Proxy

from .conftest import Helper, Upstream, recv_exactly

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def http_ok(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[bytes]
) -> None:
    """Answer every request (Content-Length or chunked body read first) with ANSWER;
    note each request line in ``seen``."""
    while True:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
        except asyncio.IncompleteReadError:
            return
        seen.append(head.split(b"\r\n", 1)[0])
        if b"transfer-encoding: chunked" in head:
            while size := int((await reader.readline()).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            while await reader.readline() not in (b"\r\n", b""):
                pass  # trailers
        elif match := re.search(rb"content-length: *(\d+)", head):
            await reader.readexactly(int(match.group(1)))
        writer.write(ANSWER)
        await writer.drain()


def _state(helper: Helper, proxy: Proxy) -> list[tuple[bool, bool]]:
    """Per connection: (the passive counter counts, an HTTP session counts instead)."""
    return helper.lt.call(
        lambda: [
            (c.up.http is not None, c.up.http_source is not None)
            for c in proxy.connections
            if c.up is not None
        ]
    )


@pytest.mark.parametrize("parser", ["scan", "h11"])
def test_requests_are_counted_once_each_across_hand_overs(
    helper: Helper,
    upstream: Callable[..., Upstream],
    monkeypatch: pytest.MonkeyPatch,
    parser: str,
) -> None:
    # Only the scanner can say where the stream stands: with h11 the counter never rests.
    monkeypatch.setenv("PYTEST_CHAOS_HTTP_PARSER", parser)
    resting = [(False, True)] if parser == "scan" else [(True, False)]
    seen: list[bytes] = []
    proxy = helper.proxy(upstream(functools.partial(http_ok, seen=seen)).address)
    sock = helper.connect(proxy)

    def call(*parts: bytes, answers: int = 1) -> None:
        for i, part in enumerate(parts):
            if i:
                time.sleep(0.05)
            sock.sendall(part)
        assert recv_exactly(sock, answers * len(ANSWER)) == answers * ANSWER

    get = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    call(get)
    call(get)
    assert _state(helper, proxy) == [(True, False)]

    toxic = helper.toxic(proxy, "http_error", stream="upstream", path_prefix="/nothing")
    call(get)
    call(get)
    assert _state(helper, proxy) == resting  # the session counts meanwhile
    call(
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
        b"c\r\n0\r\n\r\n",
    )
    call(b"POST /l HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123", b"456789")
    call(get + get[:10], get[10:], answers=2)  # pipelined, the second cut
    assert _state(helper, proxy) == resting
    # A request asking for another protocol: the session stops parsing after it, and
    # the counter takes the requests that follow.
    call(get.replace(b"\r\n\r\n", b"\r\nUpgrade: other\r\n\r\n"))
    assert _state(helper, proxy) == [(True, False)]
    call(get)
    call(get)
    assert helper.stats(proxy)["http_requests"] == len(seen) == 11

    # A second connection: the toxic goes in the middle of a body, the counter resumes
    # there (the change reaches the idle link with its next read).
    sock.close()
    sock = helper.connect(proxy)
    call(get)
    assert _state(helper, proxy) == resting
    sock.sendall(b"POST /m HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123")
    time.sleep(0.1)
    helper.remove(proxy, toxic)
    call(b"GET /x")  # the rest of the body: looks like a request, is not one
    assert _state(helper, proxy) == [(True, False)]
    call(get)
    assert helper.stats(proxy)["http_requests"] == len(seen) == 14
