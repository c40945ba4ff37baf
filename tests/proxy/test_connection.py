"""Plain forwarding, half-close, stats and lifecycle through real sockets."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import pytest

from .conftest import Helper, Upstream, assert_closed, recv_all, recv_exactly


def test_bytes_go_both_ways_and_are_counted(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    up = upstream()
    proxy = helper.proxy(up.address)
    sock = helper.connect(proxy)
    payload = bytes(range(256)) * 1000
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    stats = helper.stats(proxy)
    assert stats["connections_accepted"] == 1
    assert stats["connections_open"] == 1
    assert stats["bytes_upstream"] == len(payload)
    assert stats["bytes_downstream"] == len(payload)
    assert stats["connections_failed"] == 0


def test_half_close_is_propagated(helper: Helper, upstream: Callable[..., Upstream]) -> None:
    async def reply_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read()  # until the client's EOF
        writer.write(b"got " + request)
        await writer.drain()

    proxy = helper.proxy(upstream(reply_after_eof).address)
    sock = helper.connect(proxy)
    sock.sendall(b"question")
    sock.shutdown(socket.SHUT_WR)
    assert recv_all(sock) == b"got question"


def test_connection_closes_when_both_sides_are_done(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    proxy = helper.proxy(upstream().address)
    sock = helper.connect(proxy)
    sock.sendall(b"x")
    sock.shutdown(socket.SHUT_WR)
    assert recv_all(sock) == b"x"
    deadline = time.monotonic() + 10
    while helper.stats(proxy)["connections_open"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert helper.stats(proxy)["connections_open"] == 0


def test_refused_upstream_counts_a_failure_and_closes_the_client(helper: Helper) -> None:
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()  # nothing listens there now
    proxy = helper.proxy(f"127.0.0.1:{port}")
    sock = helper.connect(proxy)
    assert_closed(sock)
    assert helper.stats(proxy)["connections_failed"] == 1
    assert helper.stats(proxy)["connections_open"] == 0


def test_disable_closes_open_connections_and_refuses_new_ones(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    proxy = helper.proxy(upstream().address)
    sock = helper.connect(proxy)
    sock.sendall(b"hi")
    assert recv_exactly(sock, 2) == b"hi"
    listen = proxy.listen
    helper.lt.run(helper.manager.update(proxy.name, enabled=False))
    assert_closed(sock)
    host, port = listen.rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=5).close()
    assert proxy.to_json()["enabled"] is False
    assert proxy.to_json()["listen"] == listen  # the bound port is kept, like Toxiproxy
    # re-enabling binds the same port again, so clients can reconnect
    helper.lt.run(helper.manager.update(proxy.name, enabled=True))
    assert proxy.listen == listen
    again = helper.connect(proxy)
    again.sendall(b"back")
    assert recv_exactly(again, 4) == b"back"


def test_delete_closes_open_connections(helper: Helper, upstream: Callable[..., Upstream]) -> None:
    proxy = helper.proxy(upstream().address)
    sock = helper.connect(proxy)
    sock.sendall(b"hi")
    assert recv_exactly(sock, 2) == b"hi"
    helper.lt.run(helper.manager.delete(proxy.name))
    assert_closed(sock)


def test_changing_upstream_restarts_and_drops_connections(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"second")
        await writer.drain()
        await reader.read()

    first, second = upstream(), upstream(greet)
    proxy = helper.proxy(first.address)
    sock = helper.connect(proxy)
    sock.sendall(b"a")
    assert recv_exactly(sock, 1) == b"a"
    helper.lt.run(helper.manager.update(proxy.name, upstream=second.address))
    assert_closed(sock)
    assert recv_exactly(helper.connect(proxy), 6) == b"second"


def test_black_holed_upstream_does_not_stall_new_connections(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    # A listener that never accepts, with a backlog of 0: after one or two queued
    # handshakes, the kernel drops further SYNs and connects hang.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    try:
        proxy = helper.proxy(f"127.0.0.1:{hole.getsockname()[1]}")
        good = helper.proxy(upstream().address)
        stuck = [helper.connect(proxy) for _ in range(6)]
        for sock in stuck:
            sock.sendall(b"anyone?")
        start = time.monotonic()
        fine = helper.connect(good)
        fine.sendall(b"ok")
        assert recv_exactly(fine, 2) == b"ok"
        while helper.stats(proxy)["connections_accepted"] < 6 and time.monotonic() - start < 1.5:
            time.sleep(0.01)
        # every connection was accepted while the dials still hang (timeout: 2 s)
        assert helper.stats(proxy)["connections_accepted"] == 6
        # the hanging dials give up after the dial timeout and close their clients
        deadline = time.monotonic() + 15
        while helper.stats(proxy)["connections_failed"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert helper.stats(proxy)["connections_failed"] >= 3
    finally:
        hole.close()


def test_bind_errors_read_like_go(helper: Helper, upstream: Callable[..., Upstream]) -> None:
    from pytest_chaos.proxy._errors import BindError, Conflict

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(BindError) as info:
            helper.lt.run(helper.manager.create("bind_err", f"127.0.0.1:{port}", "x:1"))
        assert info.value.status == 500
        assert info.value.message == (f"listen tcp 127.0.0.1:{port}: bind: address already in use")
    finally:
        taken.close()
    proxy = helper.proxy(upstream().address)
    with pytest.raises(Conflict, match="proxy already exists"):
        helper.lt.run(helper.manager.create(proxy.name, "127.0.0.1:0", "x:1"))


def test_a_server_that_speaks_first_is_heard(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 ready\r\n")
        await writer.drain()
        await reader.read()

    proxy = helper.proxy(upstream(banner).address)
    for _ in range(20):
        sock = helper.connect(proxy)
        assert recv_exactly(sock, 11) == b"220 ready\r\n"
        sock.close()


@pytest.mark.parametrize("toxic", [None, "latency"])
def test_a_slow_reader_holds_back_the_upstream(
    helper: Helper, upstream: Callable[..., Upstream], toxic: str | None
) -> None:
    async def firehose(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        block = b"f" * 65536
        while True:
            writer.write(block)
            await writer.drain()

    proxy = helper.proxy(upstream(firehose).address)
    if toxic:
        helper.toxic(proxy, toxic, latency=50)
    sock = helper.connect(proxy)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    time.sleep(1.0)  # the client reads nothing
    first = helper.stats(proxy)["bytes_downstream"]
    time.sleep(0.5)
    second = helper.stats(proxy)["bytes_downstream"]
    # the proxy stopped reading: socket buffers plus at most the chain's 4 MiB cap
    assert second == first
    assert second < 24 * 1024 * 1024, second
    assert len(recv_exactly(sock, 1_000_000)) == 1_000_000  # and it still flows


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])  # the fast dial, the task dial
def test_clients_gone_during_a_hanging_dial_leave_nothing_behind(helper: Helper, host: str) -> None:
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    try:
        proxy = helper.proxy(f"{host}:{hole.getsockname()[1]}")
        for _ in range(5):
            helper.connect(proxy).close()
        helper.sockets.clear()

        def dialing() -> int:
            return helper.lt.call(lambda: sum(c.dialing for c in proxy.connections))

        deadline = time.monotonic() + 15  # the dial timeout is 2 s
        while dialing() and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = helper.stats(proxy)
        assert dialing() == 0
        assert stats["connections_accepted"] == 5
        # the dials the hole's backlog took stay open, half-closed, waiting for the
        # server (a half-close is passed on, not turned into a close); the others failed
        assert stats["connections_failed"] + stats["connections_open"] == 5
        assert stats["connections_failed"] >= 3
        helper.lt.run(helper.manager.delete(proxy.name))
        assert helper.lt.call(lambda: len(proxy.connections) + len(proxy._lingering)) == 0
        assert helper.lt.call(proxy.stats_json)["connections_open"] == 0
    finally:
        hole.close()


def test_replies_written_in_two_parts_do_not_wait_for_delayed_acks(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    async def two_parts(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1):
            writer.write(b"head")
            await writer.drain()
            await asyncio.sleep(0.001)  # the parts reach the proxy as two reads
            writer.write(b"body")
            await writer.drain()

    proxy = helper.proxy(upstream(two_parts).address)
    sock = helper.connect(proxy)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start = time.monotonic()
    for _ in range(20):
        sock.sendall(b"?")
        assert recv_exactly(sock, 8) == b"headbody"
    # with Nagle on the proxy's sockets each exchange waits ~40 ms for a delayed ACK
    assert time.monotonic() - start < 0.5
    nodelay = helper.lt.call(
        lambda: [
            side.transport.get_extra_info("socket").getsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY
            )
            for conn in proxy.connections
            for side in (conn.client, conn.server)
            if side is not None and side.transport is not None
        ]
    )
    assert nodelay and all(nodelay)


def test_removing_a_toxic_that_holds_data_for_a_departed_client_keeps_serving(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    """A client that gave up (its own timeout) while a latency toxic held the reply:
    healing must not fail the admin call, and the proxy keeps serving."""

    async def reply_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4)
        writer.write(b"pong" * 1000)
        await writer.drain()
        await reader.read()  # until the client's EOF, then close

    up = upstream(reply_and_close)
    proxy = helper.proxy(up.address)
    toxic = helper.toxic(proxy, "latency", latency=800)
    departed = []
    for _ in range(5):
        sock = helper.connect(proxy)
        sock.sendall(b"ping")
        departed.append(sock)
    time.sleep(0.2)
    for sock in departed:  # the clients time out and hang up with the reply still held
        sock.close()
    time.sleep(0.1)
    helper.remove(proxy, toxic)  # raised ENOTCONN from write_eof before the fix
    sock = helper.connect(proxy)
    sock.sendall(b"ping")
    assert recv_exactly(sock, 4000) == b"pong" * 1000
