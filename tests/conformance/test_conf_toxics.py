"""Toxic endpoints: defaults, order of checks, listing order, update merge, delete."""

from __future__ import annotations

import pytest

from .conftest import Api

UP = "127.0.0.1:9"


@pytest.fixture
def proxy(api: Api) -> str:
    return str(api.create(UP)["name"])


def test_create_answers_200_with_defaults_and_every_attribute(api: Api, proxy: str) -> None:
    resp = api.call("POST", f"/proxies/{proxy}/toxics", {"type": "latency"})
    assert resp.status_code == 200
    assert resp.json() == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 0, "jitter": 0},
    }


@pytest.mark.parametrize(
    ("toxic_type", "attributes"),
    [
        ("latency", {"latency": 10, "jitter": 2}),
        ("bandwidth", {"rate": 100}),
        ("slow_close", {"delay": 10}),
        ("timeout", {"timeout": 10}),
        ("reset_peer", {"timeout": 10}),
        ("slicer", {"average_size": 10, "size_variation": 2, "delay": 5}),
        ("limit_data", {"bytes": 10}),
        ("noop", {}),
    ],
)
def test_every_toxic_type_is_accepted_and_echoes_its_attributes(
    api: Api, proxy: str, toxic_type: str, attributes: dict[str, int]
) -> None:
    resp = api.call(
        "POST",
        f"/proxies/{proxy}/toxics",
        {"type": toxic_type, "stream": "upstream", "toxicity": 0.5, "attributes": attributes},
    )
    assert resp.status_code == 200, resp.text
    toxic = resp.json()
    assert toxic["name"] == f"{toxic_type}_upstream"
    assert toxic["stream"] == "upstream" and toxic["toxicity"] == 0.5
    assert toxic["attributes"] == attributes
    assert api.call("GET", f"/proxies/{proxy}/toxics/{toxic['name']}").json() == toxic


def test_attributes_list_zeros_too(api: Api, proxy: str) -> None:
    toxic = api.call(
        "POST", f"/proxies/{proxy}/toxics", {"type": "slicer", "attributes": {"average_size": 5}}
    ).json()
    assert toxic["attributes"] == {"average_size": 5, "size_variation": 0, "delay": 0}


def test_create_errors_in_order(api: Api, proxy: str) -> None:
    def err(path: str, body: object = None, raw: bytes | None = None) -> tuple[int, str]:
        resp = api.call("POST", path, body, raw=raw)
        return resp.status_code, resp.json()["error"]

    assert err(f"/proxies/{proxy}-ghost/toxics", raw=b"{") == (404, "proxy not found")
    status, message = err(f"/proxies/{proxy}/toxics", raw=b"{")
    assert status == 400 and message.startswith("bad request body: ")
    assert err(f"/proxies/{proxy}/toxics", {"type": "bogus", "stream": "sideways"}) == (
        400,
        "stream was invalid, can be either upstream or downstream",
    )
    assert err(f"/proxies/{proxy}/toxics", {"type": "bogus"}) == (400, "invalid toxic type")
    assert err(f"/proxies/{proxy}/toxics", {"stream": "upstream"}) == (400, "invalid toxic type")
    api.call("POST", f"/proxies/{proxy}/toxics", {"type": "latency", "name": "same"})
    # the name is unique across both streams
    assert err(
        f"/proxies/{proxy}/toxics", {"type": "noop", "name": "same", "stream": "upstream"}
    ) == (409, "toxic already exists")
    status, message = err(
        f"/proxies/{proxy}/toxics", {"type": "latency", "attributes": {"latency": "slow"}}
    )
    assert status == 400 and message.startswith("bad request body: ")


@pytest.mark.parametrize("value", [1.5, "100"])
def test_float_or_string_where_an_integer_belongs_is_400(
    api: Api, proxy: str, value: object
) -> None:
    resp = api.call(
        "POST", f"/proxies/{proxy}/toxics", {"type": "latency", "attributes": {"latency": value}}
    )
    assert resp.status_code == 400
    assert resp.json()["error"].startswith("bad request body: ")
    assert api.call("GET", f"/proxies/{proxy}/toxics").json() == []


