"""The real toxiproxy-python 0.1.1 client drives the server unchanged."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from .conftest import EchoServer, host_port

pytest.importorskip("toxiproxy")
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists


@pytest.fixture
def client(toxiproxy_url: str) -> Iterator[Toxiproxy]:
    """A client aimed at the server under test; removes the proxies the test made."""
    parts = urlsplit(toxiproxy_url)
    server = Toxiproxy()
    # toxiproxy-python keeps host and port as class attributes of APIConsumer.
    saved = (APIConsumer.host, APIConsumer.port)
    server.update_api_consumer(parts.hostname, parts.port)
    before = set(server.proxies())
    try:
        yield server
    finally:
        for name, proxy in server.proxies().items():
            if name not in before and name.startswith("pyclient-"):
                proxy.destroy()
        APIConsumer.host, APIConsumer.port = saved


def _name() -> str:
    return f"pyclient-{uuid.uuid4().hex[:10]}"


def test_running_and_version(client: Toxiproxy) -> None:
    assert client.running() is True
    assert b'"version"' in client.version()


def test_create_list_get_destroy(client: Toxiproxy) -> None:
    name = _name()
    proxy = client.create(upstream="127.0.0.1:9", name=name)
    assert proxy.name == name and proxy.enabled is True
    assert host_port(proxy.listen)[1] > 0
    assert name in client.proxies()
    assert client.get_proxy(name).upstream == "127.0.0.1:9"
    with pytest.raises(ProxyExists):
        client.create(upstream="127.0.0.1:9", name=name)
    assert proxy.destroy() is True
    assert client.get_proxy(name) is None
    with pytest.raises(NotFound):
        proxy.destroy()


def test_toxics_through_the_client(client: Toxiproxy) -> None:
    proxy = client.create(upstream="127.0.0.1:9", name=_name())
    proxy.add_toxic(type="latency", attributes={"latency": 100, "jitter": 5})
    proxy.add_toxic(type="bandwidth", stream="upstream", name="slow_up", attributes={"rate": 50})
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "slow_up"}
    assert toxics["latency_downstream"].attributes == {"latency": 100, "jitter": 5}
    assert toxics["slow_up"].stream == "upstream"
    assert proxy.get_toxic("slow_up").attributes == {"rate": 50}
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no_such_toxic")
    with pytest.raises(ProxyExists):  # 409 for a toxic name in use
        proxy.add_toxic(type="latency")
    proxy.destroy_toxic("slow_up")
    assert set(proxy.toxics()) == {"latency_downstream"}


@pytest.mark.data_path
def test_down_closes_and_refuses_then_restores(client: Toxiproxy, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name=_name())
    address = host_port(proxy.listen)
    with proxy.down():
        assert client.get_proxy(proxy.name).enabled is False
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=5).close()
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(b"hello")
        assert conn.recv(5) == b"hello"


@pytest.mark.data_path
def test_latency_added_by_the_client_is_felt(client: Toxiproxy, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name=_name())
    with socket.create_connection(host_port(proxy.listen), timeout=10) as conn:
        proxy.add_toxic(type="latency", attributes={"latency": 300})
        start = time.monotonic()
        conn.sendall(b"x")
        assert conn.recv(1) == b"x"
        assert time.monotonic() - start >= 0.25


def test_client_side_populate(client: Toxiproxy) -> None:
    first, second = _name(), _name()
    made = client.populate(
        [
            {"name": first, "upstream": "127.0.0.1:9", "listen": "127.0.0.1:0"},
            {"name": second, "upstream": "127.0.0.1:10", "listen": "127.0.0.1:0"},
        ]
    )
    assert sorted(p.name for p in made) == sorted([first, second])
    assert {first, second} <= set(client.proxies())


@pytest.mark.server_wide
def test_reset_through_the_client(client: Toxiproxy) -> None:
    proxy = client.create(upstream="127.0.0.1:9", name=_name())
    proxy.add_toxic(type="latency", attributes={"latency": 100})
    proxy.disable()
    assert client.reset() is True
    again = client.get_proxy(proxy.name)
    assert again.enabled is True and again.toxics() == {}
