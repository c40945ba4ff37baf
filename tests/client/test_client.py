"""ToxiproxyClient against a real EmbeddedServer: every endpoint and the error paths."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_chaos import ConfigurationError, ProxyAPIError, ToxiproxyClient, UnsupportedByBackend
from pytest_chaos.proxy import EmbeddedServer


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def client(server: EmbeddedServer) -> Iterator[ToxiproxyClient]:
    with ToxiproxyClient(server.url, embedded=True) as client:
        yield client


def test_proxy_and_toxic_crud(client: ToxiproxyClient) -> None:
    assert client.version()["version"] == "2.12.0"
    assert client.proxies() == {}
    created = client.create_proxy("p", upstream="127.0.0.1:9")
    assert created["name"] == "p" and created["enabled"] is True
    assert created["listen"].startswith("127.0.0.1:") and not created["listen"].endswith(":0")
    toxic = client.add_toxic("p", "latency", name="lat", attributes={"latency": 5})
    assert toxic == {
        "name": "lat",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 5, "jitter": 0},
    }
    assert client.update_toxic("p", "lat", attributes={"jitter": 2})["attributes"] == {
        "latency": 5,
        "jitter": 2,
    }
    assert [t["name"] for t in client.toxics("p")] == ["lat"]
    assert client.get_toxic("p", "lat")["attributes"]["jitter"] == 2
    client.remove_toxic("p", "lat")
    assert client.get_proxy("p")["toxics"] == []
    assert client.update_proxy("p", enabled=False)["enabled"] is False
    client.reset()
    assert client.get_proxy("p")["enabled"] is True
    stats = client.stats("p")
    assert stats["name"] == "p" and stats["connections_accepted"] == 0
    client.delete_proxy("p")
    assert client.proxies() == {}
    populated = client.populate([{"name": "q", "listen": "127.0.0.1:0", "upstream": "x:1"}])
    assert [p["name"] for p in populated] == ["q"]
    assert "requests=" in repr(client)


def test_errors_carry_status_and_server_message(client: ToxiproxyClient) -> None:
    with pytest.raises(ProxyAPIError) as info:
        client.get_proxy("missing")
    assert info.value.status == 404
    assert info.value.error == "proxy not found"
    assert "GET http://127.0.0.1:" in str(info.value) and "404 proxy not found" in str(info.value)
    client.create_proxy("p", upstream="127.0.0.1:9")
    with pytest.raises(ProxyAPIError) as info:
        client.create_proxy("p", upstream="127.0.0.1:9")
    assert info.value.status == 409
    with pytest.raises(ProxyAPIError) as info:
        client.add_toxic("p", "no_such_toxic")
    assert (info.value.status, info.value.error) == (400, "invalid toxic type")


def test_embedded_only_features_name_the_embedded_backend(server: EmbeddedServer) -> None:
    with ToxiproxyClient(server.url, embedded=False) as client:
        client.create_proxy("p", upstream="127.0.0.1:9")
        with pytest.raises(UnsupportedByBackend) as info:
            client.stats("p")
        assert "embedded proxy" in str(info.value) and "--chaos-backend=embedded" in str(info.value)
        for kind in ("http_error", "http_delay", "http_duplicate"):
            with pytest.raises(UnsupportedByBackend, match=kind):
                client.add_toxic("p", kind)
        assert client.get_proxy("p")["toxics"] == []


def test_unreachable_server_and_bad_url() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with ToxiproxyClient(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(ProxyAPIError, match="cannot reach the Toxiproxy API") as info:
            client.version()
        assert info.value.status == 0
    with pytest.raises(ConfigurationError, match="not an http://host:port URL"):
        ToxiproxyClient("127.0.0.1:8474")
