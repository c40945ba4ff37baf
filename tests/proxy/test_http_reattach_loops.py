"""An HTTP toxic removed mid-message and added again acts again, on each event loop.

The link feeds what it writes to the HTTP session's watch on three paths (the read
written at once, the chain's hand-back, the chain's output); the asyncio loop writes
views of the shared read buffer, uvloop copies. tests/toxics/test_http_reattach.py
covers the clients and framings through the embedded server; this runs the two core
cases on both loops with raw sockets.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable

from pytest_chaos.proxy._core import Proxy

from .conftest import Helper, Upstream, recv_exactly

BODY = bytes(i * 7 % 251 for i in range(200_000))


class Origin:
    """A keep-alive HTTP/1.1 server: Content-Length requests; ``/big`` answers a chunked
    body in two halves, the second once ``go`` is set."""

    def __init__(self) -> None:
        self.heads = threading.Semaphore(0)
        self.half_sent = threading.Event()
        self.go = threading.Event()
        self.got: list[tuple[str, bytes]] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split()[1]
            self.heads.release()
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            body = await reader.readexactly(length)
            self.got.append((path, body))
            if path == "/big":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                writer.write(b"%x\r\n%s\r\n" % (100_000, BODY[:100_000]))
                await writer.drain()
                self.half_sent.set()
                await asyncio.get_running_loop().run_in_executor(None, self.go.wait, 10)
                writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (100_000, BODY[100_000:]))
            else:
                answer = b"%s %d" % (path.encode(), len(body))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(answer))
                writer.write(answer)
            await writer.drain()


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One response, Content-Length or chunked framed."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        assert byte, "closed before a response"
        head += byte
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    if fields.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            line = b""
            while not line.endswith(b"\r\n"):
                line += sock.recv(1)
            size = int(line, 16)
            body += recv_exactly(sock, size)
            assert recv_exactly(sock, 2) == b"\r\n"
            if size == 0:
                return status, body
    return status, recv_exactly(sock, int(fields.get("content-length", "0")))


def get(sock: socket.socket, path: str) -> tuple[int, bytes]:
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    return read_response(sock)


def add_error(helper: Helper, proxy: Proxy) -> str:
    return helper.toxic(proxy, "http_error", stream="upstream", status=503, path_prefix="/fail")


def test_removed_mid_request_body_and_added_again(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    origin = Origin()
    up = upstream(origin)
    proxy = helper.proxy(up.address)
    toxic = add_error(helper, proxy)
    sock = helper.connect(proxy)
    sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(BODY))
    sock.sendall(BODY[:50_000])
    assert origin.heads.acquire(timeout=10)
    helper.remove(proxy, toxic)
    sock.sendall(BODY[50_000:])
    assert read_response(sock) == (200, b"/upload 200000")
    add_error(helper, proxy)
    assert get(sock, "/fail")[0] == 503
    assert get(sock, "/after") == (200, b"/after 0")
    assert [path for path, _ in origin.got] == ["/upload", "/after"]
    assert origin.got[0][1] == BODY


def test_removed_mid_chunked_response_and_added_again(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    origin = Origin()
    up = upstream(origin)
    proxy = helper.proxy(up.address)
    toxic = add_error(helper, proxy)
    sock = helper.connect(proxy)
    expected = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n" % (100_000, BODY[:100_000])
        + b"%x\r\n%s\r\n0\r\n\r\n" % (100_000, BODY[100_000:])
    )
    try:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        got = recv_exactly(sock, 1000)  # the answer is in transfer through the proxy
        assert origin.half_sent.wait(10)
        helper.remove(proxy, toxic)
    finally:
        origin.go.set()
    assert got + recv_exactly(sock, len(expected) - len(got)) == expected
    add_error(helper, proxy)
    assert get(sock, "/fail")[0] == 503
    assert get(sock, "/after") == (200, b"/after 0")
    stats = helper.stats(proxy)
    assert stats["http_passthrough_connections"] == 0