def test_stream_matches_case_insensitively(api: Api, proxy: str) -> None:
    toxic = api.call("POST", f"/proxies/{proxy}/toxics", {"type": "noop", "stream": "UpStream"})
    assert toxic.status_code == 200
    # Stored and named as sent (Toxiproxy keeps the text; its ParseDirection lowers it).
    assert toxic.json()["stream"] == "UpStream" and toxic.json()["name"] == "noop_UpStream"


def test_list_is_upstream_first_then_downstream_in_insertion_order(api: Api, proxy: str) -> None:
    for name, stream in [
        ("d1", "downstream"),
        ("u1", "upstream"),
        ("d2", "downstream"),
        ("u2", "upstream"),
    ]:
        resp = api.call(
            "POST", f"/proxies/{proxy}/toxics", {"type": "noop", "name": name, "stream": stream}
        )
        assert resp.status_code == 200
    listing = api.call("GET", f"/proxies/{proxy}/toxics")
    assert listing.status_code == 200
    assert [t["name"] for t in listing.json()] == ["u1", "u2", "d1", "d2"]
    shown = api.call("GET", f"/proxies/{proxy}").json()["toxics"]
    assert [t["name"] for t in shown] == ["u1", "u2", "d1", "d2"]


@pytest.mark.parametrize("verb", ["POST", "PATCH"])
def test_update_merges_attributes_and_keeps_toxicity(api: Api, proxy: str, verb: str) -> None:
    api.call(
        "POST",
        f"/proxies/{proxy}/toxics",
        {"type": "latency", "toxicity": 0.7, "attributes": {"latency": 100, "jitter": 10}},
    )
    resp = api.call(
        verb,
        f"/proxies/{proxy}/toxics/latency_downstream",
        {"attributes": {"latency": 200}, "type": "noop", "stream": "upstream", "name": "x"},
    )
    assert resp.status_code == 200
    toxic = resp.json()
    assert toxic["attributes"] == {"latency": 200, "jitter": 10}
    assert toxic["toxicity"] == pytest.approx(0.7)
    assert (toxic["name"], toxic["type"], toxic["stream"]) == (
        "latency_downstream",
        "latency",
        "downstream",
    )
    toxic = api.call(verb, f"/proxies/{proxy}/toxics/latency_downstream", {"toxicity": 0.25}).json()
    assert toxic["toxicity"] == 0.25 and toxic["attributes"]["latency"] == 200


def test_update_and_show_unknown_toxic_is_404(api: Api, proxy: str) -> None:
    for method in ("GET", "PATCH", "POST", "DELETE"):
        resp = api.call(method, f"/proxies/{proxy}/toxics/ghost", {"toxicity": 1})
        assert (resp.status_code, resp.json()["error"]) == (404, "toxic not found"), method


def test_delete_answers_204_and_the_toxic_is_gone(api: Api, proxy: str) -> None:
    api.call("POST", f"/proxies/{proxy}/toxics", {"type": "noop"})
    resp = api.call("DELETE", f"/proxies/{proxy}/toxics/noop_downstream")
    assert resp.status_code == 204 and resp.content == b""
    assert api.call("GET", f"/proxies/{proxy}/toxics").json() == []
    assert api.call("DELETE", f"/proxies/{proxy}/toxics/noop_downstream").status_code == 404


def test_toxics_are_kept_across_disable_and_enable(api: Api, proxy: str) -> None:
    api.call("POST", f"/proxies/{proxy}/toxics", {"type": "latency", "attributes": {"latency": 5}})
    api.call("PATCH", f"/proxies/{proxy}", {"enabled": False})
    back = api.call("PATCH", f"/proxies/{proxy}", {"enabled": True}).json()
    assert [t["name"] for t in back["toxics"]] == ["latency_downstream"]


