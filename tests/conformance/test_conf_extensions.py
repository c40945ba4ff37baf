"""Extensions of the embedded server: GET /proxies/{p}/stats and the version field."""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import pytest

from .conftest import Api, EchoServer, host_port

pytestmark = pytest.mark.embedded_only

STATS_KEYS = {
    "name",
    "connections_accepted",
    "connections_open",
    "connections_failed",
    "bytes_upstream",
    "bytes_downstream",
    "http_requests",
    "http_responses",
    "http_errors_injected",
    "http_duplicates_sent",
    "http_duplicates_failed",
    "http_requests_delayed",
    "http_passthrough_connections",
}


def _stats(api: Api, name: str) -> dict[str, Any]:
    resp = api.call("GET", f"/proxies/{name}/stats")
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


def _wait_for(api: Api, name: str, key: str, value: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        stats = _stats(api, name)
        if stats[key] == value or time.monotonic() > deadline:
            return stats
        time.sleep(0.02)


def test_version_names_this_implementation(api: Api) -> None:
    body = api.call("GET", "/version").json()
    assert body["version"] == "2.12.0"
    assert "pytest-chaos" in body["implementation"]


def test_a_new_proxy_has_zero_stats(api: Api) -> None:
    proxy = api.create("127.0.0.1:9")
    stats = _stats(api, proxy["name"])
    assert set(stats) == STATS_KEYS | {"notes"}
    assert stats["name"] == proxy["name"]
    assert all(stats[key] == 0 for key in STATS_KEYS - {"name"})
    assert stats["notes"] == []


def test_unknown_proxy_stats_is_404(api: Api) -> None:
    resp = api.call("GET", f"/proxies/{api.name()}/stats")
    assert (resp.status_code, resp.json()["error"]) == (404, "proxy not found")


@pytest.mark.data_path
def test_stats_count_connections_and_bytes_each_way(api: Api, echo: EchoServer) -> None:
    proxy = api.create(echo.address)
    name = proxy["name"]
    with socket.create_connection(host_port(proxy["listen"]), timeout=10) as conn:
        conn.sendall(b"x" * 1000)
        got = b""
        while len(got) < 1000:
            got += conn.recv(65536)
        stats = _wait_for(api, name, "bytes_downstream", 1000)
        assert stats["connections_accepted"] == 1 and stats["connections_open"] == 1
        assert stats["bytes_upstream"] == 1000 and stats["bytes_downstream"] == 1000
    stats = _wait_for(api, name, "connections_open", 0)
    assert stats["connections_open"] == 0 and stats["connections_accepted"] == 1
    with socket.create_connection(host_port(proxy["listen"]), timeout=10):
        pass
    assert _wait_for(api, name, "connections_accepted", 2)["connections_accepted"] == 2


@pytest.mark.data_path
def test_stats_count_failed_upstream_dials(api: Api) -> None:
    with socket.create_server(("127.0.0.1", 0)) as hold:
        dead = f"127.0.0.1:{hold.getsockname()[1]}"
    proxy = api.create(dead)
    with socket.create_connection(host_port(proxy["listen"]), timeout=10) as conn:
        conn.settimeout(10)
        with contextlib.suppress(ConnectionResetError):
            assert conn.recv(1) == b""
    stats = _wait_for(api, proxy["name"], "connections_failed", 1)
    assert stats["connections_failed"] == 1 and stats["connections_accepted"] == 1
