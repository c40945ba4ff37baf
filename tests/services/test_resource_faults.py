"""Resource faults seen by real servers and real clients: CPU, memory, disk, connections.

Each fault runs on a container (skipped without Docker, through the folder's fixtures)
and on a process service (local or bundled binaries, ``chaos_services.process``). The
tests check what a client sees while the fault is on, and that healing (by the test, the
safety timer, or teardown after a failing test) puts the server back as it was.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_chaos import BlastRadius
from pytest_chaos.errors import ChaosUnavailable, ConfigurationError, InjectionError
from pytest_chaos.services import ChaosServices, Service, SmallFilesystem, _resources

from ._proctools import eventually, talk

pytest.importorskip("psycopg")
pytest.importorskip("redis")
import psycopg
import redis

_WORKER_MARK = "time.perf_counter() - start < busy"


def _children_running(marker: str) -> dict[int, int]:
    """{pid: CPU ticks so far} of this process's children whose command has ``marker``."""
    found = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me and marker in cmdline and fields[0] != "Z":
            found[int(entry)] = int(fields[11]) + int(fields[12])  # utime + stime
    return found


def _config(client: redis.Redis, key: str) -> str:
    return str(client.config_get(key)[key])


# -- connections ---------------------------------------------------------------------


@pytest.mark.chaos(blast_radius=["postgres"])
def test_exhausted_postgres_refuses_the_next_login_until_healed(
    chaos, services: ChaosServices
) -> None:
    svc = services.postgres()
    fault = chaos.exhaust_connections(svc)
    try:
        assert fault.attributes["held"] > 0
        assert "too many clients" in fault.attributes["refusal"]
        with pytest.raises(psycopg.OperationalError, match="too many clients already"):
            psycopg.connect(svc.url, connect_timeout=10).close()
    finally:
        fault.heal()
    with psycopg.connect(svc.url, connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    events = [(e.kind, e.name) for e in chaos.timeline.events]
    assert ("inject", "exhaust_connections") in events
    assert ("note", "connections_held") in events
    assert ("heal", "exhaust_connections") in events


@pytest.mark.chaos(blast_radius=["redis"])
def test_exhausted_redis_through_its_proxy_refuses_clients_then_restores_maxclients(
    chaos, services: ChaosServices, redis_client
) -> None:
    svc = services.redis()
    direct = redis_client(svc.host, svc.port)
    before = _config(direct, "maxclients")
    proxy = chaos.proxy("redis", upstream=svc)
    with chaos.exhaust_connections(proxy, server=svc, max_clients=12) as fault:
        assert fault.target == "redis"
        assert fault.attributes["refusal"] == "ERR max number of clients reached"
        assert 1 <= fault.attributes["held"] <= 12
        with pytest.raises(redis.ConnectionError, match="max number of clients reached"):
            redis_client(proxy.host, proxy.port).ping()
        assert proxy.stats()["connections_open"] >= fault.attributes["held"]
    assert _config(direct, "maxclients") == before
    assert redis_client(proxy.host, proxy.port).ping()


@pytest.mark.chaos(blast_radius=["postgres"])
def test_the_proxy_method_holds_n_sessions_through_the_proxy(
    chaos, bundled_services: ChaosServices
) -> None:
    svc = bundled_services.postgres()
    proxy = chaos.proxy("postgres", upstream=svc)
    with proxy.exhaust_connections(3, server=svc) as fault:
        assert (fault.target, fault.attributes["held"]) == ("postgres", 3)
        assert proxy.stats()["connections_open"] >= 3
        with psycopg.connect(svc.url, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'pytest-chaos-exhaust'"
            ).fetchone()
            assert row == (3,)
    assert eventually(lambda: proxy.stats()["connections_open"] == 0)


@pytest.mark.chaos(blast_radius=["redis"])
def test_n_sessions_are_held_without_reaching_the_limit(
    chaos, bundled_services: ChaosServices, redis_client
) -> None:
    svc = bundled_services.redis()
    client = redis_client(svc.host, svc.port)
    start = int(client.info("clients")["connected_clients"])
    with chaos.exhaust_connections(svc, n=5) as fault:
        assert fault.attributes["held"] == 5 and fault.attributes["refusal"] is None
        assert int(client.info("clients")["connected_clients"]) >= start + 5
    assert eventually(lambda: int(client.info("clients")["connected_clients"]) <= start)


@pytest.mark.chaos(blast_radius=["redis"])
def test_filling_a_default_redis_needs_max_clients(chaos, bundled_services, redis_client) -> None:
    svc = bundled_services.redis()
    client = redis_client(svc.host, svc.port)
    before = _config(client, "maxclients")  # 10000, or less under a low open-files limit
    client.config_set("maxclients", 5000)
    try:
        with pytest.raises(ConfigurationError, match=r"maxclients is 5000.*max_clients=N"):
            chaos.exhaust_connections(svc)
    finally:
        client.config_set("maxclients", before)
    assert chaos.faults == []


# -- CPU -----------------------------------------------------------------------------


@pytest.mark.chaos(blast_radius=["echo-cpu"])
def test_cpu_stress_beside_a_process_burns_cpu_until_healed(chaos, start_echo) -> None:
    svc: Service = start_echo(name="echo-cpu")
    fault = chaos.cpu_stress(svc, cores=2, percent=50)
    try:
        assert fault.attributes["where"] == "host"
        assert fault.attributes["cpus"] == sorted(os.sched_getaffinity(svc.pid or 0))
        workers = _children_running(_WORKER_MARK)
        assert len(workers) == 2
        # They burn CPU: some ticks within a generous wait, on a loaded machine too.
        assert eventually(
            lambda: sum(_children_running(_WORKER_MARK).values()) > sum(workers.values()) + 5
        )
    finally:
        fault.heal()
    assert _children_running(_WORKER_MARK) == {}


@pytest.mark.chaos(blast_radius=["redis"])
def test_cpu_stress_runs_inside_a_container(chaos, docker_services: ChaosServices) -> None:
    svc = docker_services.redis()
    container = svc.runtime.container  # type: ignore[attr-defined]

    def loops() -> int:
        return sum("pytest-chaos-cpu" in " ".join(p) for p in container.top()["Processes"])

    with chaos.cpu_stress(svc, cores=1, percent=60) as fault:
        assert fault.attributes["where"] == "container"
        assert loops() >= 1
    assert eventually(lambda: loops() == 0, timeout=15)


@pytest.mark.chaos(blast_radius=["redis"])
def test_cpu_throttle_sets_and_restores_the_container_quota(
    chaos, docker_services: ChaosServices, redis_client
) -> None:
    svc = docker_services.redis()
    container = svc.runtime.container  # type: ignore[attr-defined]
    with chaos.cpu_throttle(svc, cpus=0.2):
        container.reload()
        assert container.attrs["HostConfig"]["CpuQuota"] == 20_000
        assert redis_client(svc.host, svc.port).ping()  # slow, not down
    container.reload()
    assert container.attrs["HostConfig"]["CpuQuota"] in (0, -1)


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


def _frozen_share(pid: int, seconds: float) -> float:
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(_state(pid) == "T")
        time.sleep(0.005)
    return sum(samples) / len(samples)


@pytest.mark.chaos(blast_radius=["echo-thr"])
def test_cpu_throttle_freezes_a_process_for_most_of_each_period(chaos, start_echo) -> None:
    svc = start_echo(name="echo-thr")
    pid = svc.pid
    assert pid is not None
    with chaos.cpu_throttle(svc, cpus=0.2, period_ms=200) as fault:
        assert fault.attributes["how"] == "duty_cycle"
        # 80 % of the time frozen in theory; generous bounds for a loaded machine
        assert 0.4 <= _frozen_share(pid, 1.0) < 1.0
    assert _frozen_share(pid, 0.3) == 0.0
    assert talk(svc.port) == b"echo:ping\n"


@pytest.mark.chaos(blast_radius=["echo-thr1"])
def test_cpu_throttle_on_a_process_needs_less_than_one_cpu(chaos, start_echo) -> None:
    svc = start_echo(name="echo-thr1")
    with pytest.raises(ConfigurationError, match=r"cpus must be under 1.*cpu_stress"):
        chaos.cpu_throttle(svc, cpus=1.5)


@pytest.mark.chaos(blast_radius=["echo-pin"])
def test_cpu_stress_on_given_cpus_confines_the_service_until_healed(chaos, start_echo) -> None:
    svc = start_echo(name="echo-pin")
    pid = svc.pid
    assert pid is not None
    before = os.sched_getaffinity(pid)
    cpu = min(before)
    with chaos.cpu_stress(svc, cores=1, percent=20, cpus=[cpu]) as fault:
        assert fault.attributes["confined"] is True
        assert os.sched_getaffinity(pid) == {cpu}
        (worker,) = _children_running(_WORKER_MARK)
        assert os.sched_getaffinity(worker) == {cpu}
    assert os.sched_getaffinity(pid) == before


@pytest.mark.chaos(blast_radius=["echo-pin2"])
def test_cpu_stress_on_cpus_this_machine_lacks_names_the_rule(chaos, start_echo) -> None:
    svc = start_echo(name="echo-pin2")
    with pytest.raises(ConfigurationError, match=r"non-empty list of CPU numbers"):
        chaos.cpu_stress(svc, cpus=[4096])


@pytest.mark.chaos(blast_radius=["echo-bad"])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"cores": 0}, "cores must be a positive int"), ({"percent": 150}, r"in \(0, 100\]")],
)
def test_cpu_stress_bad_arguments_name_the_rule(chaos, start_echo, kwargs, message) -> None:
    svc = start_echo(name="echo-bad")
    with pytest.raises(ConfigurationError, match=message):
        chaos.cpu_stress(svc, **kwargs)


