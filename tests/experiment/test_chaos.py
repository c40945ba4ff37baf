"""The Chaos controller's one injection mechanism, with a fake client.

A fake is right here: these tests pin the undo-stack and safety logic, including
server failures a real server will not produce on demand. Real-server behaviour is
covered in tests/plugin.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pytest_chaos import (
    BlastRadius,
    BlastRadiusError,
    Chaos,
    InjectionError,
    ProxyAPIError,
    RollbackError,
)
from pytest_chaos.experiment import ChaosSpec


class FakeClient:
    """Records calls; proxies live in a dict; failures on demand."""

    url = "http://fake"
    embedded = True

    def __init__(self) -> None:
        self.server: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail_add_on: int | None = None  # fail the n-th add_toxic

    def create_proxy(self, name: str, *, upstream: str, listen: str) -> dict[str, Any]:
        self.calls.append(f"create {name}")
        self.server[name] = {"enabled": True, "toxics": {}}
        return {"name": name, "listen": "127.0.0.1:4000", "upstream": upstream, "enabled": True}

    def delete_proxy(self, name: str) -> None:
        self.calls.append(f"delete {name}")
        if self.server.pop(name, None) is None:
            raise ProxyAPIError("gone", status=404, error="proxy not found")

    def update_proxy(self, name: str, **fields: Any) -> dict[str, Any]:
        self.calls.append(f"update {name} {fields.get('enabled')}")
        self.last_update = fields
        self.server[name]["enabled"] = fields["enabled"]
        return {}

    def add_toxic(self, proxy: str, type: str, *, name: str, **kw: Any) -> dict[str, Any]:
        self.calls.append(f"add {name}")
        if self.fail_add_on is not None:
            self.fail_add_on -= 1
            if self.fail_add_on == 0:
                raise ProxyAPIError("bad", status=400, error="bad request body")
        self.server[proxy]["toxics"][name] = type
        return {}

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.calls.append(f"remove {name}")
        if name not in self.server.get(proxy, {}).get("toxics", {}):
            raise ProxyAPIError("gone", status=404, error="toxic not found")
        del self.server[proxy]["toxics"][name]

    def proxies(self) -> dict[str, Any]:
        return dict(self.server)

    def stats(self, proxy: str) -> dict[str, Any]:
        if proxy not in self.server:
            raise ProxyAPIError("gone", status=404, error="proxy not found")
        return {"name": proxy, "notes": self.server[proxy].get("notes", [])}


ANYTHING = BlastRadius(targets=["*"])


def make(radius: BlastRadius | None = ANYTHING) -> tuple[Chaos, FakeClient]:
    client = FakeClient()
    spec = None if radius is None else ChaosSpec("t.py::test", radius)
    chaos = Chaos(client=client, spec=spec, nodeid="t.py::test", seed=7, run_id="r", worker="w")  # type: ignore[arg-type]
    return chaos, client


def test_inject_pushes_undo_before_apply_and_undoes_a_half_applied_fault() -> None:
    chaos, client = make()
    proxy = chaos.proxy("db", upstream="127.0.0.1:5432")
    client.fail_add_on = 2  # stream="both": the second toxic fails
    with pytest.raises(InjectionError, match="could not inject 'latency' into 'db'"):
        proxy.latency(100, stream="both")
    # the first toxic was added and then removed by the undo pushed before apply
    assert client.server["chaos-r-w-db"]["toxics"] == {}
    assert chaos.active_faults == [] and chaos.timeline.events == []


def test_inject_generic_mechanism_records_and_heals_once() -> None:
    chaos, _ = make()
    undone: list[str] = []
    fault = chaos.inject(
        "svc", "pause", apply=lambda: None, undo=lambda: undone.append("x"), attributes={"a": 1}
    )
    assert fault.active and chaos.active_faults == [fault]
    assert fault.heal() and not fault.heal()
    assert undone == ["x"]
    inject, heal = chaos.timeline.events
    assert inject.data == {
        "fault_id": "f1",
        "attributes": {"a": 1},
        "stream": None,
        "toxicity": None,
    }
    assert heal.data["by"] == "test" and heal.data["fault_id"] == "f1"


def test_no_marker_means_nothing_is_applied() -> None:
    chaos, _ = make(radius=None)
    applied: list[int] = []
    with pytest.raises(BlastRadiusError, match=r"has no @pytest\.mark\.chaos marker"):
        chaos.inject("svc", "kill", apply=lambda: applied.append(1), undo=lambda: None)
    assert applied == []


def test_teardown_heals_newest_first_then_deletes_proxies() -> None:
    chaos, client = make()
    proxy = chaos.proxy("db", upstream="127.0.0.1:5432")
    proxy.latency(1)
    proxy.down()
    client.calls.clear()
    chaos.teardown()
    assert client.calls == [
        "update chaos-r-w-db True",
        "remove latency_downstream_1",
        "delete chaos-r-w-db",
    ]
    assert [e.data["by"] for e in chaos.timeline.of_kind("heal")] == ["teardown", "teardown"]
    with pytest.raises(InjectionError, match="has ended"):
        proxy.latency(1)


def test_teardown_reports_leftovers_and_failed_undos() -> None:
    chaos, client = make()
    chaos.proxy("db", upstream="127.0.0.1:5432")
    fault = chaos.inject("x", "weird", apply=lambda: None, undo=lambda: 1 / 0)
    client.delete_proxy = lambda name: None  # type: ignore[method-assign]
    with pytest.raises(RollbackError) as info:
        chaos.teardown()
    message = str(info.value)
    assert "division by zero" in message and "still on the server: chaos-r-w-db" in message
    assert chaos.leftovers == ["chaos-r-w-db"]
    assert fault.healed_by == "teardown"


def test_abort_heals_everything_and_marks_the_test() -> None:
    chaos, _ = make()
    a = chaos.inject("a", "k", apply=lambda: None, undo=lambda: None)
    b = chaos.inject("b", "k", apply=lambda: None, undo=lambda: None)
    healed = chaos.abort("error rate 30% > 5%")
    assert healed == [b, a]
    assert chaos.aborted == {"reason": "error rate 30% > 5%"}
    (abort,) = chaos.timeline.of_kind("abort")
    assert abort.name == "guard" and abort.data == {
        "reason": "error rate 30% > 5%",
        "healed": ["f2", "f1"],
    }
    assert "aborted" in repr(chaos)


def test_heal_is_safe_from_two_threads_at_once() -> None:
    chaos, _ = make()
    count: list[int] = []

    def undo() -> None:
        time.sleep(0.01)
        count.append(1)

    fault = chaos.inject("a", "k", apply=lambda: None, undo=undo)
    threads = [threading.Thread(target=fault.heal) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count == [1]
    assert len(chaos.timeline.of_kind("heal")) == 1


def test_rng_is_seeded_per_test_and_seed() -> None:
    a, _ = make()
    b, _ = make()
    assert a.rng.random() == b.rng.random()
    other = Chaos(client=FakeClient(), spec=None, nodeid="t.py::other", seed=7)  # type: ignore[arg-type]
    assert other.rng.random() != make()[0].rng.random()


def test_heal_racing_the_safety_timer_neither_deadlocks_nor_heals_twice() -> None:
    chaos, _ = make(BlastRadius(targets=["*"], max_fault_seconds=0.05))
    undone: list[str] = []

    def slow_undo() -> None:
        time.sleep(0.3)  # the timer fires while the test thread is still healing
        undone.append("x")

    fault = chaos.inject("a", "k", apply=lambda: None, undo=slow_undo)
    healer = threading.Thread(target=fault.heal, daemon=True)  # a regression must not hang
    healer.start()
    healer.join(timeout=30)
    assert not healer.is_alive(), "heal() deadlocked with the safety timer"
    assert undone == ["x"]
    assert [e.data["by"] for e in chaos.timeline.of_kind("heal")] == ["test"]


def test_a_failed_undo_is_recorded_and_raised() -> None:
    chaos, _ = make()

    def broken() -> None:
        raise OSError("server went away")

    fault = chaos.inject("a", "k", apply=lambda: None, undo=broken)
    with pytest.raises(OSError, match="server went away"):
        fault.heal()
    (heal,) = chaos.timeline.of_kind("heal")
    assert heal.data["error"] == "OSError: server went away"
    assert fault.heal() is False


def test_proxies_on_a_remote_server_listen_everywhere_and_are_reached_by_its_name() -> None:
    client = FakeClient()
    seen: list[str] = []
    create = client.create_proxy

    def recording_create(name: str, *, upstream: str, listen: str) -> dict[str, Any]:
        seen.append(listen)
        return {**create(name, upstream=upstream, listen=listen), "listen": "0.0.0.0:4100"}

    client.create_proxy = recording_create  # type: ignore[method-assign]
    chaos = Chaos(
        client=client,  # type: ignore[arg-type]
        spec=ChaosSpec("t", ANYTHING),
        nodeid="t",
        seed=1,
        listen_host="0.0.0.0",
        public_host="toxiproxy.staging.example",
    )
    proxy = chaos.proxy("db", upstream="db.staging.example:5432")
    assert seen == ["0.0.0.0:0"]
    assert proxy.address == "toxiproxy.staging.example:4100"
    proxy.down().heal()
    # re-enabling pins the bound listen address, not the public name
    assert client.last_update == {"enabled": True, "listen": "0.0.0.0:4100"}
    assert client.calls[-2:] == [
        "update chaos-local-master-db False",
        "update chaos-local-master-db True",
    ]


def test_a_proxy_deleted_behind_the_plugins_back_is_a_note_not_a_failure() -> None:
    chaos, client = make()
    proxy = chaos.proxy("db", upstream="127.0.0.1:5432")
    proxy.latency(5)
    del client.server["chaos-r-w-db"]  # someone else deleted it
    chaos.teardown()  # no RollbackError: nothing of ours is left
    (note,) = chaos.timeline.of_kind("note")
    assert note.name == "proxy_gone" and note.target == "db"
    assert "something outside pytest-chaos deleted it" in chaos.notes[0]


def test_proxy_notes_reach_the_timeline_once_after_a_heal() -> None:
    chaos, client = make()
    proxy = chaos.proxy("api", upstream="127.0.0.1:1")
    note = {"seq": 1, "label": "http_passthrough", "data": {"reason": "not HTTP"}}
    client.server[proxy.server_name]["notes"] = [note]
    proxy.http_error(503).heal()
    proxy.http_delay(10).heal()  # the same note again: not recorded twice
    notes = chaos.timeline.of_kind("note")
    assert [(n.name, n.target, n.data["detail"]) for n in notes] == [
        ("http_passthrough", "api", {"reason": "not HTTP"})
    ]
    chaos.teardown()
