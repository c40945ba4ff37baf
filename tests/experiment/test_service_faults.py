"""The service faults (pytest_chaos/experiment/_service_faults.py) over a recording
experiment and a fake runtime."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, cast

import pytest

from pytest_chaos.errors import InjectionError
from pytest_chaos.experiment import _service_faults as faults
from pytest_chaos.services import Service


class FakeRuntime:
    def __init__(self, provider: str = "docker") -> None:
        self.provider = provider
        self.calls: list[str] = []
        self._state = "running"

    def state(self) -> str:
        return self._state

    def pause(self) -> None:
        self.calls.append("pause")
        self._state = "paused"

    def unpause(self) -> None:
        self.calls.append("unpause")
        self._state = "running"

    def stop(self) -> None:
        self.calls.append("stop")
        self._state = "stopped"

    def kill(self) -> None:
        self.calls.append("kill")
        self._state = "stopped"

    def start(self) -> None:
        self.calls.append("start")
        self._state = "running"

    def disconnect(self, network: str | None) -> str:
        self.calls.append(f"disconnect {network}")
        return network or "run-net"

    def reconnect(self, network: str) -> None:
        self.calls.append(f"reconnect {network}")

    def wait_ready(self, timeout: float) -> None:
        self.calls.append("wait_ready")

    def remove(self) -> None:
        self._state = "removed"

    def describe(self) -> str:
        return "fake"


Picks = list[tuple[str, str]]


class Recorder:
    """Stands in for Chaos: inject applies at once and keeps the undo; the faults are
    bound as Chaos binds them."""

    pause = faults.pause
    stop = faults.stop
    kill = faults.kill
    restart = faults.restart
    disconnect = faults.disconnect
    kill_random = faults.kill_random

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.timeline = None
        self.injected: list[tuple[str, str, dict[str, Any]]] = []
        self.undos: list[Callable[[], object]] = []

    def inject(self, target, kind, *, apply, undo, attributes=None, stream=None, toxicity=None):
        self.injected.append((target, kind, dict(attributes or {})))
        self.undos.append(undo)
        apply()
        return (target, kind)

    def heal_all(self) -> None:
        while self.undos:
            self.undos.pop()()


def service(name: str, provider: str = "docker") -> Service:
    return Service(
        name=name,
        kind="redis",
        host="127.0.0.1",
        port=1234,
        url="redis://127.0.0.1:1234/0",
        runtime=FakeRuntime(provider),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("method", "applied", "healed"),
    [
        ("pause", ["pause"], ["unpause"]),
        ("stop", ["stop"], ["start", "wait_ready"]),
        ("kill", ["kill"], ["start", "wait_ready"]),
        ("restart", ["stop", "start", "wait_ready"], ["start", "wait_ready"]),
        ("disconnect", ["disconnect None"], ["reconnect run-net", "wait_ready"]),
    ],
)
def test_each_fault_goes_through_inject_with_its_undo(method, applied, healed) -> None:
    chaos = Recorder()
    svc = service("cache")
    getattr(chaos, method)(svc)
    target, kind, attributes = chaos.injected[0]
    assert (target, kind) == ("cache", method)
    assert attributes["service"] == "cache" and attributes["provider"] == "docker"
    assert svc.runtime.calls == applied  # type: ignore[attr-defined]
    chaos.heal_all()
    assert svc.runtime.calls == applied + healed  # type: ignore[attr-defined]


def test_disconnect_of_a_local_process_raises_before_injecting() -> None:
    chaos = Recorder()
    with pytest.raises(InjectionError, match=r"local process.*--chaos-services=docker"):
        chaos.disconnect(service("cache", provider="local"))
    assert chaos.injected == []


def test_faults_take_services_not_names() -> None:
    with pytest.raises(TypeError, match=r"takes a service from chaos_services.*not str 'redis'"):
        Recorder().kill("redis")  # type: ignore[arg-type]


def test_kill_random_is_seeded_and_order_independent() -> None:
    names = ["a", "b", "c", "d", "e"]
    picks = set()
    for seed in range(20):
        # The recorder's inject returns (target, kind) where Chaos returns a Fault.
        first = cast(Picks, Recorder(seed).kill_random([service(n) for n in names], k=2))
        again = cast(Picks, Recorder(seed).kill_random([service(n) for n in reversed(names)], k=2))
        assert first == again
        assert len({target for target, _ in first}) == 2
        picks.add(tuple(target for target, _ in first))
    assert len(picks) > 1  # the seed really chooses


@pytest.mark.parametrize("k", [0, 3, -1])
def test_kill_random_rejects_impossible_counts(k: int) -> None:
    with pytest.raises(ValueError, match=r"must kill between 1 and 2 services"):
        Recorder().kill_random([service("a"), service("b")], k=k)


def test_kill_random_rejects_duplicates() -> None:
    svc = service("a")
    with pytest.raises(ValueError, match="same service twice"):
        Recorder().kill_random([svc, svc])


def test_a_faulted_service_is_not_restored_behind_the_controllers_back() -> None:
    chaos = Recorder()
    svc = service("cache")
    chaos.pause(svc)
    assert svc.faulted
    svc.ensure_running(timeout=1)  # what chaos_services.redis() does on a repeat request
    assert svc.state == "paused"
    chaos.heal_all()
    assert not svc.faulted and svc.state == "running"


def test_a_service_removed_before_the_heal_stays_removed() -> None:
    # Its fixture ended before the chaos teardown: starting it again would leak it.
    chaos = Recorder()
    svc = service("cache")
    chaos.kill(svc)
    svc.remove()
    chaos.heal_all()
    assert svc.runtime.calls == ["kill"]  # type: ignore[attr-defined]
    assert svc.state == "removed"
