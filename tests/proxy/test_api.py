"""Request shapes, defaults, orders of checks and populate, over a fake manager."""

from __future__ import annotations

import pytest

from .conftest import ApiUnderTest

UP = "127.0.0.1:1"


def test_version_names_the_api_level_and_this_implementation(api: ApiUnderTest) -> None:
    status, body, headers = api.request("GET", "/version")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert body["version"] == "2.12.0"
    assert "pytest-chaos" in body["implementation"]


def test_create_defaults_and_case_insensitive_keys(api: ApiUnderTest) -> None:
    status, body, _ = api.request(
        "POST",
        "/proxies",
        {"NAME": "p", "Upstream": UP, "listen": "127.0.0.1:0", "enabled": None, "extra": 1},
    )
    assert status == 201
    assert body == {
        "name": "p",
        "listen": "127.0.0.1:0",
        "upstream": UP,
        "enabled": True,
        "toxics": [],
    }


def test_create_checks_in_toxiproxys_order(api: ApiUnderTest) -> None:
    assert api.request("POST", "/proxies", b"{")[1]["error"].startswith("bad request body: ")
    assert api.request("POST", "/proxies", {"upstream": UP})[1] == {
        "error": "missing required field: name",
        "status": 400,
    }
    assert api.request("POST", "/proxies", {"name": "p", "upstream": ""})[1] == {
        "error": "missing required field: upstream",
        "status": 400,
    }
    api.request("POST", "/proxies", {"name": "p", "upstream": UP})
    assert api.request("POST", "/proxies", {"name": "p", "upstream": UP})[:2] == (
        409,
        {"error": "proxy already exists", "status": 409},
    )


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": 5, "upstream": UP}, 'field "name" must be a string, got number 5'),
        ({"name": "p", "upstream": UP, "enabled": "yes"}, 'field "enabled" must be true or false'),
        ([1, 2], "expected a JSON object, got array"),
        ('"p"', "expected a JSON object, got string"),
        (b"\xff\xfe", "not UTF-8 (byte 0xff at offset 0)"),
        (b"", "EOF"),
        (b'{"name": NaN}', "NaN is not valid JSON"),
        (b"   ", "EOF"),
        (b"[" * 100000, "nested too deeply"),
        (b'{"name": ' + b"9" * 5000 + b"}", "invalid JSON"),
    ],
)
def test_bad_create_bodies_are_400_with_the_reason(
    api: ApiUnderTest, body: object, needle: str
) -> None:
    status, reply, _ = api.request("POST", "/proxies", body)
    assert status == 400
    assert reply["error"].startswith("bad request body: ")
    assert needle in reply["error"]
    assert api.manager.calls == []


def test_only_the_first_json_value_is_read_like_go(api: ApiUnderTest) -> None:
    status, _, _ = api.request("POST", "/proxies", b'{"name":"p","upstream":"x:1"} trailing')
    assert status == 201


def test_update_keeps_missing_fields_and_accepts_post_and_patch(api: ApiUnderTest) -> None:
    api.request("POST", "/proxies", {"name": "p", "upstream": UP})
    status, body, _ = api.request("PATCH", "/proxies/p", {"enabled": False})
    assert status == 200 and body["enabled"] is False and body["upstream"] == UP
    status, body, _ = api.request("POST", "/proxies/p", {"upstream": "127.0.0.1:2"})
    assert status == 200 and body["enabled"] is False and body["upstream"] == "127.0.0.1:2"


def test_unknown_proxy_is_404_before_the_body_is_read(api: ApiUnderTest) -> None:
    for method, path in [
        ("GET", "/proxies/ghost"),
        ("PATCH", "/proxies/ghost"),
        ("DELETE", "/proxies/ghost"),
        ("GET", "/proxies/ghost/toxics"),
        ("POST", "/proxies/ghost/toxics"),
        ("GET", "/proxies/ghost/stats"),
        ("PATCH", "/proxies/ghost/toxics/t"),
    ]:
        status, body, _ = api.request(method, path, b"not json")
        assert (status, body) == (404, {"error": "proxy not found", "status": 404}), path


def test_toxic_create_defaults_and_shape_checks(api: ApiUnderTest) -> None:
    api.request("POST", "/proxies", {"name": "p", "upstream": UP})
    status, body, _ = api.request("POST", "/proxies/p/toxics", {"type": "latency"})
    assert status == 200
    assert body == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 0, "jitter": 0},
    }
    status, body, _ = api.request("POST", "/proxies/p/toxics", {"type": "latency", "toxicity": "1"})
    assert status == 400 and 'field "toxicity" must be a number' in body["error"]
    status, body, _ = api.request("POST", "/proxies/p/toxics", {"type": "noop", "attributes": 3})
    assert status == 400 and 'field "attributes" must be a JSON object' in body["error"]
    status, body, _ = api.request("POST", "/proxies/p/toxics", {"type": "noop", "toxicity": 1e999})
    assert status == 400


