"""Each toxic's effect on real sockets. Timing bounds are generous or relative."""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Callable

import pytest

from pytest_chaos.proxy._core import ProxyManager

from .conftest import Helper, LoopThread, Upstream, recv_all, recv_exactly


def _rtt(sock: socket.socket, n: int = 5) -> float:
    times = []
    for _ in range(n):
        start = time.monotonic()
        sock.sendall(b"p")
        assert recv_exactly(sock, 1) == b"p"
        times.append(time.monotonic() - start)
    return statistics.median(times)


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_delays_each_round_trip(
    helper: Helper, upstream: Callable[..., Upstream], stream: str
) -> None:
    proxy = helper.proxy(upstream().address)
    sock = helper.connect(proxy)
    base = _rtt(sock)
    helper.toxic(proxy, "latency", stream, latency=200)
    slow = _rtt(sock, 3)
    assert slow >= 0.195
    assert slow - base < 0.2 + 0.5  # generous: a busy machine adds, never removes


def test_several_latencies_add_up(helper: Helper, upstream: Callable[..., Upstream]) -> None:
    proxy = helper.proxy(upstream().address)
    helper.toxic(proxy, "latency", "upstream", latency=100)
    helper.toxic(proxy, "latency", "downstream", latency=100)
    sock = helper.connect(proxy)
    assert _rtt(sock, 3) >= 0.195


def test_latency_does_not_reduce_throughput(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    async def blast(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1)
        writer.write(b"x" * 2_000_000)
        await writer.drain()

    proxy = helper.proxy(upstream(blast).address)
    helper.toxic(proxy, "latency", latency=300)
    sock = helper.connect(proxy)
    start = time.monotonic()
    sock.sendall(b"go")
    data = recv_exactly(sock, 2_000_000)
    elapsed = time.monotonic() - start
    assert len(data) == 2_000_000
    # each chunk is delayed from its own read, not after the previous one: the whole
    # transfer takes about one latency, not one latency per chunk
    assert 0.3 <= elapsed < 2.5


def test_bandwidth_within_ten_percent(helper: Helper, upstream: Callable[..., Upstream]) -> None:
    size = 200_000

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1)
        writer.write(b"b" * size)
        await writer.drain()

    proxy = helper.proxy(upstream(send).address)
    helper.toxic(proxy, "bandwidth", rate=100)  # 100 KB/s: 2 s for 200 KB
    sock = helper.connect(proxy)
    sock.sendall(b"go")
    first = sock.recv(65536)
    t_first = time.monotonic()
    got = len(first) + len(recv_exactly(sock, size - len(first)))
    elapsed = time.monotonic() - t_first
    assert got == size
    rate = (size - len(first)) / elapsed / 1000
    assert 90 <= rate <= 110, f"{rate:.1f} KB/s"


