"""Real sockets through a ProxyManager whose event loop runs in a background thread.

Test code is plain blocking socket code, like a system under test; the proxy and the
upstream servers live on the loop thread. ``api`` is the other half: the admin API's real
HTTP layer over a fake manager (``_fake.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from pytest_chaos.proxy._api import AdminApi
from pytest_chaos.proxy._core import Proxy, ProxyManager
from pytest_chaos.proxy._http import HttpServer

from ._fake import FakeManager

T = TypeVar("T")
_names = itertools.count()


class LoopThread:
    """An asyncio loop in a daemon thread; ``run`` executes a coroutine on it."""

    def __init__(self, kind: str = "asyncio") -> None:
        self.loop: asyncio.AbstractEventLoop
        if kind == "uvloop":
            import uvloop

            self.loop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name="proxy-test-loop", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Awaitable[T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return future.result(timeout)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a plain function on the loop thread (ProxyManager is not thread-safe)."""

        async def wrapper() -> T:
            return fn(*args)

        return self.run(wrapper())

    def close(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.run(drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Upstream:
    """An asyncio TCP server on the loop thread running ``handler(reader, writer)``."""

    def __init__(self, lt: LoopThread, handler: Callable[..., Awaitable[None]]) -> None:
        self.lt = lt
        self.writers: set[asyncio.StreamWriter] = set()

        async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.add(writer)
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.CancelledError):
                pass
            except RuntimeError:  # uvloop: writing to a transport the peer reset
                pass
            finally:
                self.writers.discard(writer)
                writer.close()

        async def start() -> asyncio.Server:
            return await asyncio.start_server(wrapped, "127.0.0.1", 0, backlog=4096)

        self.server = lt.run(start())
        self.port: int = self.server.sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            for writer in list(self.writers):
                writer.transport.abort()
            await asyncio.sleep(0.01)

        self.lt.run(stop())


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo until EOF, then half-close back."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_thread(request: pytest.FixtureRequest) -> Iterator[LoopThread]:
    """The proxy's loop: asyncio's, and uvloop's (the ``fast`` extra) when installed."""
    if request.param == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is the optional 'fast' extra")
    lt = LoopThread(request.param)
    yield lt
    lt.close()


@pytest.fixture
def manager(loop_thread: LoopThread) -> Iterator[ProxyManager]:
    async def make() -> ProxyManager:
        return ProxyManager(seed=1234, dial_timeout=2.0)

    m = loop_thread.run(make())
    yield m
    loop_thread.run(m.close())


@pytest.fixture
def upstream(loop_thread: LoopThread) -> Iterator[Callable[..., Upstream]]:
    made: list[Upstream] = []

    def make(handler: Callable[..., Awaitable[None]] = echo) -> Upstream:
        up = Upstream(loop_thread, handler)
        made.append(up)
        return up

    yield make
    for up in made:
        up.close()


class Helper:
    """Create proxies and toxics, and connect, from the test thread."""

    def __init__(self, lt: LoopThread, manager: ProxyManager) -> None:
        self.lt = lt
        self.manager = manager
        self.sockets: list[socket.socket] = []

    def proxy(self, upstream: str, **kwargs: Any) -> Proxy:
        name = f"p{next(_names)}"
        return self.lt.run(self.manager.create(name, "127.0.0.1:0", upstream, **kwargs))

    def toxic(self, proxy: Proxy, type: str, stream: str = "downstream", **attrs: object) -> str:
        state = self.lt.call(
            lambda: self.manager.add_toxic(
                proxy.name, type=type, name=None, stream=stream, toxicity=1.0, attributes=attrs
            )
        )
        return state.name

    def remove(self, proxy: Proxy, toxic: str) -> None:
        self.lt.call(self.manager.remove_toxic, proxy.name, toxic)

    def stats(self, proxy: Proxy) -> dict[str, Any]:
        return self.lt.call(self.manager.stats, proxy.name)

    def connect(self, proxy: Proxy, timeout: float = 10.0) -> socket.socket:
        host, port = proxy.listen.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sockets.append(sock)
        return sock

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def helper(loop_thread: LoopThread, manager: ProxyManager) -> Iterator[Helper]:
    h = Helper(loop_thread, manager)
    yield h
    h.close()


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Read exactly n bytes (or fewer at EOF)."""
    chunks = []
    while n > 0:
        chunk = sock.recv(min(n, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_all(sock: socket.socket) -> bytes:
    """Read until EOF."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def assert_closed(sock: socket.socket) -> None:
    """The peer closed the connection: EOF (FIN) or a reset, and no more data."""
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(10) == b""


@dataclass
class ApiUnderTest:
    host: str
    port: int
    manager: FakeManager
    http: HttpServer

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """One request on a fresh connection: (status, decoded body, headers)."""
        if body is not None and not isinstance(body, bytes | str):
            body = json.dumps(body)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            raw = resp.read()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        decoded: Any = raw
        if hdrs.get("content-type", "").startswith("application/json") and raw:
            decoded = json.loads(raw)
        return resp.status, decoded, hdrs


@pytest.fixture
def api() -> Iterator[ApiUnderTest]:
    manager = FakeManager()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        server = HttpServer(AdminApi(manager).handle)  # type: ignore[arg-type]
        await server.start("127.0.0.1", 0)
        stop = asyncio.Event()
        holder.update(loop=asyncio.get_running_loop(), stop=stop, server=server)
        ready.set()
        try:
            await stop.wait()
        finally:
            await server.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    server: HttpServer = holder["server"]
    host, port = server.address
    try:
        yield ApiUnderTest(host, port, manager, server)
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
        assert not thread.is_alive()
