"""Proxy endpoints: create, show, update, delete, listen semantics, errors."""

from __future__ import annotations

import socket

import pytest

from .conftest import Api, EchoServer, free_port, host_port

UP = "127.0.0.1:9"  # never dialled: the upstream is only used when a client connects


def _err(resp: object) -> tuple[int, str]:
    status = resp.status_code  # type: ignore[attr-defined]
    return status, resp.json()["error"]  # type: ignore[attr-defined]


@pytest.mark.data_path
def test_create_answers_201_with_the_proxy_and_binds_the_listen_address(api: Api) -> None:
    name = api.name()
    resp = api.call("POST", "/proxies", {"name": name, "listen": "127.0.0.1:0", "upstream": UP})
    assert resp.status_code == 201
    proxy = resp.json()
    assert set(proxy) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert proxy["name"] == name and proxy["upstream"] == UP
    assert proxy["enabled"] is True and proxy["toxics"] == []
    host, port = host_port(proxy["listen"])
    assert host == "127.0.0.1" and port > 0
    with socket.create_connection((host, port), timeout=5):
        pass  # the listener accepts


def test_localhost_port_0_is_reported_as_the_bound_ip_and_port(api: Api) -> None:
    proxy = api.create(UP, listen="localhost:0")
    host, port = host_port(proxy["listen"])
    assert host == "127.0.0.1" and port > 0


@pytest.mark.data_path
def test_disabled_proxy_reports_listen_as_given_and_binds_nothing(api: Api) -> None:
    port = free_port()
    proxy = api.create(UP, listen=f"127.0.0.1:{port}", enabled=False)
    assert proxy["enabled"] is False and proxy["listen"] == f"127.0.0.1:{port}"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    proxy = api.call("PATCH", f"/proxies/{proxy['name']}", {"enabled": True}).json()
    assert proxy["enabled"] is True and proxy["listen"] == f"127.0.0.1:{port}"
    socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.data_path
def test_disable_then_enable_keeps_the_port_that_port_0_picked(api: Api) -> None:
    # Toxiproxy stores the bound address, so clients that cached it keep working
    # across proxy.down() (toxiproxy-python does cache it).
    proxy = api.create(UP, listen="127.0.0.1:0")
    name = proxy["name"]
    off = api.call("PATCH", f"/proxies/{name}", {"enabled": False}).json()
    assert off["enabled"] is False and off["listen"] == proxy["listen"]
    on = api.call("PATCH", f"/proxies/{name}", {"enabled": True}).json()
    assert on["enabled"] is True and on["listen"] == proxy["listen"]
    socket.create_connection(host_port(on["listen"]), timeout=5).close()


def test_get_proxies_lists_proxies_by_name(api: Api) -> None:
    first = api.create(UP)
    second = api.create(UP, enabled=False)
    resp = api.call("GET", "/proxies")
    assert resp.status_code == 200
    listing = resp.json()
    assert isinstance(listing, dict)
    assert listing[first["name"]] == first
    assert listing[second["name"]] == second


def test_get_proxy_and_unknown_proxy(api: Api) -> None:
    proxy = api.create(UP)
    resp = api.call("GET", f"/proxies/{proxy['name']}")
    assert resp.status_code == 200 and resp.json() == proxy
    assert _err(api.call("GET", f"/proxies/{api.name()}-ghost")) == (404, "proxy not found")


@pytest.mark.parametrize("verb", ["POST", "PATCH"])
def test_update_keeps_missing_fields(api: Api, verb: str) -> None:
    proxy = api.create(UP)
    resp = api.call(verb, f"/proxies/{proxy['name']}", {"enabled": False})
    assert resp.status_code == 200
    updated = resp.json()
    assert updated["enabled"] is False and updated["upstream"] == UP
    resp = api.call(verb, f"/proxies/{proxy['name']}", {"upstream": "127.0.0.1:10"})
    assert resp.json()["upstream"] == "127.0.0.1:10" and resp.json()["enabled"] is False


def test_update_unknown_proxy_is_404(api: Api) -> None:
    resp = api.call("PATCH", f"/proxies/{api.name()}", {"enabled": False})
    assert _err(resp) == (404, "proxy not found")


@pytest.mark.data_path
def test_delete_answers_204_then_the_proxy_is_gone(api: Api) -> None:
    proxy = api.create(UP)
    host, port = host_port(proxy["listen"])
    resp = api.call("DELETE", f"/proxies/{proxy['name']}")
    assert resp.status_code == 204 and resp.content == b""
    assert api.call("GET", f"/proxies/{proxy['name']}").status_code == 404
    assert _err(api.call("DELETE", f"/proxies/{proxy['name']}")) == (404, "proxy not found")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=5).close()


def test_create_errors_in_order(api: Api) -> None:
    status, message = _err(api.call("POST", "/proxies", raw=b"{not json"))
    assert status == 400 and message.startswith("bad request body: ")
    assert _err(api.call("POST", "/proxies", {"upstream": UP})) == (
        400,
        "missing required field: name",
    )
    assert _err(api.call("POST", "/proxies", {"name": api.name()})) == (
        400,
        "missing required field: upstream",
    )
    proxy = api.create(UP)
    # the name is checked before binding: the same listen address is not the error
    assert _err(
        api.call("POST", "/proxies", {"name": proxy["name"], "upstream": UP, "listen": "x:y"})
    ) == (409, "proxy already exists")