def test_reset_peer_gives_the_client_econnreset(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    proxy = helper.proxy(upstream().address)
    helper.toxic(proxy, "reset_peer", "upstream", timeout=100)
    sock = helper.connect(proxy)
    sock.sendall(b"hello")
    start = time.monotonic()
    with pytest.raises(ConnectionResetError):
        data = sock.recv(10)
        assert data == b"", "no data may come through"
        sock.recv(10)
    assert time.monotonic() - start >= 0.09


def test_timeout_drops_data_and_closes_after_idle_time(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    proxy = helper.proxy(upstream().address)
    sock = helper.connect(proxy)
    sock.sendall(b"a")
    assert recv_exactly(sock, 1) == b"a"
    helper.toxic(proxy, "timeout", timeout=400)
    start = time.monotonic()
    sock.sendall(b"dropped")  # echoed by the server, dropped by the downstream toxic
    assert recv_all(sock) == b""  # nothing arrives, then the close
    elapsed = time.monotonic() - start
    assert 0.35 <= elapsed < 3.0


def test_timeout_zero_holds_forever_and_removal_closes(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    proxy = helper.proxy(upstream().address)
    name = helper.toxic(proxy, "timeout", "upstream", timeout=0)
    sock = helper.connect(proxy)
    sock.sendall(b"lost")
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sock.recv(10)
    sock.settimeout(10)
    helper.remove(proxy, name)
    # the stream lost bytes, so the connection is closed rather than resumed
    assert recv_all(sock) == b""
    fresh = helper.connect(proxy)
    fresh.sendall(b"fine")
    assert recv_exactly(fresh, 4) == b"fine"


def test_slow_close_delays_the_close(helper: Helper, upstream: Callable[..., Upstream]) -> None:
    async def hello_bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()

    proxy = helper.proxy(upstream(hello_bye).address)
    helper.toxic(proxy, "slow_close", delay=500)
    sock = helper.connect(proxy)
    start = time.monotonic()
    assert recv_exactly(sock, 5) == b"hello"
    got_data = time.monotonic() - start
    assert sock.recv(10) == b""
    closed = time.monotonic() - start
    assert got_data < 0.4
    assert closed >= 0.48


def test_limit_data_cuts_at_exactly_n_bytes(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(10):
            writer.write(b"0123456789" * 100)
            await writer.drain()
        await reader.read()

    proxy = helper.proxy(upstream(send).address)
    helper.toxic(proxy, "limit_data", bytes=1234)
    sock = helper.connect(proxy)
    assert recv_all(sock) == (b"0123456789" * 200)[:1234]


def test_slicer_keeps_every_byte(helper: Helper, upstream: Callable[..., Upstream]) -> None:
    proxy = helper.proxy(upstream().address)
    helper.toxic(proxy, "slicer", "upstream", average_size=7, size_variation=5, delay=10)
    helper.toxic(proxy, "slicer", "downstream", average_size=100, size_variation=99)
    sock = helper.connect(proxy)
    payload = bytes(range(256)) * 200
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload


def test_toxic_added_to_an_open_connection_changes_it(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    proxy = helper.proxy(upstream().address)
    sock = helper.connect(proxy)
    fast = _rtt(sock)
    name = helper.toxic(proxy, "latency", latency=300)
    assert _rtt(sock, 2) >= 0.295
    helper.remove(proxy, name)
    assert _rtt(sock) < fast + 0.25


def test_removing_a_toxic_releases_held_data_in_order(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    proxy = helper.proxy(upstream().address)
    name = helper.toxic(proxy, "latency", latency=60_000)  # a minute: only removal frees it
    sock = helper.connect(proxy)
    sock.sendall(b"first ")
    time.sleep(0.1)
    sock.sendall(b"second")
    time.sleep(0.2)
    helper.remove(proxy, name)
    assert recv_exactly(sock, 12) == b"first second"


def test_toxicity_zero_leaves_connections_alone(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    proxy = helper.proxy(upstream().address)
    helper.lt.call(
        lambda: helper.manager.add_toxic(
            proxy.name,
            type="latency",
            name="never",
            stream="downstream",
            toxicity=0.0,
            attributes={"latency": 2000},
        )
    )
    sock = helper.connect(proxy)
    assert _rtt(sock, 3) < 1.0


def test_timeout_added_to_an_idle_connection_closes_it(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    proxy = helper.proxy(upstream().address)
    sock = helper.connect(proxy)
    sock.sendall(b"a")
    assert recv_exactly(sock, 1) == b"a"
    start = time.monotonic()
    helper.toxic(proxy, "timeout", "upstream", timeout=300)  # no data flows after this
    assert recv_all(sock) == b""
    assert 0.25 <= time.monotonic() - start < 3.0


def test_toxicity_is_rolled_per_link_from_the_seed(
    loop_thread: LoopThread, upstream: Callable[..., Upstream]
) -> None:
    up = upstream()

    def pattern(seed: int) -> list[bool]:
        async def make() -> ProxyManager:
            return ProxyManager(seed=seed)

        manager = loop_thread.run(make())
        helper = Helper(loop_thread, manager)
        try:
            proxy = helper.proxy(up.address)
            loop_thread.call(
                lambda: manager.add_toxic(
                    proxy.name,
                    type="latency",
                    name=None,
                    stream="downstream",
                    toxicity=0.5,
                    attributes={"latency": 1},
                )
            )
            hits = []
            for _ in range(24):
                sock = helper.connect(proxy)
                sock.sendall(b"x")
                assert recv_exactly(sock, 1) == b"x"  # affected or not, data flows
                hits.append(
                    loop_thread.call(
                        lambda: any(bool(c.down and c.down.stages) for c in proxy.connections)
                    )
                )
                sock.close()
                helper.sockets.clear()
                deadline = time.monotonic() + 10
                while loop_thread.call(lambda: len(proxy.connections)) and (
                    time.monotonic() < deadline
                ):
                    time.sleep(0.01)
            return hits
        finally:
            helper.close()
            loop_thread.run(manager.close())

    first, again, other = pattern(11), pattern(11), pattern(12)
    assert first == again  # the same seed rolls the same way
    assert 4 <= sum(first) <= 20  # about half of the links are affected
    assert first != other