# -- memory --------------------------------------------------------------------------


@pytest.mark.chaos(blast_radius=["redis"])
def test_memory_limit_on_redis_gives_oom_errors_on_writes_then_restores(
    chaos, services: ChaosServices, redis_client
) -> None:
    svc = services.redis()
    client = redis_client(svc.host, svc.port)
    before = (_config(client, "maxmemory"), _config(client, "maxmemory-policy"))
    with chaos.memory_limit(svc, mib=8) as fault:
        assert fault.attributes["how"] == "maxmemory"
        value = b"x" * (1 << 20)
        with pytest.raises(redis.ResponseError, match="command not allowed when used memory"):
            for i in range(64):  # 64 MiB: beyond the limit whatever Redis held before
                client.set(f"oom-test:{i}", value)
        assert client.ping()  # reads and pings go on
    assert (_config(client, "maxmemory"), _config(client, "maxmemory-policy")) == before
    client.delete(*[f"oom-test:{i}" for i in range(64)])
    assert client.set("oom-test:after", "1")


@pytest.mark.chaos(blast_radius=["redis"])
def test_a_filled_redis_refuses_every_write_and_the_filler_goes_at_heal(
    chaos, services: ChaosServices, redis_client
) -> None:
    svc = services.redis()
    client = redis_client(svc.host, svc.port)
    before = _config(client, "maxmemory")
    with chaos.memory_limit(svc, mib=4, fill=True) as fault:
        assert fault.attributes["filler_keys"] >= 0
        assert int(_config(client, "maxmemory")) == fault.attributes["maxmemory"]
        for i in range(20):  # even one byte: the limit sits below what Redis holds
            with pytest.raises(redis.ResponseError, match="command not allowed when used"):
                client.set(f"oom-small:{i}", "x")
        assert list(client.scan_iter("pytest-chaos:filler:*", count=1000))
    assert list(client.scan_iter("pytest-chaos:filler:*", count=1000)) == []
    assert _config(client, "maxmemory") == before
    assert client.set("oom-small:after", "x")


