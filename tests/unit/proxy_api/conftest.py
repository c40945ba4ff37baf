"""Fixtures for the admin API's unit tests: the real HTTP layer over a fake manager."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_chaos.proxy._api import AdminApi
from pytest_chaos.proxy._http import HttpServer

from ._fake import FakeManager


@dataclass
class ApiUnderTest:
    host: str
    port: int
    manager: FakeManager
    http: HttpServer

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """One request on a fresh connection: (status, decoded body, headers)."""
        if body is not None and not isinstance(body, bytes | str):
            body = json.dumps(body)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            raw = resp.read()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        decoded: Any = raw
        if hdrs.get("content-type", "").startswith("application/json") and raw:
            decoded = json.loads(raw)
        return resp.status, decoded, hdrs


@pytest.fixture
def api() -> Iterator[ApiUnderTest]:
    manager = FakeManager()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        server = HttpServer(AdminApi(manager).handle)  # type: ignore[arg-type]
        await server.start("127.0.0.1", 0)
        stop = asyncio.Event()
        holder.update(loop=asyncio.get_running_loop(), stop=stop, server=server)
        ready.set()
        try:
            await stop.wait()
        finally:
            await server.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    server: HttpServer = holder["server"]
    host, port = server.address
    try:
        yield ApiUnderTest(host, port, manager, server)
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
        assert not thread.is_alive()
