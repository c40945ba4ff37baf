"""An in-memory stand-in for ProxyManager, to test the HTTP layer on its own.

It keeps proxies and toxics as plain data and binds nothing; the real manager is
exercised by tests/conformance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_chaos.proxy._errors import BadRequest, BindError, Conflict, NotFound

_DEFAULTS: dict[str, dict[str, int]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "noop": {},
}


@dataclass
class FakeToxic:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }


@dataclass
class FakeProxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[FakeToxic] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        ordered = [t for t in self.toxics if t.stream == "upstream"] + [
            t for t in self.toxics if t.stream == "downstream"
        ]
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in ordered],
        }


class FakeManager:
    def __init__(self) -> None:
        self.proxies: dict[str, FakeProxy] = {}
        self.calls: list[str] = []
        self.fail_bind_on: set[str] = set()

    def names(self) -> list[str]:
        return list(self.proxies)

    def get(self, name: str) -> FakeProxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise NotFound("proxy not found") from None

    async def create(
        self, name: str, listen: str, upstream: str, enabled: bool = True
    ) -> FakeProxy:
        self.calls.append(f"create {name}")
        if name in self.proxies:
            raise Conflict("proxy already exists")
        if listen in self.fail_bind_on:
            raise BindError(f"listen tcp {listen}: bind: address already in use")
        proxy = FakeProxy(name, listen, upstream, enabled)
        self.proxies[name] = proxy
        return proxy

    async def update(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> FakeProxy:
        proxy = self.get(name)
        self.calls.append(f"update {name}")
        if listen is not None:
            proxy.listen = listen
        if upstream is not None:
            proxy.upstream = upstream
        if enabled is not None:
            proxy.enabled = enabled
        return proxy

    async def delete(self, name: str) -> None:
        self.get(name)
        self.calls.append(f"delete {name}")
        del self.proxies[name]

    async def reset(self) -> None:
        self.calls.append("reset")
        for proxy in self.proxies.values():
            proxy.enabled = True
            proxy.toxics.clear()

    async def close(self) -> None:
        self.proxies.clear()

    def add_toxic(
        self,
        proxy: str,
        *,
        type: str,
        name: str,
        stream: str,
        toxicity: float,
        attributes: dict[str, Any],
    ) -> FakeToxic:
        p = self.get(proxy)
        stream = stream.lower()
        if stream not in ("upstream", "downstream"):
            raise BadRequest("stream was invalid, can be either upstream or downstream")
        if type not in _DEFAULTS:
            raise BadRequest("invalid toxic type")
        name = name or f"{type}_{stream}"
        if any(t.name == name for t in p.toxics):
            raise Conflict("toxic already exists")
        attrs = dict(_DEFAULTS[type])
        attrs.update({k: v for k, v in attributes.items() if k in attrs})
        toxic = FakeToxic(name, type, stream, toxicity, attrs)
        p.toxics.append(toxic)
        return toxic

    def get_toxic(self, proxy: str, toxic: str) -> FakeToxic:
        for t in self.get(proxy).toxics:
            if t.name == toxic:
                return t
        raise NotFound("toxic not found")

    def update_toxic(
        self,
        proxy: str,
        toxic: str,
        *,
        attributes: dict[str, Any],
        toxicity: float | None,
    ) -> FakeToxic:
        t = self.get_toxic(proxy, toxic)
        t.attributes.update({k: v for k, v in attributes.items() if k in t.attributes})
        if toxicity is not None:
            t.toxicity = toxicity
        return t

    def remove_toxic(self, proxy: str, toxic: str) -> None:
        p = self.get(proxy)
        p.toxics.remove(self.get_toxic(proxy, toxic))

    def stats(self, proxy: str) -> dict[str, Any]:
        self.get(proxy)
        return {"name": proxy, "connections_accepted": 0}