@pytest.mark.chaos(blast_radius=["redis"])
def test_memory_limit_sets_and_restores_the_container_limit(
    chaos, docker_services: ChaosServices
) -> None:
    svc = docker_services.redis()
    container = svc.runtime.container  # type: ignore[attr-defined]
    with chaos.memory_limit(svc, mib=96, how="cgroup") as fault:
        assert fault.attributes["how"] == "cgroup"
        container.reload()
        assert container.attrs["HostConfig"]["Memory"] == 96 * 1024 * 1024
    container.reload()
    # Docker cannot remove a limit: healed means the host's memory, or none at all
    host_memory = container.client.info()["MemTotal"]
    assert container.attrs["HostConfig"]["Memory"] in (0, host_memory)


@pytest.mark.chaos(blast_radius=["postgres"])
def test_memory_limit_on_a_postgres_process_names_the_fix(chaos, bundled_services) -> None:
    svc = bundled_services.postgres()
    with pytest.raises(InjectionError, match=r"cgroup memory limit.*memory_pressure"):
        chaos.memory_limit(svc, mib=64)


@pytest.mark.chaos(blast_radius=["echo-mem"])
def test_memory_pressure_holds_written_pages_beside_a_process(chaos, start_echo) -> None:
    svc = start_echo(name="echo-mem")
    with chaos.memory_pressure(svc, mib=64):
        (pid,) = _children_running("bytearray(mib")
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kib = int(
            next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]
        )
        assert rss_kib >= 60 * 1024
    assert _children_running("bytearray(mib") == {}


