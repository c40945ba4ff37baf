"""POST /populate (validation, kept, replaced, error midway) and POST /reset."""

from __future__ import annotations

import socket

import pytest

from .conftest import Api, host_port

UP = "127.0.0.1:9"


def test_populate_creates_and_answers_201(api: Api) -> None:
    a, b = api.name("a"), api.name("b")
    resp = api.call(
        "POST",
        "/populate",
        [
            {"name": a, "listen": "127.0.0.1:0", "upstream": UP},
            {"name": b, "listen": "127.0.0.1:0", "upstream": UP, "enabled": False},
        ],
    )
    assert resp.status_code == 201
    proxies = resp.json()["proxies"]
    assert [p["name"] for p in proxies] == [a, b]
    assert [p["enabled"] for p in proxies] == [True, False]
    assert api.call("GET", f"/proxies/{a}").status_code == 200


def test_populate_validates_every_item_before_creating_any(api: Api) -> None:
    a = api.name("a")
    resp = api.call(
        "POST",
        "/populate",
        [{"name": a, "listen": "127.0.0.1:0", "upstream": UP}, {"listen": "127.0.0.1:0"}],
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == "missing required field: name at proxy 2"
    assert api.call("GET", f"/proxies/{a}").status_code == 404
    resp = api.call("POST", "/populate", [{"name": a, "listen": "127.0.0.1:0"}])
    assert resp.json()["error"] == "missing required field: upstream at proxy 1"
    resp = api.call("POST", "/populate", raw=b"[{]")
    assert resp.status_code == 400 and resp.json()["error"].startswith("bad request body: ")


def test_populate_keeps_an_unchanged_proxy_with_its_toxics_and_state(api: Api) -> None:
    kept = api.create(UP, label="kept")
    api.call("POST", f"/proxies/{kept['name']}/toxics", {"type": "noop"})
    api.call("PATCH", f"/proxies/{kept['name']}", {"enabled": False})
    resp = api.call(
        "POST", "/populate", [{"name": kept["name"], "listen": kept["listen"], "upstream": UP}]
    )
    assert resp.status_code == 201
    after = api.call("GET", f"/proxies/{kept['name']}").json()
    assert after["enabled"] is False
    assert [t["type"] for t in after["toxics"]] == ["noop"]


def test_populate_replaces_a_proxy_whose_upstream_changed(api: Api) -> None:
    old = api.create(UP, label="swap")
    api.call("POST", f"/proxies/{old['name']}/toxics", {"type": "noop"})
    resp = api.call(
        "POST",
        "/populate",
        [{"name": old["name"], "listen": "127.0.0.1:0", "upstream": "127.0.0.1:10"}],
    )
    assert resp.status_code == 201
    after = api.call("GET", f"/proxies/{old['name']}").json()
    assert after["upstream"] == "127.0.0.1:10" and after["toxics"] == []


@pytest.mark.data_path
def test_populate_error_midway_answers_that_status_with_what_was_done(api: Api) -> None:
    a, b, c = api.name("a"), api.name("b"), api.name("c")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        resp = api.call(
            "POST",
            "/populate",
            [
                {"name": a, "listen": "127.0.0.1:0", "upstream": UP},
                {"name": b, "listen": f"127.0.0.1:{port}", "upstream": UP},
                {"name": c, "listen": "127.0.0.1:0", "upstream": UP},
            ],
        )
    assert resp.status_code == 500
    body = resp.json()
    assert body["status"] == 500 and "address already in use" in body["error"]
    assert [p["name"] for p in body["proxies"]] == [a]
    assert api.call("GET", f"/proxies/{c}").status_code == 404


@pytest.mark.data_path
@pytest.mark.server_wide
def test_reset_enables_everything_and_removes_toxics_but_deletes_nothing(api: Api) -> None:
    first = api.create(UP)
    second = api.create(UP)
    api.call("POST", f"/proxies/{first['name']}/toxics", {"type": "latency"})
    api.call("POST", f"/proxies/{second['name']}/toxics", {"type": "noop", "stream": "upstream"})
    api.call("PATCH", f"/proxies/{second['name']}", {"enabled": False})
    resp = api.call("POST", "/reset")
    assert resp.status_code == 204 and resp.content == b""
    for proxy in (first, second):
        after = api.call("GET", f"/proxies/{proxy['name']}").json()
        assert after["enabled"] is True and after["toxics"] == []
        socket.create_connection(host_port(after["listen"]), timeout=5).close()


def test_populate_ignores_toxics_inside_items(api: Api) -> None:
    name = api.name()
    resp = api.call(
        "POST",
        "/populate",
        [
            {
                "name": name,
                "listen": "127.0.0.1:0",
                "upstream": UP,
                "toxics": [{"type": "latency", "attributes": {"latency": 100}}],
            }
        ],
    )
    assert resp.status_code == 201
    assert resp.json()["proxies"][0]["toxics"] == []
    assert api.call("GET", f"/proxies/{name}/toxics").json() == []


def test_null_bodies_decode_as_empty_like_go(api: Api) -> None:
    assert api.call("POST", "/populate", raw=b"null").status_code == 201
    resp = api.call("POST", "/proxies", raw=b"null")
    assert (resp.status_code, resp.json()["error"]) == (400, "missing required field: name")


def test_populate_errors_carry_null_proxies_when_none_was_done(api: Api) -> None:
    # Toxiproxy appends to a nil Go slice: null until a proxy is done (also on success).
    for body in ([{"listen": "127.0.0.1:0"}], [{"name": api.name()}]):
        resp = api.call("POST", "/populate", body)
        assert resp.status_code == 400 and resp.json()["proxies"] is None
    resp = api.call("POST", "/populate", raw=b"[{]")
    assert resp.status_code == 400 and resp.json()["proxies"] is None
    resp = api.call("POST", "/populate", [])
    assert resp.status_code == 201 and resp.json() == {"proxies": None}


@pytest.mark.data_path
def test_populate_failing_on_its_first_proxy_carries_null(api: Api) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        resp = api.call(
            "POST",
            "/populate",
            [{"name": api.name(), "listen": f"127.0.0.1:{port}", "upstream": UP}],
        )
    assert resp.status_code == 500 and resp.json()["proxies"] is None
