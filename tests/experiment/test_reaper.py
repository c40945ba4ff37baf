"""The reaper's bookkeeping and healing, with a fake server client and a real socket."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from pytest_chaos.errors import ProxyAPIError
from pytest_chaos.experiment import ReaperLink
from pytest_chaos.experiment._reaper import Ledger, ProcessState, Reaper, heal_process

pytestmark = pytest.mark.unit

RUN = "6650f1a2.ab12.1f"
DB = f"chaos-{RUN}-gw0-db"
CACHE = f"chaos-{RUN}-gw0-cache"


class FakeClient:
    """A server holding proxies, recording every call the reaper makes."""

    def __init__(self, proxies: dict[str, dict[str, Any]]) -> None:
        self.proxies = proxies
        self.calls: list[str] = []
        self.closed = False

    def _proxy(self, name: str) -> dict[str, Any]:
        if name not in self.proxies:
            raise ProxyAPIError("404", status=404, error="proxy not found")
        return self.proxies[name]

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return list(self._proxy(proxy)["toxics"])

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.calls.append(f"remove {proxy} {name}")
        toxics = self._proxy(proxy)["toxics"]
        toxics[:] = [t for t in toxics if t["name"] != name]

    def get_proxy(self, name: str) -> dict[str, Any]:
        return self._proxy(name)

    def update_proxy(self, name: str, **fields: Any) -> dict[str, Any]:
        self.calls.append(f"update {name} {sorted(fields.items())}")
        self._proxy(name).update(fields)
        return self._proxy(name)

    def delete_proxy(self, name: str) -> None:
        self.calls.append(f"delete {name}")
        del self.proxies[self._proxy(name)["name"]]

    def close(self) -> None:
        self.closed = True


def _server() -> FakeClient:
    return FakeClient(
        {
            DB: {
                "name": DB,
                "listen": "127.0.0.1:4001",
                "enabled": False,
                "toxics": [{"name": "latency_downstream"}],
            },
            CACHE: {"name": CACHE, "listen": "127.0.0.1:4002", "enabled": True, "toxics": []},
            "staging-redis": {"name": "staging-redis", "enabled": False, "toxics": []},
        }
    )


def test_the_ledger_keeps_each_process_live_faults() -> None:
    ledger = Ledger(RUN)
    state = ledger.hello(101, "http://127.0.0.1:8474", "gw0")
    messages: list[dict[str, Any]] = [
        {"op": "proxy", "proxy": DB},
        {"op": "proxy", "proxy": CACHE},
        {"op": "inject", "test": "t.py::a", "fault": "f1", "kind": "latency", "proxies": [DB]},
        {"op": "inject", "test": "t.py::a", "fault": "f2", "kind": "down", "proxies": [DB]},
        {"op": "inject", "test": "t.py::a", "fault": "f3", "kind": "timeout", "proxies": [CACHE]},
        {"op": "heal", "test": "t.py::a", "fault": "f1"},
        {"op": "unproxy", "proxy": CACHE},  # deleting the proxy healed f3 too
    ]
    for message in messages:
        ledger.record(state, message)
    assert state.proxies == {DB}
    assert ledger.live_faults(101) == ["down f2 in t.py::a"]
    assert ledger.live_faults(999) == []
    assert state.has_work and not state.said_bye
    ledger.record(state, {"op": "bye"})
    assert state.said_bye


def test_the_ledger_refuses_names_of_other_runs() -> None:
    ledger = Ledger(RUN)
    state = ledger.hello(101, "http://127.0.0.1:8474", "gw0")
    ledger.record(state, {"op": "proxy", "proxy": "chaos-6650f1a2.ab12.2f-gw0-db"})
    ledger.record(state, {"op": "proxy", "proxy": "staging-redis"})
    ledger.record(state, {"op": "inject", "fault": "f1", "proxies": ["staging-redis"]})
    assert state.proxies == set()
    assert state.faults == {"None f1": ("None", [])}
    assert len(ledger.refused) == 3


def test_healing_removes_toxics_reenables_and_deletes_only_what_was_announced() -> None:
    client = _server()
    state = ProcessState(pid=101, url="http://x:1", proxies={DB, CACHE})
    state.faults = {"t f1": ("latency", [DB]), "t f2": ("down", [DB])}
    done = heal_process(state, client)
    assert client.calls == [
        f"remove {DB} latency_downstream",
        f"update {DB} [('enabled', True), ('listen', '127.0.0.1:4001')]",
        f"delete {CACHE}",
        f"delete {DB}",
    ]
    assert list(client.proxies) == ["staging-redis"]
    assert done[-1] == f"delete proxy {DB}"
    assert not state.has_work


def test_a_proxy_already_gone_is_not_an_error() -> None:
    client = FakeClient({})
    state = ProcessState(pid=101, url="http://x:1", proxies={DB})
    state.faults = {"t f1": ("latency", [DB])}
    assert heal_process(state, client) == []


def _reaper(healed: list[ProcessState], client: FakeClient) -> tuple[Reaper, threading.Thread]:
    listener = socket.create_server(("127.0.0.1", 0))

    def make_client(url: str) -> FakeClient:
        return client

    import os

    reaper = Reaper(
        Ledger(RUN),
        listener,
        token="secret",
        parent=os.getppid(),
        log=lambda line: healed.extend(reaper.ledger.processes.values()),
        make_client=make_client,
    )
    thread = threading.Thread(target=reaper.run, daemon=True)
    thread.start()
    return reaper, thread


def _address(reaper: Reaper) -> str:
    host, port = reaper.listener.getsockname()[:2]
    return f"{host}:{port}"


def test_a_connection_closed_without_bye_is_healed_at_once() -> None:
    client = _server()
    healed: list[ProcessState] = []
    reaper, thread = _reaper(healed, client)
    link = ReaperLink(_address(reaper), "secret", url="http://x:1", worker="gw0")
    link.proxy_created(DB)
    link._send({"op": "inject", "test": "t", "fault": "f1", "kind": "down", "proxies": [DB]})
    assert link._sock is not None
    link._sock.close()  # as the kernel does for a killed process
    reaper.controller_gone.set()
    thread.join(10)
    assert not thread.is_alive()
    assert DB not in client.proxies and "staging-redis" in client.proxies
    assert client.calls[-1] == f"delete {DB}"


def test_a_process_that_says_bye_is_left_alone() -> None:
    client = _server()
    healed: list[ProcessState] = []
    reaper, thread = _reaper(healed, client)
    link = ReaperLink(_address(reaper), "secret", url="http://x:1", worker="gw0")
    link.proxy_created(DB)
    link.bye()
    reaper.controller_gone.set()
    thread.join(10)
    assert not thread.is_alive()
    assert client.calls == [] and healed == []


def test_a_wrong_token_is_refused() -> None:
    client = _server()
    healed: list[ProcessState] = []
    reaper, thread = _reaper(healed, client)
    link = ReaperLink(_address(reaper), "guessed", url="http://x:1", worker="gw0")
    link.proxy_created(DB)
    link._drop()
    reaper.controller_gone.set()
    thread.join(10)
    assert reaper.ledger.processes == {} and client.calls == []


def test_a_reaper_that_cannot_be_reached_does_not_fail_the_test() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    link = ReaperLink(f"127.0.0.1:{port}", "secret", url="http://x:1", worker="master")
    link.proxy_created(DB)
    link.proxy_created(CACHE)
    assert link.problem is not None and "cannot be reached" in link.problem
    link.bye()