@pytest.mark.chaos(blast_radius=["redis"])
def test_memory_pressure_on_a_container_names_memory_limit(chaos, docker_services) -> None:
    with pytest.raises(InjectionError, match=r"chaos\.memory_limit"):
        chaos.memory_pressure(docker_services.redis(), mib=64)


# -- disk ----------------------------------------------------------------------------


def _can_mount() -> str | None:
    return SmallFilesystem.unusable_reason()


@pytest.mark.chaos(blast_radius=["redis"])
def test_full_disk_makes_redis_refuse_writes_until_healed(
    chaos, services: ChaosServices, redis_client, request
) -> None:
    if request.node.callspec.params["services"] != "docker" and _can_mount() is not None:
        pytest.skip(f"this machine cannot mount a tmpfs: {_can_mount()}")
    svc = services.redis()
    client = redis_client(svc.host, svc.port)
    before = (_config(client, "dir"), _config(client, "appendonly"))
    if svc.provider == "docker" and svc.version and int(svc.version.split(".")[0]) >= 7:
        # Redis 7 images protect 'dir': the fault says so and skips
        with pytest.raises(ChaosUnavailable, match="protects its 'dir' setting"):
            chaos.fill_disk(svc, mib=4)
        assert chaos.faults == []
        return
    with chaos.fill_disk(svc, mib=4):
        assert _config(client, "dir") != before[0]

        def refused() -> bool:
            try:
                client.set("disk-test", "x" * 1000)
            except redis.ResponseError as exc:
                assert "MISCONF" in str(exc)
                return True
            return False

        assert eventually(refused, timeout=15)
        client.get("disk-test")  # reads go on (Redis refuses even PING: it is a write check)
    assert (_config(client, "dir"), _config(client, "appendonly")) == before
    assert client.set("disk-test", "after")


@pytest.mark.chaos(blast_radius=["redis"])
def test_full_disk_without_mount_privilege_is_unavailable_with_the_reason(
    chaos, bundled_services, monkeypatch
) -> None:
    reason = (
        "mounting a size-limited tmpfs needs root (CAP_SYS_ADMIN); this process runs as uid 1000"
    )
    monkeypatch.setattr(SmallFilesystem, "unusable_reason", staticmethod(lambda: reason))
    with pytest.raises(
        ChaosUnavailable,
        match=r"needs root .*Run pytest where it may mount \(root with CAP_SYS_ADMIN",
    ):
        chaos.fill_disk(bundled_services.redis())
    assert chaos.faults == []


def test_root_without_cap_sys_admin_cannot_mount(monkeypatch) -> None:
    """Root in an unprivileged container (the bare CI leg) may not mount: the reason
    says so instead of a mount error at injection."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(_resources, "_has_sys_admin", lambda: False)
    reason = SmallFilesystem.unusable_reason()
    assert reason is not None and "CAP_SYS_ADMIN" in reason and "--cap-add" in reason
    monkeypatch.setattr(_resources, "_has_sys_admin", lambda: True)
    assert SmallFilesystem.unusable_reason() is None or "mount command" in str(
        SmallFilesystem.unusable_reason()
    )


@pytest.mark.chaos(blast_radius=["echo-disk0"])
def test_full_disk_without_path_says_what_it_supports(chaos, start_echo) -> None:
    # PostgreSQL has a mode too: tests/services/test_pg_disk_faults.py
    with pytest.raises(InjectionError, match=r"Redis's persistence and PostgreSQL's tables"):
        chaos.fill_disk(start_echo(name="echo-disk0"))


@pytest.mark.chaos(blast_radius=["echo-disk"])
def test_full_disk_under_a_path_fills_its_filesystem_until_healed(chaos, start_echo) -> None:
    if _can_mount() is not None:
        pytest.skip(f"this machine cannot mount a tmpfs: {_can_mount()}")
    small = SmallFilesystem(4)
    small.mount()
    try:
        svc = start_echo(name="echo-disk")
        with chaos.fill_disk(svc, path=small.path) as fault:
            assert fault.attributes["path"] == str(small.path)
            with (
                pytest.raises(OSError, match="No space left on device"),
                open(small.path / "data", "wb") as fh,
            ):
                fh.write(b"x" * 65536)
                fh.flush()
        assert not (small.path / ".pytest-chaos-filler").exists()
        (small.path / "data").write_bytes(b"x" * 65536)  # room again
    finally:
        small.remove()


def test_a_small_filesystem_left_by_a_killed_pytest_is_unmounted_by_the_next_run() -> None:
    """A pytest (or xdist worker) killed during a full-disk fault cannot heal it; the
    next run that mounts one (or starts local services) unmounts and deletes what the
    dead process left, and leaves a living process's filesystem alone."""
    if _can_mount() is not None:
        pytest.skip(f"this machine cannot mount a tmpfs: {_can_mount()}")
    dead = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal\n"
            "from pytest_chaos.services import SmallFilesystem\n"
            "fs = SmallFilesystem(1)\n"
            "fs.mount()\n"
            "print(fs.path, flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    left = Path(dead.stdout.strip())
    assert dead.returncode == -signal.SIGKILL and os.path.ismount(left), dead
    alive = SmallFilesystem(1)  # sweeps as it is made
    alive.mount()
    try:
        assert not left.exists() and not left.parent.exists()
        assert f"tmpfs {left}" not in _resources.sweep_dead_mounts()  # already gone
        assert os.path.ismount(alive.path)  # this process's own: kept
    finally:
        alive.remove()
    assert not alive.path.exists()