def test_toxic_update_checks_toxic_then_body_and_merges(api: ApiUnderTest) -> None:
    api.request("POST", "/proxies", {"name": "p", "upstream": UP})
    api.request(
        "POST", "/proxies/p/toxics", {"type": "latency", "attributes": {"latency": 5, "jitter": 1}}
    )
    assert api.request("PATCH", "/proxies/p/toxics/nope", b"{")[1] == {
        "error": "toxic not found",
        "status": 404,
    }
    assert api.request("PATCH", "/proxies/p/toxics/latency_downstream", b"{")[0] == 400
    status, body, _ = api.request(
        "POST", "/proxies/p/toxics/latency_downstream", {"Attributes": {"LATENCY": 9}}
    )
    assert status == 200
    assert body["attributes"] == {"latency": 9, "jitter": 1}
    assert body["toxicity"] == 1.0
    status, body, _ = api.request(
        "PATCH", "/proxies/p/toxics/latency_downstream", {"toxicity": 0.5}
    )
    assert body["toxicity"] == 0.5 and body["attributes"]["latency"] == 9
    assert api.request("DELETE", "/proxies/p/toxics/latency_downstream")[0] == 204
    assert api.request("GET", "/proxies/p/toxics")[1] == []


def test_reset_and_delete_answer_204_with_no_body(api: ApiUnderTest) -> None:
    api.request("POST", "/proxies", {"name": "p", "upstream": UP, "enabled": False})
    status, body, headers = api.request("POST", "/reset")
    assert (status, body) == (204, b"")
    assert "content-length" not in headers or headers["content-length"] == "0"
    assert api.manager.proxies["p"].enabled is True
    assert api.request("DELETE", "/proxies/p")[:2] == (204, b"")


def test_populate_validates_everything_before_changing_anything(api: ApiUnderTest) -> None:
    items = [{"name": "a", "upstream": UP}, {"name": "b"}, {"upstream": UP}]
    status, body, _ = api.request("POST", "/populate", items)
    assert (status, body) == (
        400,
        {"error": "missing required field: upstream at proxy 2", "status": 400, "proxies": None},
    )
    assert api.manager.calls == []
    status, body, _ = api.request("POST", "/populate", [{"upstream": UP}])
    assert body["error"] == "missing required field: name at proxy 1"
    status, body, _ = api.request("POST", "/populate", [{"name": "a", "upstream": 3}])
    assert status == 400 and "at proxy 1" in body["error"]
    status, body, _ = api.request("POST", "/populate", {"name": "a"})
    assert status == 400 and "expected a JSON array" in body["error"]
    status, body, _ = api.request("POST", "/populate", [None])
    assert body["error"] == "missing required field: name at proxy 1"


def test_populate_keeps_unchanged_proxies_and_replaces_changed_ones(api: ApiUnderTest) -> None:
    api.request("POST", "/proxies", {"name": "keep", "listen": "l:1", "upstream": UP})
    api.request("POST", "/proxies/keep/toxics", {"type": "noop"})
    api.request("POST", "/proxies", {"name": "swap", "listen": "l:2", "upstream": UP})
    api.manager.calls.clear()
    status, body, _ = api.request(
        "POST",
        "/populate",
        [
            {"name": "keep", "listen": "l:1", "upstream": UP},
            {"name": "swap", "listen": "l:2", "upstream": "127.0.0.1:9"},
            {"name": "new", "listen": "l:3", "upstream": UP, "enabled": False},
        ],
    )
    assert status == 201
    assert [p["name"] for p in body["proxies"]] == ["keep", "swap", "new"]
    assert body["proxies"][0]["toxics"][0]["type"] == "noop"
    assert body["proxies"][2]["enabled"] is False
    assert api.manager.calls == ["delete swap", "create swap", "create new"]


def test_populate_error_midway_reports_what_was_done(api: ApiUnderTest) -> None:
    api.manager.fail_bind_on.add("l:busy")
    status, body, _ = api.request(
        "POST",
        "/populate",
        [
            {"name": "a", "listen": "l:1", "upstream": UP},
            {"name": "b", "listen": "l:busy", "upstream": UP},
            {"name": "c", "listen": "l:3", "upstream": UP},
        ],
    )
    assert status == 500
    assert body["status"] == 500 and "address already in use" in body["error"]
    assert [p["name"] for p in body["proxies"]] == ["a"]
    assert "c" not in api.manager.proxies


def test_populate_of_nothing_is_201_with_null_as_in_toxiproxy(api: ApiUnderTest) -> None:
    # Toxiproxy appends to a nil Go slice, which encodes as null while empty.
    assert api.request("POST", "/populate", [])[:2] == (201, {"proxies": None})


def test_a_null_body_means_no_fields_as_in_go(api: ApiUnderTest) -> None:
    assert api.request("POST", "/proxies", b"null")[1] == {
        "error": "missing required field: name",
        "status": 400,
    }
    assert api.request("POST", "/populate", b"null")[:2] == (201, {"proxies": None})
    api.request("POST", "/proxies", {"name": "p", "upstream": UP})
    status, body, _ = api.request("PATCH", "/proxies/p", b"null")
    assert status == 200 and body["upstream"] == UP and body["enabled"] is True
    assert api.request("POST", "/proxies/p/toxics", b"null")[1]["error"] == "invalid toxic type"