@pytest.mark.embedded_only
@pytest.mark.parametrize(
    ("toxic_type", "attributes"),
    [
        ("bandwidth", {"rate": 0}),
        ("bandwidth", {"rate": -5}),
        ("slicer", {"average_size": 0}),
        ("latency", {"latency": -1}),
        ("timeout", {"timeout": -1}),
        ("limit_data", {"bytes": -1}),
    ],
)
def test_values_that_hang_or_crash_toxiproxy_are_400_here(
    api: Api, proxy: str, toxic_type: str, attributes: dict[str, int]
) -> None:
    resp = api.call(
        "POST", f"/proxies/{proxy}/toxics", {"type": toxic_type, "attributes": attributes}
    )
    assert resp.status_code == 400
    message = resp.json()["error"]
    assert next(iter(attributes)) in message
    assert api.call("GET", f"/proxies/{proxy}/toxics").json() == []


def test_toxic_keys_and_attribute_names_match_case_insensitively(api: Api, proxy: str) -> None:
    resp = api.call(
        "POST",
        f"/proxies/{proxy}/toxics",
        {"Type": "latency", "NAME": "ci", "Attributes": {"LATENCY": 12, "Jitter": 3}},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["attributes"] == {"latency": 12, "jitter": 3}
    resp = api.call("PATCH", f"/proxies/{proxy}/toxics/ci", {"ATTRIBUTES": {"latency": 20}})
    assert resp.json()["attributes"] == {"latency": 20, "jitter": 3}


def test_an_upper_case_stream_is_kept_as_sent_in_the_name_and_listed_upstream(
    api: Api, proxy: str
) -> None:
    resp = api.call("POST", f"/proxies/{proxy}/toxics", {"type": "latency", "stream": "UPSTREAM"})
    assert resp.status_code == 200
    assert (resp.json()["name"], resp.json()["stream"]) == ("latency_UPSTREAM", "UPSTREAM")
    api.call("POST", f"/proxies/{proxy}/toxics", {"type": "noop", "name": "d"})
    listing = api.call("GET", f"/proxies/{proxy}/toxics").json()
    assert [t["name"] for t in listing] == ["latency_UPSTREAM", "d"]  # upstream first
    # A client deletes it by the name it expects; the lower-case name is another toxic.
    assert api.call("DELETE", f"/proxies/{proxy}/toxics/latency_upstream").status_code == 404
    assert api.call("DELETE", f"/proxies/{proxy}/toxics/latency_UPSTREAM").status_code == 204


def test_the_same_type_may_be_added_under_both_spellings_of_a_stream(api: Api, proxy: str) -> None:
    # Names differ (latency_upstream, latency_Upstream), so Toxiproxy takes both.
    for stream in ("upstream", "Upstream"):
        resp = api.call("POST", f"/proxies/{proxy}/toxics", {"type": "noop", "stream": stream})
        assert resp.status_code == 200, resp.text
    names = [t["name"] for t in api.call("GET", f"/proxies/{proxy}/toxics").json()]
    assert names == ["noop_upstream", "noop_Upstream"]


@pytest.mark.parametrize("count", [1, 2])
def test_an_empty_stream_is_invalid_and_null_is_the_default(
    api: Api, proxy: str, count: int
) -> None:
    # Toxiproxy parses "" as a direction (invalid); only an omitted or null stream is
    # the default, downstream. The second toxic must not meet "toxic already exists".
    for _ in range(count - 1):
        api.call("POST", f"/proxies/{proxy}/toxics", {"type": "noop", "stream": None})
    resp = api.call("POST", f"/proxies/{proxy}/toxics", {"type": "noop", "stream": ""})
    assert (resp.status_code, resp.json()["error"]) == (
        400,
        "stream was invalid, can be either upstream or downstream",
    )
    listing = api.call("GET", f"/proxies/{proxy}/toxics").json()
    assert [(t["name"], t["stream"]) for t in listing] == [("noop_downstream", "downstream")] * (
        count - 1
    )