@pytest.mark.data_path
def test_bind_failure_is_500_with_the_os_error(api: Api) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        resp = api.call(
            "POST", "/proxies", {"name": api.name(), "upstream": UP, "listen": f"127.0.0.1:{port}"}
        )
        status, message = _err(resp)
    assert status == 500
    assert "address already in use" in message and str(port) in message


def test_json_keys_are_case_insensitive_unknown_ignored_null_is_default(api: Api) -> None:
    name = api.name()
    resp = api.call(
        "POST",
        "/proxies",
        {"NAME": name, "Upstream": UP, "LISTEN": "127.0.0.1:0", "enabled": None, "colour": "red"},
    )
    assert resp.status_code == 201
    proxy = resp.json()
    assert proxy["name"] == name and proxy["upstream"] == UP and proxy["enabled"] is True


def test_wrong_json_types_are_400(api: Api) -> None:
    status, message = _err(api.call("POST", "/proxies", {"name": 5, "upstream": UP}))
    assert status == 400 and message.startswith("bad request body: ")
    status, message = _err(
        api.call("POST", "/proxies", {"name": api.name(), "upstream": UP, "enabled": "yes"})
    )
    assert status == 400 and message.startswith("bad request body: ")


def test_routing_404_405_trailing_slash_and_browsers(api: Api) -> None:
    assert api.call("GET", "/nothing-here").status_code == 404
    assert api.call("GET", "/proxies/").status_code == 404
    assert api.call("PUT", "/proxies").status_code == 405
    assert api.call("GET", "/reset").status_code == 405
    resp = api.call("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0 (compatible)"})
    assert resp.status_code == 403
    assert resp.text.strip() == "User agent not allowed"


def test_version_speaks_2_12(toxiproxy_url: str, api: Api) -> None:
    resp = api.call("GET", "/version")
    assert resp.status_code == 200
    assert resp.json()["version"] == "2.12.0"


@pytest.mark.data_path
def test_changing_upstream_drops_connections_and_uses_the_new_one(
    api: Api, echo: EchoServer
) -> None:
    proxy = api.create("127.0.0.1:9")  # discard port: nothing listens there
    host, port = host_port(proxy["listen"])
    api.call("PATCH", f"/proxies/{proxy['name']}", {"upstream": echo.address})
    updated = api.call("GET", f"/proxies/{proxy['name']}").json()
    with socket.create_connection(host_port(updated["listen"]), timeout=5) as conn:
        conn.sendall(b"ping")
        assert conn.recv(4) == b"ping"
    assert (host, port) == host_port(updated["listen"])


def test_the_upstream_is_not_resolved_when_the_proxy_is_created(api: Api) -> None:
    # .invalid never resolves (RFC 2606); creating must not even try.
    proxy = api.create("no-such-host.invalid:5432")
    assert proxy["upstream"] == "no-such-host.invalid:5432" and proxy["enabled"] is True


@pytest.mark.data_path
def test_changing_listen_moves_the_listener(api: Api) -> None:
    proxy = api.create(UP)
    old = host_port(proxy["listen"])
    new_port = free_port()
    resp = api.call("PATCH", f"/proxies/{proxy['name']}", {"listen": f"127.0.0.1:{new_port}"})
    assert resp.status_code == 200
    assert resp.json()["listen"] == f"127.0.0.1:{new_port}"
    socket.create_connection(("127.0.0.1", new_port), timeout=5).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(old, timeout=5).close()


@pytest.mark.data_path
def test_moving_onto_a_taken_port_is_500_and_leaves_the_proxy_disabled(api: Api) -> None:
    proxy = api.create(UP)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        resp = api.call("PATCH", f"/proxies/{proxy['name']}", {"listen": f"127.0.0.1:{port}"})
        assert resp.status_code == 500
        assert "address already in use" in resp.json()["error"]
        after = api.call("GET", f"/proxies/{proxy['name']}").json()
    # As Toxiproxy: the new address is stored, the proxy stopped and stays off.
    assert after["enabled"] is False and after["listen"] == f"127.0.0.1:{port}"
    on = api.call("PATCH", f"/proxies/{proxy['name']}", {"enabled": True})
    assert on.status_code == 200 and on.json()["enabled"] is True  # the port is free now


@pytest.mark.data_path
@pytest.mark.parametrize("listen", ["omitted", ""])
def test_an_omitted_or_empty_listen_is_a_free_port(api: Api, echo: EchoServer, listen: str) -> None:
    body: dict[str, object] = {"name": api.name(), "upstream": echo.address}
    if listen != "omitted":
        body["listen"] = listen
    resp = api.call("POST", "/proxies", body)
    assert resp.status_code == 201, resp.text
    port = host_port(resp.json()["listen"])[1]
    assert port > 0
    # Which interfaces is a documented difference (test_conf_differences.py); loopback
    # reaches it on both servers.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
