"""1,000 concurrent connections through one proxy, and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import threading
import time
from collections.abc import Callable

from .conftest import Helper, Upstream, assert_closed, recv_exactly

N = 1000


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_thousand_concurrent_connections_leave_nothing_behind(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * N + 200  # client, proxy x2 and server sockets, all in this process
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    up = upstream()
    proxy = helper.proxy(up.address)

    async def tasks() -> int:
        return len(asyncio.all_tasks())

    fds_before = _fds()
    threads_before = threading.active_count()
    tasks_before = helper.lt.run(tasks())

    socks = []
    try:
        for _ in range(N):
            socks.append(helper.connect(proxy))
        for i, sock in enumerate(socks):
            sock.sendall(b"%08d" % i)
        for i, sock in enumerate(socks):
            assert recv_exactly(sock, 8) == b"%08d" % i
        stats = helper.stats(proxy)
        assert stats["connections_open"] == N
        assert stats["connections_accepted"] == N
        assert stats["connections_failed"] == 0
    finally:
        for sock in socks:
            sock.close()
        helper.sockets.clear()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if helper.stats(proxy)["connections_open"] == 0 and _fds() <= fds_before:
            break
        time.sleep(0.05)
    assert helper.stats(proxy)["connections_open"] == 0
    assert helper.lt.call(lambda: len(proxy.connections) + len(proxy._lingering)) == 0
    assert _fds() == fds_before
    assert threading.active_count() == threads_before
    assert helper.lt.run(tasks()) == tasks_before


def test_close_releases_listeners_and_connections(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    up = upstream()
    fds_before = _fds()
    proxies = [helper.proxy(up.address) for _ in range(5)]
    socks = [helper.connect(p) for p in proxies for _ in range(20)]
    for sock in socks:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
    helper.lt.run(helper.manager.close())
    for sock in socks:
        assert_closed(sock)
        sock.close()
    helper.sockets.clear()
    deadline = time.monotonic() + 10
    while _fds() > fds_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _fds() == fds_before
    for p in proxies:
        host, port = p.listen.rsplit(":", 1)
        probe = socket.socket()
        try:
            assert probe.connect_ex((host, int(port))) != 0
        finally:
            probe.close()
