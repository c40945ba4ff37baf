"""Model-based test: random sequences of API calls against the real server.

A Hypothesis state machine drives create, update, delete, toxics, reset and populate
through HTTP and keeps a plain model of what Toxiproxy's rules say the server should
hold; after every step ``GET /proxies`` must equal the model (order of toxics included).
``CHAOS_FUZZ_EXAMPLES`` sets the number of sequences (100 by default).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_chaos.proxy import EmbeddedServer

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

NAMES = st.sampled_from(["a", "b", "c"])
TOXIC_NAMES = st.sampled_from(["t1", "t2", ""])
UPSTREAMS = st.sampled_from(["127.0.0.1:9", "127.0.0.1:10"])
# Toxiproxy stores the stream as sent and matches it case-insensitively.
STREAMS = st.sampled_from(["upstream", "downstream", "UPSTREAM", "Downstream"])
LATENCY = st.integers(min_value=0, max_value=10_000)
TOXICITY = st.sampled_from([0.0, 0.25, 1.0])


@dataclass
class ModelToxic:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int]


@dataclass
class ModelProxy:
    upstream: str
    enabled: bool
    # Toxiproxy shows the address as given until the proxy first binds it, then the
    # bound address (so "127.0.0.1:0" only while never enabled).
    listen_literal: bool
    toxics: list[ModelToxic] = field(default_factory=list)

    def toxics_in_api_order(self) -> list[ModelToxic]:
        return [t for t in self.toxics if t.stream.lower() == "upstream"] + [
            t for t in self.toxics if t.stream.lower() == "downstream"
        ]


class ApiMachine(RuleBasedStateMachine):
    server: EmbeddedServer  # set by the test before running

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, ModelProxy] = {}
        self.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        for name in self.call("GET", "/proxies")[1]:
            assert self.call("DELETE", f"/proxies/{name}")[0] == 204

    def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        self.conn.request(method, path, body=None if body is None else json.dumps(body))
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None

    def teardown(self) -> None:
        self.conn.close()

    # -- proxies -----------------------------------------------------------------------

    @rule(name=NAMES, upstream=UPSTREAMS, enabled=st.booleans())
    def create(self, name: str, upstream: str, enabled: bool) -> None:
        status, body = self.call(
            "POST",
            "/proxies",
            {"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": enabled},
        )
        if name in self.model:
            assert (status, body["error"]) == (409, "proxy already exists")
            return
        assert status == 201, body
        self.model[name] = ModelProxy(upstream, enabled, listen_literal=not enabled)

    @rule(name=NAMES)
    def delete(self, name: str) -> None:
        status, _ = self.call("DELETE", f"/proxies/{name}")
        assert status == (204 if self.model.pop(name, None) is not None else 404)

    @rule(name=NAMES, enabled=st.booleans(), verb=st.sampled_from(["POST", "PATCH"]))
    def set_enabled(self, name: str, enabled: bool, verb: str) -> None:
        status, _ = self.call(verb, f"/proxies/{name}", {"enabled": enabled})
        proxy = self.model.get(name)
        if proxy is None:
            assert status == 404
            return
        assert status == 200
        proxy.enabled = enabled
        proxy.listen_literal = proxy.listen_literal and not enabled

    @rule(name=NAMES, upstream=UPSTREAMS)
    def set_upstream(self, name: str, upstream: str) -> None:
        status, _ = self.call("PATCH", f"/proxies/{name}", {"upstream": upstream})
        proxy = self.model.get(name)
        assert status == (200 if proxy is not None else 404)
        if proxy is not None:
            proxy.upstream = upstream

    # -- toxics ------------------------------------------------------------------------

    @rule(
        proxy=NAMES,
        name=TOXIC_NAMES,
        kind=st.sampled_from(["latency", "noop", "bandwidth"]),
        stream=STREAMS,
        toxicity=TOXICITY,
        value=LATENCY,
    )
    def add_toxic(
        self, proxy: str, name: str, kind: str, stream: str, toxicity: float, value: int
    ) -> None:
        attributes = {"latency": {"latency": value}, "noop": {}, "bandwidth": {"rate": value + 1}}
        status, body = self.call(
            "POST",
            f"/proxies/{proxy}/toxics",
            {
                "name": name or None,
                "type": kind,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": attributes[kind],
            },
        )
        p = self.model.get(proxy)
        if p is None:
            assert status == 404
            return
        full_name = name or f"{kind}_{stream}"
        if any(t.name == full_name for t in p.toxics):
            assert (status, body["error"]) == (409, "toxic already exists")
            return
        assert status == 200, body
        full = {
            "latency": {"latency": value, "jitter": 0},
            "noop": {},
            "bandwidth": {"rate": value + 1},
        }
        p.toxics.append(ModelToxic(full_name, kind, stream, toxicity, full[kind]))

    @rule(proxy=NAMES, index=st.integers(0, 3), toxicity=st.none() | TOXICITY, value=LATENCY)
    def update_toxic(self, proxy: str, index: int, toxicity: float | None, value: int) -> None:
        p = self.model.get(proxy)
        target = p.toxics[index] if p is not None and index < len(p.toxics) else None
        name = target.name if target is not None else "missing"
        body: dict[str, Any] = {"attributes": {"latency": value, "rate": value + 1}}
        if toxicity is not None:
            body["toxicity"] = toxicity
        status, reply = self.call("PATCH", f"/proxies/{proxy}/toxics/{name}", body)
        if target is None:
            assert status == 404
            return
        assert status == 200, reply
        for key in target.attributes:  # merged: only the keys the type has and we sent
            if key in body["attributes"]:
                target.attributes[key] = body["attributes"][key]
        if toxicity is not None:
            target.toxicity = toxicity

    @rule(proxy=NAMES, index=st.integers(0, 3))
    def remove_toxic(self, proxy: str, index: int) -> None:
        p = self.model.get(proxy)
        target = p.toxics[index] if p is not None and index < len(p.toxics) else None
        name = target.name if target is not None else "missing"
        status, _ = self.call("DELETE", f"/proxies/{proxy}/toxics/{name}")
        if target is None:
            assert status == 404
            return
        assert status == 204
        assert p is not None
        p.toxics.remove(target)

    # -- server-wide -------------------------------------------------------------------

    @rule()
    def reset(self) -> None:
        assert self.call("POST", "/reset")[0] == 204
        for p in self.model.values():
            p.enabled = True
            p.listen_literal = False
            p.toxics.clear()

    @rule(items=st.lists(st.tuples(NAMES, UPSTREAMS, st.booleans()), min_size=0, max_size=3))
    def populate(self, items: list[tuple[str, str, bool]]) -> None:
        body = [
            {"name": n, "listen": "127.0.0.1:0", "upstream": u, "enabled": e} for n, u, e in items
        ]
        status, reply = self.call("POST", "/populate", body)
        assert status == 201, reply
        for name, upstream, enabled in items:
            current = self.model.get(name)
            # Kept only when listen and upstream are unchanged: the listen string is
            # "127.0.0.1:0" only for a proxy that never bound.
            if current is not None and current.listen_literal and current.upstream == upstream:
                continue
            self.model[name] = ModelProxy(upstream, enabled, listen_literal=not enabled)
        # null while empty, as Toxiproxy's nil Go slice
        assert [p["name"] for p in reply["proxies"] or []] == [n for n, _, _ in items]

    # -- the invariant -----------------------------------------------------------------

    @invariant()
    def server_matches_model(self) -> None:
        status, proxies = self.call("GET", "/proxies")
        assert status == 200
        assert sorted(proxies) == sorted(self.model)
        for name, want in self.model.items():
            got = proxies[name]
            assert got["upstream"] == want.upstream, name
            assert got["enabled"] is want.enabled, name
            assert (got["listen"] == "127.0.0.1:0") is want.listen_literal, (name, got)
            if want.enabled:
                # An enabled proxy accepts on the address it reports. (A disabled one's
                # old port is not checked: after a few steps another process may own it.)
                _, _, port = got["listen"].rpartition(":")
                assert _accepts(int(port)), (name, got)
            assert got["toxics"] == [
                {
                    "name": t.name,
                    "type": t.type,
                    "stream": t.stream,
                    "toxicity": t.toxicity,
                    "attributes": t.attributes,
                }
                for t in want.toxics_in_api_order()
            ], name


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return False
    return True


@pytest.fixture(scope="module")
def server() -> Any:
    with EmbeddedServer(seed=5) as srv:
        yield srv


def test_api_sequences_match_the_model(server: EmbeddedServer) -> None:
    ApiMachine.server = server
    runner = ApiMachine.TestCase
    runner.settings = settings(
        max_examples=int(os.environ.get("CHAOS_FUZZ_EXAMPLES", "100")),
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    runner().runTest()
