"""The resource faults (pytest_chaos/experiment/_resource_faults.py) over a recording
experiment and fake containers: arguments, what goes through inject, what undo restores.

The faults against real servers and processes are in tests/services/test_resource_faults.py.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from pytest_chaos.errors import ChaosUnavailable, ConfigurationError, InjectionError
from pytest_chaos.experiment import _resource_faults as faults
from pytest_chaos.services import Service, SmallFilesystem, restore_memory_limit


class FakeContainer:
    """A docker SDK container: ``update`` calls recorded, limits kept like the engine."""

    def __init__(self, memory: int = 0, swap: int = 0) -> None:
        self.host = {"CpuPeriod": 0, "CpuQuota": 0, "Memory": memory, "MemorySwap": swap}
        self.updates: list[dict[str, int]] = []
        self.client = self
        self.attrs = {"HostConfig": self.host}

    def reload(self) -> None:
        pass

    def info(self) -> dict[str, int]:
        return {"MemTotal": 8 << 30}

    def update(self, **changes: int) -> None:
        self.updates.append(changes)
        names = {
            "cpu_period": "CpuPeriod",
            "cpu_quota": "CpuQuota",
            "mem_limit": "Memory",
            "memswap_limit": "MemorySwap",
        }
        new = {names[k]: v for k, v in changes.items()}
        memory = new.get("Memory", self.host["Memory"])
        swap = new.get("MemorySwap", self.host["MemorySwap"])
        # cgroup v1: a memory limit above the swap limit is refused
        if memory and swap not in (0, -1) and memory > swap:
            raise RuntimeError(f"memory {memory} above memsw {swap}")
        self.host.update(new)


class FakeRuntime:
    def __init__(self, provider: str = "docker", container: FakeContainer | None = None) -> None:
        self.provider = provider
        self.container = container or FakeContainer()

    def state(self) -> str:
        return "running"

    @property
    def pid(self) -> int | None:
        return None

    def describe(self) -> str:
        return "fake"


class Recorder:
    """Stands in for Chaos: inject applies at once and keeps the undo."""

    cpu_stress = faults.cpu_stress
    cpu_throttle = faults.cpu_throttle
    memory_limit = faults.memory_limit
    memory_pressure = faults.memory_pressure
    fill_disk = faults.fill_disk
    exhaust_connections = faults.exhaust_connections

    def __init__(self) -> None:
        self.rng = random.Random(1)
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


def service(kind: str = "postgres", provider: str = "docker", **kw: Any) -> Service:
    return Service(
        name=kind,
        kind=kind,
        host="127.0.0.1",
        port=1234,
        url=f"{kind}://127.0.0.1:1234/0",
        runtime=FakeRuntime(provider, **kw),  # type: ignore[arg-type]
    )


def test_cpu_throttle_sets_the_quota_and_restores_none() -> None:
    chaos = Recorder()
    svc = service()
    container = svc.runtime.container  # type: ignore[attr-defined]
    chaos.cpu_throttle(svc, cpus=0.25, period_ms=200)
    assert chaos.injected == [
        (
            "postgres",
            "cpu_throttle",
            {
                "service": "postgres",
                "provider": "docker",
                "address": "127.0.0.1:1234",
                "cpus": 0.25,
                "period_ms": 200,
                "how": "cfs_quota",
            },
        )
    ]
    assert container.host["CpuQuota"] == 50_000 and container.host["CpuPeriod"] == 200_000
    chaos.heal_all()
    # the engine reads 0 as "unchanged": no quota is -1
    assert container.updates[-1] == {"cpu_period": 100_000, "cpu_quota": -1}


def test_a_container_memory_limit_is_lifted_in_an_order_cgroup_v1_accepts() -> None:
    chaos = Recorder()
    svc = service()
    container = svc.runtime.container  # type: ignore[attr-defined]
    chaos.memory_limit(svc, mib=64)
    assert container.host["Memory"] == 64 << 20 == container.host["MemorySwap"]
    chaos.heal_all()  # would raise in FakeContainer.update if the order were wrong
    assert container.host["Memory"] == 8 << 30  # Docker cannot remove it: the host's memory
    assert container.host["MemorySwap"] == -1


def test_a_previous_container_memory_limit_comes_back() -> None:
    container = FakeContainer(memory=256 << 20, swap=512 << 20)
    before = {"mem_limit": 256 << 20, "memswap_limit": 512 << 20}
    container.update(mem_limit=64 << 20, memswap_limit=64 << 20)
    restore_memory_limit(container, before)
    assert (container.host["Memory"], container.host["MemorySwap"]) == (256 << 20, 512 << 20)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c, s: c.cpu_stress(s, cores=0), ConfigurationError, "cores must be a positive"),
        (lambda c, s: c.cpu_stress(s, percent=0), ConfigurationError, r"in \(0, 100\]"),
        (lambda c, s: c.cpu_stress(s, cpus=[0]), ConfigurationError, "is a container"),
        (lambda c, s: c.cpu_throttle(s, cpus=0), ConfigurationError, "from 0.01 up"),
        (lambda c, s: c.cpu_throttle(s, cpus=1, period_ms=5000), ConfigurationError, "1 to 1000"),
        (lambda c, s: c.memory_limit(s, mib=0), ConfigurationError, "mib must be"),
        (lambda c, s: c.memory_limit(s, mib=4), ConfigurationError, "under 6 MiB"),
        (lambda c, s: c.memory_limit(s, mib=64, how="x"), ConfigurationError, "how must be"),
        (
            lambda c, s: c.memory_limit(s, mib=64, how="maxmemory"),
            ConfigurationError,
            "sets Redis's maxmemory",
        ),
        (lambda c, s: c.memory_limit(s, mib=64, fill=True), ConfigurationError, "fill=True"),
        (lambda c, s: c.memory_pressure(s, mib=64), InjectionError, "chaos.memory_limit"),
        (
            lambda c, s: c.fill_disk(s, lock_timeout=0),
            ConfigurationError,
            r"lock_timeout must be a number of seconds in \(0, 600\]",
        ),
        (
            lambda c, s: c.fill_disk(s, lock_timeout=True),
            ConfigurationError,
            "lock_timeout must be",
        ),
        (lambda c, s: c.fill_disk(s, mib=-1), ConfigurationError, "mib must be a positive int"),
        (lambda c, s: c.exhaust_connections(s, n=0), ConfigurationError, "n must be"),
        (
            lambda c, s: c.exhaust_connections(s, max_clients=5),
            ConfigurationError,
            "cannot change without a restart",
        ),
        (lambda c, s: c.exhaust_connections("db"), TypeError, "takes a service"),
        (lambda c, s: c.cpu_stress("db"), TypeError, "takes a service from chaos_services"),
    ],
)
def test_bad_arguments_fail_before_anything_is_injected(call, error, message) -> None:
    chaos = Recorder()
    with pytest.raises(error, match=message):
        call(chaos, service())
    assert chaos.injected == []


@pytest.mark.parametrize(
    "call",
    [lambda c, s: c.cpu_throttle(s, cpus=0.5), lambda c, s: c.memory_limit(s, mib=64)],
)
def test_an_engine_without_the_cgroup_controller_skips_with_its_reason(call) -> None:
    chaos = Recorder()
    svc = service()
    container = svc.runtime.container  # type: ignore[attr-defined]

    def refuse(**changes: int) -> None:
        raise RuntimeError("Your kernel does not support CPU CFS scheduler")

    container.update = refuse
    with pytest.raises(ChaosUnavailable, match=r"does not support CPU CFS.*cgroup controllers"):
        call(chaos, svc)


def test_a_memory_limit_on_a_postgres_process_names_docker_and_memory_pressure() -> None:
    chaos = Recorder()
    with pytest.raises(InjectionError, match=r"Run it on Docker.*memory_pressure"):
        chaos.memory_limit(service(provider="bundled"), mib=64)
    assert chaos.injected == []


def test_fill_disk_on_a_kind_without_a_mode_names_what_it_knows_and_path() -> None:
    chaos = Recorder()
    with pytest.raises(
        InjectionError, match=r"'memcached' is memcached.*Redis or PostgreSQL.*pass it as path="
    ):
        chaos.fill_disk(service(kind="memcached"))
    assert chaos.injected == []


@pytest.mark.parametrize("provider", ["local", "bundled"])
def test_fill_disk_on_a_postgres_process_without_mount_privilege_is_unavailable(
    provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No server is asked anything: the reason comes before the tablespace."""
    reason = (
        "mounting a size-limited tmpfs needs root (CAP_SYS_ADMIN); this process runs as uid 1000"
    )
    monkeypatch.setattr(SmallFilesystem, "unusable_reason", staticmethod(lambda: reason))
    chaos = Recorder()
    with pytest.raises(
        ChaosUnavailable,
        match=rf"fill_disk\('postgres'\) on a {provider} PostgreSQL process: mounting a "
        r"size-limited tmpfs needs root .*Run pytest where it may mount.*"
        r"--chaos-services=docker.*path=",
    ):
        chaos.fill_disk(service(provider=provider))
    assert chaos.injected == []
