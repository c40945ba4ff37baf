"""EmbeddedServer: lifecycle, cleanup, config, errors."""

from __future__ import annotations

import asyncio
import gc
import http.client
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from pytest_chaos.errors import ConfigurationError
from pytest_chaos.proxy import EmbeddedServer

pytest.importorskip("requests")
import requests


def _fds() -> int:
    # requests keeps a finished response's socket until garbage collection
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def _proxy_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pytest-chaos-proxy")]


def _call(port: int, method: str, path: str, body: object = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_start_answers_and_stop_leaves_nothing_behind() -> None:
    EmbeddedServer().start().stop()  # first use imports and caches; measure after it
    fds_before = _fds()
    threads_before = _proxy_threads()
    with socket.create_server(("127.0.0.1", 0)) as upstream:
        server = EmbeddedServer(seed=7).start()
        try:
            assert server.running and server.host == "127.0.0.1" and server.port > 0
            assert server.url == f"http://127.0.0.1:{server.port}"
            assert repr(server) == f"<EmbeddedServer {server.url} running proxies=0 seed=7>"
            status, _ = _call(
                server.port,
                "POST",
                "/proxies",
                {
                    "name": "p",
                    "listen": "127.0.0.1:0",
                    "upstream": f"127.0.0.1:{upstream.getsockname()[1]}",
                },
            )
            assert status == 201
            assert "proxies=1" in repr(server)
            listen = json.loads(_call(server.port, "GET", "/proxies/p")[1])["listen"]
            client = socket.create_connection(("127.0.0.1", int(listen.split(":")[1])), timeout=10)
            accepted, _ = upstream.accept()
            api_port = server.port
        finally:
            server.stop()
        with client, accepted:
            client.settimeout(10)
            # the proxied connection was closed by stop()
            assert client.recv(1) == b""
    assert not server.running
    assert repr(server) == "<EmbeddedServer 127.0.0.1:0 stopped>"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", api_port), timeout=5).close()
    assert _proxy_threads() == threads_before
    assert _fds() == fds_before


def test_start_and_stop_are_idempotent() -> None:
    server = EmbeddedServer()
    server.stop()  # never started: nothing to do
    assert server.start() is server.start()
    port = server.port
    server.stop()
    server.stop()
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port
    server.start()  # a stopped server starts again (on a fresh port 0 pick)
    try:
        assert requests.get(f"{server.url}/version", timeout=10).json()["version"] == "2.12.0"
    finally:
        server.stop()
    assert port > 0


def test_async_context_manager() -> None:
    async def main() -> int:
        async with EmbeddedServer() as server:
            reply = await asyncio.to_thread(requests.get, f"{server.url}/proxies", timeout=10)
            with reply:
                assert reply.json() == {}
            return server.port

    port = asyncio.run(main())
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_config_list_is_populated_before_start_returns() -> None:
    config = [{"name": "redis", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:6379"}]
    with EmbeddedServer(config=config) as server:
        proxies = requests.get(f"{server.url}/proxies", timeout=10).json()
    assert list(proxies) == ["redis"] and proxies["redis"]["enabled"] is True


def test_config_file_is_populated(tmp_path: Path) -> None:
    path = tmp_path / "proxies.json"
    path.write_text(json.dumps([{"name": "pg", "listen": "127.0.0.1:0", "upstream": "x:5432"}]))
    with EmbeddedServer(config=path) as server:
        assert requests.get(f"{server.url}/proxies/pg", timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "does not exist"),
        ("{not json", "is not valid JSON"),
        ('{"name": "x"}', "not an array"),
        ('[{"name": "x"}]', "missing required field: upstream at proxy 1"),
    ],
)
def test_bad_config_files_name_the_file_and_the_problem(
    tmp_path: Path, content: str | None, needle: str
) -> None:
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    threads_before = _proxy_threads()
    with pytest.raises(ConfigurationError, match=needle) as info:
        EmbeddedServer(config=path).start()
    assert str(path) in str(info.value)
    assert _proxy_threads() == threads_before


def test_a_taken_api_port_raises_oserror_and_leaves_no_thread() -> None:
    threads_before = _proxy_threads()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        server = EmbeddedServer(port=taken.getsockname()[1])
        with pytest.raises(OSError, match="address already in use"):
            server.start()
    assert not server.running
    assert _proxy_threads() == threads_before


@pytest.mark.parametrize("port", [-1, 70000, "8474", True])
def test_bad_port_is_a_configuration_error(port: object) -> None:
    with pytest.raises(ConfigurationError, match="not a TCP port"):
        EmbeddedServer(port=port)  # type: ignore[arg-type]


def test_bad_seed_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="seed='1'"):
        EmbeddedServer(seed="1")  # type: ignore[arg-type]


def test_a_non_loopback_host_warns() -> None:
    # 192.0.2.1 (TEST-NET-1) is not on this machine: the warning comes, then the bind fails.
    with pytest.warns(UserWarning, match="not a loopback address"), pytest.raises(OSError):
        EmbeddedServer(host="192.0.2.1").start()


def test_ipv6_loopback_url_is_bracketed() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = EmbeddedServer(host="::1").start()
    except OSError:
        pytest.skip("::1 is not configured here")
    try:
        assert server.url == f"http://[::1]:{server.port}"
        assert requests.get(f"{server.url}/version", timeout=10).status_code == 200
    finally:
        server.stop()


def test_localhost_binds_one_address_that_answers_on_the_reported_port() -> None:
    with EmbeddedServer(host="localhost") as server:
        assert server.url == f"http://localhost:{server.port}"
        status, body = _call(server.port, "GET", "/version")
        assert status == 200 and b"2.12.0" in body


def test_bad_config_type_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="neither a populate list nor a path"):
        EmbeddedServer(config={"name": "x"})  # type: ignore[arg-type]


def test_the_gil_switch_interval_is_short_while_a_server_runs_and_restored_after() -> None:
    # A test's CPU-bound thread holds the GIL for a whole switch interval while the loop
    # thread waits to release a due chunk (bench/RESULTS.md, latency on time).
    import sys

    from pytest_chaos.proxy._server import SWITCH_INTERVAL

    before = sys.getswitchinterval()
    with EmbeddedServer():
        assert sys.getswitchinterval() == pytest.approx(min(before, SWITCH_INTERVAL))
        with EmbeddedServer():
            assert sys.getswitchinterval() == pytest.approx(min(before, SWITCH_INTERVAL))
        assert sys.getswitchinterval() == pytest.approx(min(before, SWITCH_INTERVAL))
    assert sys.getswitchinterval() == pytest.approx(before)
