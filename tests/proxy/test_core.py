"""The ProxyManager surface the HTTP API maps: JSON shapes, defaults, errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from pytest_chaos.proxy._core import ProxyManager
from pytest_chaos.proxy._errors import ApiError, BadRequest, BindError, Conflict, NotFound


def run(body: Callable[[ProxyManager], Awaitable[None]]) -> None:
    async def main() -> None:
        manager = ProxyManager(seed=7)
        try:
            await body(manager)
        finally:
            await manager.close()

    asyncio.run(main())


def test_proxy_json_and_listen_semantics() -> None:
    async def body(m: ProxyManager) -> None:
        p = await m.create("redis", "127.0.0.1:0", "127.0.0.1:6379")
        j = p.to_json()
        assert list(j) == ["name", "listen", "upstream", "enabled", "toxics"]
        assert j["listen"] != "127.0.0.1:0" and str(j["listen"]).startswith("127.0.0.1:")
        assert j["enabled"] is True and j["toxics"] == []
        off = await m.create("pg", "localhost:0", "127.0.0.1:5432", enabled=False)
        assert off.to_json()["listen"] == "localhost:0"  # never bound: as given
        await m.update("pg", enabled=True)
        assert str(off.to_json()["listen"]).startswith("127.0.0.1:")  # localhost -> IPv4
        assert m.names() == ["redis", "pg"]
        assert "'redis'" in repr(p) and "enabled" in repr(p)

    run(body)


def test_not_found_and_conflict_messages() -> None:
    async def body(m: ProxyManager) -> None:
        with pytest.raises(NotFound, match=r"^proxy not found$"):
            m.get("nope")
        await m.create("a", "127.0.0.1:0", "127.0.0.1:1")
        with pytest.raises(Conflict, match=r"^proxy already exists$"):
            await m.create("a", "127.0.0.1:0", "127.0.0.1:1")
        with pytest.raises(NotFound, match=r"^toxic not found$"):
            m.get_toxic("a", "nope")
        with pytest.raises(NotFound, match=r"^proxy not found$"):
            await m.delete("nope")
        err = NotFound("proxy not found")
        assert err.to_json() == {"error": "proxy not found", "status": 404}

    run(body)


def test_bind_errors() -> None:
    async def body(m: ProxyManager) -> None:
        with pytest.raises(BindError) as info:
            await m.create("x", "nonsense", "127.0.0.1:1")
        assert info.value.message == "listen tcp: address nonsense: missing port in address"
        assert "x" not in m.names()
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        try:
            port = taken.getsockname()[1]
            with pytest.raises(BindError, match=r"bind: address already in use$"):
                await m.create("y", f"127.0.0.1:{port}", "127.0.0.1:1")
        finally:
            taken.close()

    run(body)


def test_toxic_defaults_order_and_json() -> None:
    async def body(m: ProxyManager) -> None:
        await m.create("p", "127.0.0.1:0", "127.0.0.1:1")
        down = m.add_toxic(
            "p",
            type="latency",
            name=None,
            stream="downstream",
            toxicity=1.0,
            attributes={"latency": 5},
        )
        up = m.add_toxic(
            "p",
            type="bandwidth",
            name=None,
            stream="UpStream",
            toxicity=0.5,
            attributes={"rate": 10},
        )
        assert down.to_json() == {
            "name": "latency_downstream",
            "type": "latency",
            "stream": "downstream",
            "toxicity": 1.0,
            "attributes": {"latency": 5, "jitter": 0},
        }
        # Stored and named as sent, as Toxiproxy does; it runs in the upstream link.
        assert up.name == "bandwidth_UpStream" and up.stream == "UpStream"
        assert up.direction == "upstream"
        toxics = cast(list[dict[str, Any]], m.get("p").to_json()["toxics"])
        assert [t["name"] for t in toxics] == ["bandwidth_UpStream", "latency_downstream"]

    run(body)


def test_toxic_errors_in_the_spec_order() -> None:
    async def body(m: ProxyManager) -> None:
        await m.create("p", "127.0.0.1:0", "127.0.0.1:1")

        def add(**kw: object) -> None:
            args: dict[str, object] = {
                "type": "latency",
                "name": None,
                "stream": "downstream",
                "toxicity": 1.0,
                "attributes": {},
            }
            args.update(kw)
            m.add_toxic(str(kw.pop("proxy", "p")), **args)  # type: ignore[arg-type]

        with pytest.raises(NotFound, match=r"proxy not found"):
            m.add_toxic(
                "zz", type="bogus", name=None, stream="sideways", toxicity=1.0, attributes={}
            )
        with pytest.raises(
            BadRequest, match=r"^stream was invalid, can be either upstream or downstream$"
        ):
            add(type="bogus", stream="sideways")
        with pytest.raises(BadRequest, match=r"^invalid toxic type$"):
            add(type="bogus")
        with pytest.raises(BadRequest, match=r"^invalid toxic type$"):
            add(type="")
        add(name="shared")
        with pytest.raises(Conflict, match=r"^toxic already exists$"):
            add(name="shared", stream="upstream", attributes={"latency": 1.5})
        with pytest.raises(BadRequest, match=r"^bad request body: "):
            add(name="t2", attributes={"latency": 1.5})
        with pytest.raises(BadRequest, match=r"'rate'.*must be > 0"):
            add(name="t3", type="bandwidth", attributes={"rate": 0})
        with pytest.raises(BadRequest, match=r"toxicity must be between 0.0 and 1.0"):
            add(name="t4", toxicity=1.5)
        assert [t.name for t in m.get("p").toxics.values()] == ["shared"]

    run(body)


def test_update_toxic_merges_and_keeps_toxicity() -> None:
    async def body(m: ProxyManager) -> None:
        await m.create("p", "127.0.0.1:0", "127.0.0.1:1")
        m.add_toxic(
            "p",
            type="latency",
            name="l",
            stream="upstream",
            toxicity=0.3,
            attributes={"latency": 100, "jitter": 5},
        )
        t = m.update_toxic("p", "l", attributes={"jitter": 9}, toxicity=None)
        assert t.to_json()["attributes"] == {"latency": 100, "jitter": 9}
        assert t.toxicity == 0.3
        t = m.update_toxic("p", "l", attributes=None, toxicity=1)
        assert t.toxicity == 1.0 and t.to_json()["attributes"] == {"latency": 100, "jitter": 9}
        with pytest.raises(BadRequest):
            m.update_toxic("p", "l", attributes={"latency": -1}, toxicity=None)
        assert m.get_toxic("p", "l").to_json()["attributes"] == {"latency": 100, "jitter": 9}
        m.remove_toxic("p", "l")
        with pytest.raises(NotFound, match=r"toxic not found"):
            m.remove_toxic("p", "l")

    run(body)


def test_reset_enables_everything_and_removes_toxics() -> None:
    async def body(m: ProxyManager) -> None:
        a = await m.create("a", "127.0.0.1:0", "127.0.0.1:1")
        listen = a.listen
        await m.update("a", enabled=False)
        m.add_toxic("a", type="noop", name=None, stream="upstream", toxicity=1.0, attributes={})
        await m.reset()
        assert a.enabled and a.to_json()["toxics"] == [] and a.listen == listen
        assert m.names() == ["a"]

    run(body)


def test_update_restarts_only_when_the_address_differs() -> None:
    async def body(m: ProxyManager) -> None:
        p = await m.create("a", "127.0.0.1:0", "127.0.0.1:1")
        port = p.listen.rsplit(":", 1)[1]
        await m.update("a", listen=f"localhost:{port}", upstream="127.0.0.1:1")
        assert p.enabled and p.listen == f"127.0.0.1:{port}"
        assert not p.differs(f"localhost:{port}", "127.0.0.1:1")
        assert p.differs("127.0.0.1:0", "127.0.0.1:1")
        await m.update("a", listen="127.0.0.1:0")
        assert p.enabled and p.listen.rsplit(":", 1)[1] != port
        await m.update("a", upstream="127.0.0.1:2")
        assert p.upstream == "127.0.0.1:2" and p.enabled

    run(body)


def test_stats_keys_are_the_contract() -> None:
    async def body(m: ProxyManager) -> None:
        await m.create("a", "127.0.0.1:0", "127.0.0.1:1")
        assert m.stats("a") == {
            "name": "a",
            "connections_accepted": 0,
            "connections_open": 0,
            "connections_failed": 0,
            "bytes_upstream": 0,
            "bytes_downstream": 0,
            "http_requests": 0,
            "http_responses": 0,
            "http_errors_injected": 0,
            "http_duplicates_sent": 0,
            "http_duplicates_failed": 0,
            "http_requests_delayed": 0,
            "http_passthrough_connections": 0,
            "notes": [],
        }

    run(body)


def test_every_api_error_is_an_api_error() -> None:
    for cls, status in [(NotFound, 404), (Conflict, 409), (BadRequest, 400), (BindError, 500)]:
        err = cls("m")
        assert isinstance(err, ApiError) and err.status == status and err.message == "m"