@pytest.mark.chaos(blast_radius=["echo-disk2"])
def test_full_disk_refuses_to_fill_a_big_filesystem(chaos, start_echo, tmp_path) -> None:
    svc = start_echo(name="echo-disk2")
    with pytest.raises(ConfigurationError, match=r"would fill this machine's disk"):
        chaos.fill_disk(svc, path=tmp_path, max_fill_mib=1)
    assert chaos.faults == []


# -- the other undo paths ------------------------------------------------------------


@pytest.mark.chaos(blast_radius=BlastRadius(targets=["redis"], max_fault_seconds=1))
def test_the_safety_timer_restores_redis_settings(
    chaos, bundled_services: ChaosServices, redis_client
) -> None:
    svc = bundled_services.redis()
    client = redis_client(svc.host, svc.port)
    before = _config(client, "maxmemory")
    fault = chaos.memory_limit(svc, mib=8)
    assert _config(client, "maxmemory") == str(8 * 1024 * 1024)
    assert eventually(lambda: not fault.active, timeout=30)
    assert fault.healed_by == "safety_timer"
    assert _config(client, "maxmemory") == before


@pytest.mark.chaos(blast_radius=BlastRadius(targets=["echo-timer"], max_fault_seconds=1))
def test_the_safety_timer_ends_cpu_workers(chaos, start_echo) -> None:
    svc = start_echo(name="echo-timer")
    fault = chaos.cpu_stress(svc, cores=1, percent=30)
    assert len(_children_running(_WORKER_MARK)) == 1
    assert eventually(lambda: not fault.active, timeout=30)
    assert fault.healed_by == "safety_timer"
    assert _children_running(_WORKER_MARK) == {}


def test_teardown_after_a_failing_test_ends_workers_and_sessions(pytester) -> None:
    pytester.makepyfile(
        """
        import sys
        import pytest

        @pytest.mark.chaos(blast_radius=["echo", "redis"])
        def test_fails_with_faults_on(chaos, chaos_services):
            echo = chaos_services.process(
                [sys.executable, "-c",
                 "import socket,time;s=socket.socket();s.bind(('127.0.0.1',0));s.listen();"
                 "print('LISTENING on 127.0.0.1:%d' % s.getsockname()[1], flush=True);"
                 "time.sleep(600)"],
                ready=r"LISTENING on 127\\.0\\.0\\.1:(\\d+)", name="echo")
            chaos.cpu_stress(echo, cores=1, percent=20)
            chaos.memory_pressure(echo, mib=16)
            redis = chaos_services.redis()
            chaos.exhaust_connections(redis, n=3)
            assert False, "the test fails with three faults on"
        """
    )
    journal = pytester.path / "journal"
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--chaos-services=bundled", f"--chaos-journal={journal}"
    )
    result.assert_outcomes(failed=1)
    (path,) = (journal / "tests").glob("*.json")
    test = json.loads(path.read_text())
    heals = {e["name"]: e["data"]["by"] for e in test["timeline"]["events"] if e["kind"] == "heal"}
    assert heals == {
        "cpu_stress": "teardown",
        "memory_pressure": "teardown",
        "exhaust_connections": "teardown",
    }
    assert _children_running(_WORKER_MARK) == {}
    assert _children_running("bytearray(mib") == {}
