"""Bytes through a proxy: toxics on open connections, disable, delete."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from .conftest import Api, EchoServer, host_port

pytestmark = pytest.mark.data_path


def _round_trip(conn: socket.socket, payload: bytes = b"ping") -> float:
    start = time.monotonic()
    conn.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = conn.recv(65536)
        assert chunk, "connection closed mid round trip"
        got += chunk
    assert got == payload
    return time.monotonic() - start


def _closed_by_peer(conn: socket.socket) -> bool:
    """True when the peer closed (EOF or reset) within 10 s."""
    conn.settimeout(10)
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_megabyte_passes_through_both_ways_intact(api: Api, echo: EchoServer) -> None:
    proxy = api.create(echo.address)
    payload = bytes(range(256)) * 4096
    with socket.create_connection(host_port(proxy["listen"]), timeout=10) as conn:
        sender = threading.Thread(target=conn.sendall, args=(payload,))
        sender.start()
        got = bytearray()
        while len(got) < len(payload):
            chunk = conn.recv(65536)
            assert chunk, f"closed after {len(got)} bytes"
            got += chunk
        sender.join(10)
    assert bytes(got) == payload


def test_a_toxic_added_to_an_open_connection_changes_it(api: Api, echo: EchoServer) -> None:
    proxy = api.create(echo.address)
    name = proxy["name"]
    with socket.create_connection(host_port(proxy["listen"]), timeout=10) as conn:
        baseline = min(_round_trip(conn) for _ in range(3))
        resp = api.call(
            "POST", f"/proxies/{name}/toxics", {"type": "latency", "attributes": {"latency": 400}}
        )
        assert resp.status_code == 200
        slowed = _round_trip(conn)
        assert slowed >= 0.35, f"latency 400 ms added, round trip took {slowed:.3f} s"
        assert slowed > baseline + 0.3
        assert api.call("DELETE", f"/proxies/{name}/toxics/latency_downstream").status_code == 204
        healed = min(_round_trip(conn) for _ in range(3))
        assert healed < 0.3, f"toxic removed, round trip still {healed:.3f} s"


def test_updating_a_toxic_applies_to_the_open_connection(api: Api, echo: EchoServer) -> None:
    proxy = api.create(echo.address)
    name = proxy["name"]
    api.call("POST", f"/proxies/{name}/toxics", {"type": "latency", "attributes": {"latency": 0}})
    with socket.create_connection(host_port(proxy["listen"]), timeout=10) as conn:
        assert min(_round_trip(conn) for _ in range(2)) < 0.3
        api.call(
            "PATCH",
            f"/proxies/{name}/toxics/latency_downstream",
            {"attributes": {"latency": 400}},
        )
        assert _round_trip(conn) >= 0.35


def test_disable_closes_open_connections_and_refuses_new_ones(api: Api, echo: EchoServer) -> None:
    proxy = api.create(echo.address)
    address = host_port(proxy["listen"])
    with socket.create_connection(address, timeout=10) as conn:
        _round_trip(conn)
        resp = api.call("PATCH", f"/proxies/{proxy['name']}", {"enabled": False})
        assert resp.status_code == 200
        assert _closed_by_peer(conn)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5).close()
    api.call("PATCH", f"/proxies/{proxy['name']}", {"enabled": True})
    with socket.create_connection(address, timeout=10) as conn:
        _round_trip(conn)


def test_delete_closes_open_connections(api: Api, echo: EchoServer) -> None:
    proxy = api.create(echo.address)
    with socket.create_connection(host_port(proxy["listen"]), timeout=10) as conn:
        _round_trip(conn)
        assert api.call("DELETE", f"/proxies/{proxy['name']}").status_code == 204
        assert _closed_by_peer(conn)


def test_an_unreachable_upstream_closes_the_client_connection(api: Api) -> None:
    with socket.create_server(("127.0.0.1", 0)) as hold:
        dead = f"127.0.0.1:{hold.getsockname()[1]}"
    proxy = api.create(dead)
    with socket.create_connection(host_port(proxy["listen"]), timeout=10) as conn:
        assert _closed_by_peer(conn)


@pytest.mark.server_wide
def test_reset_heals_open_connections(api: Api, echo: EchoServer) -> None:
    proxy = api.create(echo.address)
    api.call(
        "POST",
        f"/proxies/{proxy['name']}/toxics",
        {"type": "latency", "attributes": {"latency": 400}},
    )
    with socket.create_connection(host_port(proxy["listen"]), timeout=10) as conn:
        assert _round_trip(conn) >= 0.35
        assert api.call("POST", "/reset").status_code == 204
        assert min(_round_trip(conn) for _ in range(2)) < 0.3


def test_toxicity_zero_never_applies_and_one_always_does(api: Api, echo: EchoServer) -> None:
    proxy = api.create(echo.address)
    name = proxy["name"]
    api.call(
        "POST",
        f"/proxies/{name}/toxics",
        {"type": "latency", "toxicity": 0.0, "attributes": {"latency": 400}},
    )
    for _ in range(3):  # a fresh roll per connection: none of them is slowed
        with socket.create_connection(host_port(proxy["listen"]), timeout=10) as conn:
            # min of two: one slow round trip on a loaded machine is not the toxic
            assert min(_round_trip(conn) for _ in range(2)) < 0.3
    api.call("PATCH", f"/proxies/{name}/toxics/latency_downstream", {"toxicity": 1.0})
    with socket.create_connection(host_port(proxy["listen"]), timeout=10) as conn:
        assert _round_trip(conn) >= 0.35


@pytest.mark.parametrize("stream", ["UPSTREAM", "Downstream"])
def test_an_upper_case_stream_runs_in_the_link_it_names(api: Api, stream: str) -> None:
    # limit_data of 3 bytes: upstream, the server gets 3 of 6 bytes; downstream, all 6.
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(10)
        proxy = api.create(f"127.0.0.1:{server.getsockname()[1]}")
        resp = api.call(
            "POST",
            f"/proxies/{proxy['name']}/toxics",
            {"type": "limit_data", "stream": stream, "attributes": {"bytes": 3}},
        )
        assert resp.status_code == 200 and resp.json()["stream"] == stream
        with socket.create_connection(host_port(proxy["listen"]), timeout=10) as client:
            accepted, _ = server.accept()
            with accepted:
                accepted.settimeout(10)
                client.sendall(b"abcdef")
                got = b""
                while len(got) < 6:
                    try:
                        chunk = accepted.recv(64)
                    except OSError:
                        break
                    if not chunk:
                        break
                    got += chunk
    assert got == (b"abc" if stream == "UPSTREAM" else b"abcdef")
