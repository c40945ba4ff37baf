"""Resource faults: CPU, memory, disk and a dependency's connection slots.

Functions of the experiment (an `Injector`), bound on `Chaos` as ``chaos.cpu_stress``,
``chaos.cpu_throttle``, ``chaos.memory_limit``, ``chaos.memory_pressure``,
``chaos.fill_disk`` and ``chaos.exhaust_connections``. Like every fault they go through
``Chaos.inject`` (blast radius, veto hook, undo stack, timeline, safety timer); the
target is the service's name, or the proxy's for connections opened through a proxy.

What each does, per provider:

===================  ===================================  ====================================
fault                Docker provider                      local binaries, bundled, process()
===================  ===================================  ====================================
cpu_stress           shell loops inside the container     Python workers on the target's CPUs
                     (``docker exec``)
cpu_throttle         CPU quota (``docker update``)        a SIGSTOP/SIGCONT duty cycle
memory_limit         Redis: ``maxmemory`` (noeviction);   Redis: ``maxmemory`` (noeviction);
                     others: memory limit (cgroup)        others: error naming the Docker way
memory_pressure      unsupported: error naming            a process holding N MiB, each page
                     memory_limit                         written
fill_disk (Redis)    persistence moved to the             persistence moved to a tmpfs of N
                     container's /dev/shm, filled         MiB (root only), filled
fill_disk            tables and indexes moved to a        tables and indexes moved to a
(PostgreSQL)         tablespace in the container's        tablespace on a tmpfs of N MiB
                     /dev/shm, filled                     (root only), filled
exhaust_connections  real sessions up to the limit        the same
===================  ===================================  ====================================

Undo: workers are killed, settings restored (``CONFIG SET``, ``docker update``), the
filler removed (and PostgreSQL's relations moved back, the tablespace dropped), sessions
closed. Where the machine cannot apply a fault (no root for a
mount, no Docker for a quota) the test is skipped through ``pytest_chaos.unavailable``
with the reason (an error under ``--chaos-strict``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pytest_chaos.services as services
from pytest_chaos.errors import ConfigurationError, InjectionError, unavailable
from pytest_chaos.experiment._fault import Fault, Injector
from pytest_chaos.experiment._service_faults import _service_fault
from pytest_chaos.services import Service

__all__ = [
    "cpu_stress",
    "cpu_throttle",
    "exhaust_connections",
    "fill_disk",
    "memory_limit",
    "memory_pressure",
]

#: above this many clients, filling Redis up to ``maxclients`` needs ``max_clients=``
REDIS_FILL_CAP = 1024
#: bytes a filled Redis's maxmemory sits below what it holds (memory_limit(fill=True))
_FILL_MARGIN = 256 * 1024


def _service(value: object, method: str) -> Service:
    if isinstance(value, Service):
        return value
    raise TypeError(
        f"chaos.{method}() takes a service from chaos_services (e.g. chaos_services.redis() "
        f"or a chaos_services.process(...)), not {type(value).__name__} {value!r}."
    )


def _running(service: Service, method: str) -> None:
    if service.state != "running":
        raise InjectionError(
            f"chaos.{method}({service.name!r}): the service is {service.state}; a resource "
            "fault needs it running. Heal the other fault first."
        )


def _positive_int(value: object, name: str, method: str, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"chaos.{method}({name}={value!r}): {name} must be a positive int ({hint})."
        )
    return value


def _docker(service: Service) -> bool:
    return service.provider == "docker"


@contextlib.contextmanager
def _unless_unsupported(method: str, service: Service) -> Iterator[None]:
    """Turn "this machine cannot do that" into a skip naming the reason."""
    try:
        yield
    except services.ResourceUnsupported as exc:
        unavailable(
            f"chaos.{method}({service.name!r}): {exc}. Run on a Docker engine with the cgroup "
            "controllers enabled (not rootless, or rootless with cgroup v2 delegation)."
        )


# -- CPU ---------------------------------------------------------------------------


def cpu_stress(
    chaos: Injector,
    service: Service,
    *,
    cores: int = 1,
    percent: float = 100,
    cpus: Sequence[int] | None = None,
) -> Fault:
    """Hold ``cores`` CPU cores ``percent`` % busy next to ``service``, as stress tools do.

    On Docker the busy loops run inside the container (``docker exec``), so they share
    its CPU quota and cores; for a process they are processes on this host pinned to the
    CPUs the service may run on. Each loop is busy ``percent`` % of every 100 ms.

    ``cpus`` (process services only) pins the loops *and every thread of the service*
    to those CPUs for the fault, as if the service ran on a busy machine of its own:
    ``chaos.cpu_stress(replica, cores=4, cpus=[0])`` leaves the other replicas the rest
    of this machine. Healed by ending the loops (and giving the threads their CPUs back).
    """
    svc = _service(service, "cpu_stress")
    cores = _positive_int(cores, "cores", "cpu_stress", "how many cores to keep busy, e.g. 2")
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 < percent <= 100:
        raise ConfigurationError(
            f"chaos.cpu_stress(percent={percent!r}): percent must be a number in (0, 100], "
            "how busy each core is kept (e.g. 80)."
        )
    _running(svc, "cpu_stress")
    worker: Any
    shown: list[int] | None = None
    confinement: Any = None
    if _docker(svc):
        if cpus is not None:
            raise ConfigurationError(
                f"chaos.cpu_stress({svc.name!r}, cpus=...) pins processes of this host; "
                f"{svc.name!r} is a container. Leave cpus out (the loops run inside it), or "
                "limit it with chaos.cpu_throttle(service, cpus=0.5)."
            )
        worker = services.ContainerWorkers(services.container_of(svc.runtime), cores, percent)
        where = "container"
    else:
        pid = svc.pid
        allowed: set[int] | None = None
        if not hasattr(os, "sched_getaffinity"):
            if cpus is not None:
                unavailable(
                    "chaos.cpu_stress(cpus=...) needs CPU affinity, which this platform "
                    "lacks; leave cpus out."
                )
        elif cpus is not None:
            online = os.sched_getaffinity(0)
            wanted = set(cpus) if not isinstance(cpus, int | str) else set()
            if not wanted or not wanted <= online:
                raise ConfigurationError(
                    f"chaos.cpu_stress(cpus={cpus!r}): cpus must be a non-empty list of CPU "
                    f"numbers this process may use, among {sorted(online)}."
                )
            allowed = wanted
            if pid is not None:
                confinement = services.Confinement(pid, wanted)
        elif pid is not None:
            try:
                allowed = set(os.sched_getaffinity(pid))
            except OSError:
                allowed = None
        shown = sorted(allowed) if allowed else None
        worker = services.CpuWorkers(cores, float(percent), allowed)
        where = "host"

    def apply() -> None:
        if confinement is not None:
            confinement.apply()
        worker.start()

    def undo() -> None:
        try:
            worker.stop()
        finally:
            if confinement is not None:
                confinement.release()

    return _service_fault(
        chaos,
        svc,
        "cpu_stress",
        apply,
        undo,
        cores=cores,
        percent=percent,
        where=where,
        cpus=shown,
        confined=confinement is not None,
    )


def cpu_throttle(chaos: Injector, service: Service, *, cpus: float, period_ms: int = 100) -> Fault:
    """Give ``service`` only ``cpus`` CPUs' worth of time (0.2 = a fifth of one core) in
    every ``period_ms`` (the CFS period: 100 ms by default, as in Docker and Kubernetes),
    as a CPU limit does: a longer period means longer stalls. Healed by giving it back.

    - Docker: the container's CFS quota (``docker update``); healing restores the
      quota it had.
    - A process: a duty cycle, since a process has no quota of its own: every thread
      of its tree runs ``cpus`` of each period and is frozen (SIGSTOP) for the rest,
      which is how a throttled busy server behaves; ``cpus`` must be under 1 here.
      Healing continues it (SIGCONT).
    """
    svc = _service(service, "cpu_throttle")
    if isinstance(cpus, bool) or not isinstance(cpus, int | float) or not 0.01 <= cpus <= 1024:
        raise ConfigurationError(
            f"chaos.cpu_throttle(cpus={cpus!r}): cpus must be a number from 0.01 up, the "
            "CPUs' worth of time the service gets (0.2 = a fifth of one core)."
        )
    if isinstance(period_ms, bool) or not isinstance(period_ms, int) or not 1 <= period_ms <= 1000:
        raise ConfigurationError(
            f"chaos.cpu_throttle(period_ms={period_ms!r}): period_ms must be an int from 1 "
            "to 1000 (the CFS period's range), e.g. 100."
        )
    _running(svc, "cpu_throttle")
    if not _docker(svc):
        if cpus >= 1:
            raise ConfigurationError(
                f"chaos.cpu_throttle({svc.name!r}, cpus={cpus}): a process is throttled by a "
                "duty cycle of its whole tree, so cpus must be under 1 (e.g. 0.2); to "
                "compete for several cores use chaos.cpu_stress(service, cores=N)."
            )
        pid = svc.pid
        if pid is None:
            raise InjectionError(f"chaos.cpu_throttle({svc.name!r}): the service has no pid.")
        cycle = services.DutyCycle(pid, float(cpus), period_ms / 1000)
        return _service_fault(
            chaos,
            svc,
            "cpu_throttle",
            cycle.start,
            cycle.stop,
            cpus=cpus,
            period_ms=period_ms,
            how="duty_cycle",
        )
    container = services.container_of(svc.runtime)
    before: dict[str, int] = {}
    period = period_ms * 1000  # microseconds

    def apply() -> None:
        limits = services.container_limits(container)
        with _unless_unsupported("cpu_throttle", svc):
            services.update_container(container, cpu_period=period, cpu_quota=int(cpus * period))
        before.update(limits)  # only what was changed is restored

    def undo() -> None:
        if before and svc.state != "removed":
            services.update_container(
                container,
                cpu_period=before["cpu_period"] or 100_000,
                cpu_quota=before["cpu_quota"],
            )

    return _service_fault(
        chaos, svc, "cpu_throttle", apply, undo, cpus=cpus, period_ms=period_ms, how="cfs_quota"
    )


# -- memory ------------------------------------------------------------------------


def memory_limit(
    chaos: Injector, service: Service, *, mib: int, how: str = "auto", fill: bool = False
) -> Fault:
    """Limit the memory ``service`` may use to ``mib`` MiB, so it meets real OOM.

    ``how`` chooses the limit:

    - ``"maxmemory"`` (Redis, any provider): ``maxmemory`` with ``maxmemory-policy
      noeviction``, so writes beyond it fail with Redis's own ``OOM command not allowed
      when used memory > 'maxmemory'`` error while reads go on;
    - ``"cgroup"`` (Docker): the container's memory limit (``docker update``, swap
      included): a server that grows beyond it is killed by the kernel's OOM killer;
    - ``"auto"`` (default): ``maxmemory`` for Redis, ``cgroup`` for other containers.

    ``fill=True`` (``maxmemory`` only) then fills Redis up to the limit with filler keys
    (``pytest-chaos:filler:*``, deleted at heal), as a noisy neighbour or a burst of
    large values would, and pulls ``maxmemory`` 256 KiB below what Redis then holds
    (``fault.attributes["maxmemory"]``), so that keys expiring meanwhile make no room:
    every write the system under test makes meets the OOM error.

    Healed by restoring the previous settings. Docker cannot take a memory limit away
    once set, so healing a ``cgroup`` limit on a container that had none raises it to
    the Docker host's memory (``docker info``), which is no limit in practice.
    """
    svc = _service(service, "memory_limit")
    mib = _positive_int(mib, "mib", "memory_limit", "the limit in MiB, e.g. 64")
    if how not in ("auto", "maxmemory", "cgroup"):
        raise ConfigurationError(
            f"chaos.memory_limit(how={how!r}): how must be 'auto', 'maxmemory' (Redis) or "
            "'cgroup' (a container's memory limit)."
        )
    if how == "auto":
        how = "maxmemory" if svc.kind == "redis" else "cgroup"
    if how == "maxmemory" and svc.kind != "redis":
        raise ConfigurationError(
            f"chaos.memory_limit({svc.name!r}, how='maxmemory') sets Redis's maxmemory; "
            f"{svc.name!r} is {svc.kind}. Use how='cgroup' on a container."
        )
    if how == "cgroup" and not _docker(svc):
        raise InjectionError(
            f"chaos.memory_limit({svc.name!r}) needs a container for a cgroup memory limit "
            f"(or Redis, for maxmemory); {svc.name!r} is a {svc.kind} process "
            f"({svc.provider}). Run it on Docker (--chaos-services=docker), or take memory "
            "from beside it with chaos.memory_pressure(service, mib=...)."
        )
    if fill and how != "maxmemory":
        raise ConfigurationError(
            f"chaos.memory_limit({svc.name!r}, fill=True) fills Redis up to its maxmemory; "
            "it needs how='maxmemory' (a filled cgroup only gets the server OOM-killed)."
        )
    if how == "cgroup" and mib < 6:
        raise ConfigurationError(
            f"chaos.memory_limit(mib={mib}): Docker refuses memory limits under 6 MiB; give "
            "6 or more."
        )
    _running(svc, "memory_limit")
    address = (svc.host, svc.port)
    password = services.redis_password(svc.url) if svc.kind == "redis" else None
    saved: dict[str, Any] = {}
    filler = f"pytest-chaos:filler:{os.urandom(4).hex()}:"

    def config(*args: str) -> Any:
        return services.redis_call(address, "CONFIG", *args, password=password)

    def apply() -> None:
        if how == "cgroup":
            container = services.container_of(svc.runtime)
            limits = services.container_limits(container)
            size = mib * 1024 * 1024
            with _unless_unsupported("memory_limit", svc):
                services.update_container(container, mem_limit=size, memswap_limit=size)
            saved["limits"] = limits  # only what was changed is restored
        else:
            for key in ("maxmemory", "maxmemory-policy"):
                saved[key] = config("GET", key)[1]
            config("SET", "maxmemory-policy", "noeviction")
            config("SET", "maxmemory", f"{mib}mb")
            if fill:
                saved["filler"] = services.fill_redis(address, password, prefix=filler)
                # Memory comes and goes (buffers, keys expiring): a limit right at what
                # Redis holds would let writes through again. Pull it a margin below.
                info = services.redis_call(address, "INFO", "memory", password=password)
                used = int(str(info).split("used_memory:", 1)[1].split()[0])
                saved["maxmemory_set"] = max(1, used - _FILL_MARGIN)
                config("SET", "maxmemory", str(saved["maxmemory_set"]))

    def undo() -> None:
        if svc.state == "removed":
            return
        if "filler" in saved and svc.state == "running":
            services.unfill_redis(address, password, prefix=filler)
        if "maxmemory" in saved and svc.state == "running":
            config("SET", "maxmemory", saved["maxmemory"])
            config("SET", "maxmemory-policy", saved["maxmemory-policy"])
        if "limits" in saved:
            services.restore_memory_limit(services.container_of(svc.runtime), saved["limits"])

    fault = _service_fault(chaos, svc, "memory_limit", apply, undo, mib=mib, how=how, fill=fill)
    if "filler" in saved:
        fault.attributes.update(filler_keys=saved["filler"], maxmemory=saved["maxmemory_set"])
    return fault


def memory_pressure(chaos: Injector, service: Service, *, mib: int) -> Fault:
    """Hold ``mib`` MiB of memory in a process beside ``service`` (every page written),
    taking them from what the machine has left for it. Healed by ending that process.

    Process services only: a container's memory is its cgroup's, so limit it with
    `memory_limit` instead.
    """
    svc = _service(service, "memory_pressure")
    mib = _positive_int(mib, "mib", "memory_pressure", "how many MiB to hold, e.g. 256")
    if _docker(svc):
        raise InjectionError(
            f"chaos.memory_pressure({svc.name!r}) holds memory beside a process on this host; "
            f"{svc.name!r} runs in a container, whose memory is its own cgroup's. Use "
            "chaos.memory_limit(service, mib=...) for a container."
        )
    _running(svc, "memory_pressure")
    hog = services.MemoryHog(mib)
    return _service_fault(chaos, svc, "memory_pressure", hog.start, hog.stop, mib=mib)


# -- disk --------------------------------------------------------------------------


def fill_disk(
    chaos: Injector,
    service: Service,
    *,
    mib: int = 16,
    path: str | os.PathLike[str] | None = None,
    max_fill_mib: int = 1024,
    lock_timeout: float = 5.0,
) -> Fault:
    """A full disk under ``service``.

    For Redis (without ``path``): its persistence (``dir``) moves to a size-limited
    filesystem (a fresh tmpfs of ``mib`` MiB for a process, which needs root; the
    container's own ``/dev/shm`` on Docker), the append-only file is switched on there,
    and the filesystem is filled. Redis then refuses writes with its ``MISCONF ... No
    space left on device`` error, as a server whose disk filled up does; reads go on.
    Healed by switching the append-only file off, moving ``dir`` back and removing the
    filler (and the tmpfs).

    For PostgreSQL (without ``path``): a tablespace is made on a size-limited
    filesystem (a fresh tmpfs of ``mib`` MiB for a process, which needs root; a
    directory in the container's own ``/dev/shm`` on Docker, whatever ``mib``), the
    tables, materialized views and indexes of the service's database (the URL's) move
    onto it (``ALTER ... ALL IN TABLESPACE pg_default SET TABLESPACE``), and the
    filesystem is filled. The server keeps running: its write-ahead log and catalogs
    stay in the data directory, so nothing PANICs. A write that needs a new page of a
    table or index fails with PostgreSQL's own ``could not extend file ...: No space
    left on device`` (SQLSTATE 53100, ``disk_full``); reads go on, and so do writes
    that fit in the pages the relations have (a few INSERTs into the last page, UPDATEs
    that stay on their page, DELETEs). Tables created during the fault land in
    ``pg_default`` and are not full. Moving takes an ACCESS EXCLUSIVE lock on each
    relation: a transaction of the system under test holding a lock on one for more
    than ``lock_timeout`` seconds makes the fault an `InjectionError` naming the
    session (nothing is left moved), and sessions queue behind the move meanwhile.
    Healed by removing the filler, moving everything back to ``pg_default`` (waiting
    up to 30 s for locks), dropping the tablespace and unmounting. The fault's
    attributes give ``tablespace``, ``database`` and the ``tables`` moved.

    With ``path`` (process services): the filesystem holding ``path`` (the service's
    data directory, put on a small filesystem of your own) is filled by a filler file
    in ``path``, removed at heal. A filesystem with more than ``max_fill_mib`` MiB free
    is refused: filling it would fill this machine's disk.
    """
    svc = _service(service, "fill_disk")
    mib = _positive_int(mib, "mib", "fill_disk", "the size of the filesystem, e.g. 16")
    if (
        isinstance(lock_timeout, bool)
        or not isinstance(lock_timeout, int | float)
        or not 0 < lock_timeout <= 600
    ):
        raise ConfigurationError(
            f"chaos.fill_disk(lock_timeout={lock_timeout!r}): lock_timeout must be a number "
            "of seconds in (0, 600], how long moving PostgreSQL's tables may wait for their "
            "locks (e.g. 5)."
        )
    if path is not None:
        return _fill_path(chaos, svc, path, max_fill_mib)
    if svc.kind == "postgres":
        return _fill_postgres(chaos, svc, mib, float(lock_timeout))
    if svc.kind != "redis":
        raise InjectionError(
            f"chaos.fill_disk({svc.name!r}) knows how to put Redis's persistence and "
            f"PostgreSQL's tables on a small filesystem; {svc.name!r} is {svc.kind}. Use a "
            "Redis or PostgreSQL service, or start your server with its data directory on a "
            "small filesystem and pass it as path=."
        )
    _running(svc, "fill_disk")
    docker = _docker(svc)
    if not docker:
        _need_mount(
            svc,
            "process",
            "the fault",
            "run Redis on Docker with --enable-protected-configs yes (its /dev/shm is "
            "filled instead).",
        )
    address = (svc.host, svc.port)
    password = services.redis_password(svc.url)
    saved: dict[str, Any] = {}
    fs: services.SmallFilesystem | None = None
    shm_dir = f"/dev/shm/pytest-chaos-{os.urandom(4).hex()}"

    def config(*args: str) -> Any:
        return services.redis_call(address, "CONFIG", *args, password=password)

    current_dir = config("GET", "dir")[1]
    try:
        config("SET", "dir", current_dir)  # the same value: only asks whether it may move
    except services.RedisReplyError as exc:
        if "protected config" not in str(exc):
            raise
        unavailable(
            f"chaos.fill_disk({svc.name!r}): this Redis ({svc.describe()}) protects its "
            "'dir' setting (Redis 7's enable-protected-configs no), so its persistence "
            "cannot move to a small filesystem. Start it with --enable-protected-configs "
            "local (pytest-chaos's local provider does), or use Redis 6 (the bundled "
            "provider)."
        )

    def apply() -> None:
        nonlocal fs
        saved["appendonly"] = config("GET", "appendonly")[1]
        if docker:
            container = services.container_of(svc.runtime)
            code, out = container.exec_run(
                ["sh", "-c", f"mkdir -p {shm_dir} && chmod 777 {shm_dir}"]
            )
            if code != 0:
                raise InjectionError(f"could not create {shm_dir} in the container: {out!r}")
            config("SET", "dir", shm_dir)
        else:
            fs = services.SmallFilesystem(mib, owner=_owner(svc.pid))
            fs.mount()
            config("SET", "dir", str(fs.path))
        saved["dir"] = current_dir
        config("SET", "appendonly", "yes")
        # The append-only file's first rewrite runs in the background; fill once it
        # has started writing, so the fill is what makes every later write fail.
        services.wait_for(lambda: _aof_idle(address, password), timeout=10)
        if docker:
            container.exec_run(
                [
                    "sh",
                    "-c",
                    f"dd if=/dev/zero of={shm_dir}/.pytest-chaos-filler bs=1M 2>/dev/null; true",
                ]
            )
        else:
            assert fs is not None
            fs.fill()

    def undo() -> None:
        if svc.state == "running" and "dir" in saved:
            config("SET", "appendonly", saved["appendonly"])
            config("SET", "dir", saved["dir"])
        if docker:
            if svc.state != "removed":
                services.container_of(svc.runtime).exec_run(["rm", "-rf", shm_dir])
        elif fs is not None:
            fs.remove()

    where = "container /dev/shm" if docker else f"tmpfs {mib} MiB"
    return _service_fault(chaos, svc, "fill_disk", apply, undo, mib=mib, where=where)


#: bytes the moved relations must leave free on the small filesystem: the free space
#: and visibility maps PostgreSQL adds to them, and the margin of a tmpfs's pages
_PG_ROOM = 1 << 20
#: seconds healing waits, in all, for the locks to move the relations back
_PG_HEAL_SECONDS = 30.0


def _need_mount(svc: Service, what: str, mounted_for: str, instead: str) -> None:
    """Skip (``unavailable``) with the reason when no small tmpfs can be mounted here."""
    reason = services.SmallFilesystem.unusable_reason()
    if reason is not None:
        unavailable(
            f"chaos.fill_disk({svc.name!r}) on a {svc.provider} {what}: {reason}. Run "
            f"pytest where it may mount (root with CAP_SYS_ADMIN: a tmpfs is mounted for "
            f"{mounted_for}), or {instead}"
        )


def _fill_postgres(chaos: Injector, svc: Service, mib: int, lock_timeout: float) -> Fault:
    """fill_disk for PostgreSQL: the database's relations on a full tablespace."""
    _running(svc, "fill_disk")
    docker = _docker(svc)
    if not docker:
        _need_mount(
            svc,
            "PostgreSQL process",
            "the fault's tablespace",
            "run PostgreSQL on Docker (--chaos-services=docker: the container's /dev/shm "
            "holds it), or start it with its data directory on a small filesystem of yours "
            "and pass path=.",
        )
    token = os.urandom(4).hex()
    space = services.PostgresTablespace(svc.url, f"pytest_chaos_disk_{token}", lock_timeout)
    database = space.database()
    moved: list[str] = []  # filled in by apply, before the timeline records the fault
    fs: services.SmallFilesystem | None = None
    shm_dir = f"/dev/shm/pytest-chaos-{token}"
    made_dir = False

    def sh(script: str) -> str:
        code, out = services.container_of(svc.runtime).exec_run(["sh", "-c", script])
        text = out.decode(errors="replace").strip() if isinstance(out, bytes) else str(out)
        if code != 0:
            raise InjectionError(
                f"chaos.fill_disk({svc.name!r}): `{script}` failed in the container "
                f"(exit {code}): {text}"
            )
        return text

    def apply() -> None:
        nonlocal fs, made_dir
        need = space.default_bytes()
        datadir = space.data_directory()
        if docker:
            location = f"{shm_dir}/tablespace"
            owner = sh(f"stat -c %u:%g '{datadir}'")  # the server's user owns its data
            made_dir = True
            sh(f"mkdir -p {location} && chown {owner} {location} && chmod 700 {location}")
            free = int(sh("df -Pk /dev/shm").split()[-3]) * 1024
            size = "the container's /dev/shm"
            fix = "run PostgreSQL in a container with a larger --shm-size"
        else:
            server = os.stat(datadir)  # the server's user owns its data
            fs = services.SmallFilesystem(mib, owner=(server.st_uid, server.st_gid))
            fs.mount()
            tablespace_dir = fs.path / "tablespace"
            tablespace_dir.mkdir(mode=0o700)
            os.chown(tablespace_dir, server.st_uid, server.st_gid)
            location = str(tablespace_dir)
            free = shutil.disk_usage(fs.path).free
            size = f"a {mib} MiB filesystem"
            fix = f"give mib={-(-(need + _PG_ROOM) // (1 << 20)) + 1} or more"
        if need + _PG_ROOM > free:
            raise ConfigurationError(
                f"chaos.fill_disk({svc.name!r}): the tables and indexes of database "
                f"{database!r} take {need / (1 << 20):.1f} MiB, which with 1 MiB of room "
                f"does not fit {size} ({free / (1 << 20):.1f} MiB free): {fix}."
            )
        space.create(location)
        try:
            space.move_in()
        except services.TablespaceLocked as exc:
            held = "; ".join(exc.holders) or "no session holds one now"
            raise InjectionError(
                f"chaos.fill_disk({svc.name!r}): moving the tables of database {database!r} "
                f"to the small filesystem waited lock_timeout={lock_timeout:g} s for their "
                f"locks (ALTER TABLE takes an ACCESS EXCLUSIVE lock on each): {held}. Commit "
                "or roll back open transactions before the fault (a session idle in "
                "transaction keeps its locks), or give lock_timeout= more seconds."
            ) from exc
        moved.extend(space.relations())
        if docker:
            sh(f"dd if=/dev/zero of={shm_dir}/{services.FILLER_NAME} bs=1M 2>/dev/null; true")
        else:
            assert fs is not None
            fs.fill()

    def by_hand() -> str:
        mount = f", then umount {fs.path}" if fs is not None else ""
        return (
            f"The disk is no longer full. To finish by hand, in database {database!r}: "
            f"ALTER TABLE ALL IN TABLESPACE {space.name} SET TABLESPACE pg_default (the "
            f"same for INDEX and MATERIALIZED VIEW), DROP TABLESPACE {space.name}{mount}."
        )

    def move_back() -> None:
        wait = max(_PG_HEAL_SECONDS, 3 * lock_timeout)
        deadline = time.monotonic() + wait
        while True:
            try:
                space.move_out()
                return
            except services.TablespaceLocked as exc:
                if time.monotonic() > deadline:
                    held = "; ".join(exc.holders) or "no session holds one now"
                    raise InjectionError(
                        f"chaos.fill_disk({svc.name!r}): healing could not move the tables "
                        f"back from tablespace {space.name!r} within {wait:g} s: {held}. "
                        f"End those transactions. {by_hand()}"
                    ) from exc

    def undo() -> None:
        state = svc.state
        if state == "removed":
            if fs is not None:
                fs.remove()
            return
        # Room first: the database takes writes again even if moving back has to wait.
        if docker:
            if made_dir:
                sh(f"rm -f {shm_dir}/{services.FILLER_NAME}")
        elif fs is not None:
            (fs.path / services.FILLER_NAME).unlink(missing_ok=True)
        if space.created:
            if state != "running":
                raise InjectionError(
                    f"chaos.fill_disk({svc.name!r}): the service is {state}, so its tables "
                    f"stay on tablespace {space.name!r}. {by_hand()}"
                )
            move_back()
            space.drop()
        if docker:
            if made_dir:
                sh(f"rm -rf {shm_dir}")
        elif fs is not None:
            fs.remove()

    where = "container /dev/shm" if docker else f"tmpfs {mib} MiB"
    return _service_fault(
        chaos,
        svc,
        "fill_disk",
        apply,
        undo,
        mib=mib,
        where=where,
        tablespace=space.name,
        database=database,
        tables=moved,
    )


def _fill_path(
    chaos: Injector, svc: Service, path: str | os.PathLike[str], max_fill_mib: int
) -> Fault:
    if _docker(svc):
        raise ConfigurationError(
            f"chaos.fill_disk({svc.name!r}, path=...) fills a directory of this machine; "
            f"{svc.name!r} is a container. Leave path out (Redis), or fill a volume of yours."
        )
    max_fill_mib = _positive_int(max_fill_mib, "max_fill_mib", "fill_disk", "e.g. 1024")
    directory = Path(path)
    if not directory.is_dir():
        raise ConfigurationError(
            f"chaos.fill_disk(path={os.fspath(path)!r}): not a directory; give the service's "
            "data directory (on a small filesystem)."
        )
    free_mib = shutil.disk_usage(directory).free // (1 << 20)
    if free_mib > max_fill_mib:
        raise ConfigurationError(
            f"chaos.fill_disk(path={os.fspath(path)!r}): its filesystem has {free_mib} MiB "
            f"free, more than max_fill_mib={max_fill_mib}: filling it would fill this "
            "machine's disk. Put the service's data on a small filesystem (a tmpfs with "
            "size=, a loop device), or raise max_fill_mib if you mean it."
        )
    filler = directory / services.FILLER_NAME

    def apply() -> None:
        services.fill_directory(directory)

    def undo() -> None:
        filler.unlink(missing_ok=True)

    return _service_fault(
        chaos, svc, "fill_disk", apply, undo, path=os.fspath(path), free_mib=free_mib
    )


def _owner(pid: int | None) -> tuple[int, int] | None:
    if pid is None:
        return None
    try:
        stat = os.stat(f"/proc/{pid}")
    except OSError:
        return None
    return stat.st_uid, stat.st_gid


def _aof_idle(address: tuple[str, int], password: str | None) -> bool:
    info = services.redis_call(address, "INFO", "persistence", password=password)
    return "aof_rewrite_in_progress:0" in str(info)


# -- connections -------------------------------------------------------------------


@runtime_checkable
class _Proxy(Protocol):
    """What a connection fault needs of a `ChaosProxy`."""

    name: str
    server_name: str
    host: str
    port: int


def exhaust_connections(
    chaos: Injector,
    target: Any,
    n: int | None = None,
    *,
    server: Service | None = None,
    max_clients: int | None = None,
) -> Fault:
    """Open and hold real sessions to Redis or PostgreSQL until it has no slot left.

    ``target`` is the service itself, or a `ChaosProxy` in front of it (then pass the
    service as ``server=``, for its protocol and credentials): the sessions go through
    the proxy and count as that proxy's connections. ``n`` holds that many sessions;
    without it sessions are opened until the server refuses one for its limit, so the
    system under test meets the server's own errors: PostgreSQL's ``sorry, too many
    clients already`` (sessions are real logins, as only those count towards
    ``max_connections``) and Redis's ``ERR max number of clients reached``.

    Redis allows 10,000 clients by default: pass ``max_clients=N`` to lower its
    ``maxclients`` for the fault (restored at heal) instead of opening thousands.
    Healed by closing every session. ``fault.attributes`` gives ``held`` and the
    server's ``refusal``.
    """
    proxy: _Proxy | None = None
    if isinstance(target, Service):
        svc = target
        if server is not None and server is not target:
            raise ConfigurationError(
                f"chaos.exhaust_connections({svc.name!r}, server={server.name!r}): server= is "
                "for a proxy target; with a service, leave it out."
            )
    elif isinstance(target, _Proxy):  # a ChaosProxy (which calls this: no import of it)
        proxy = target
        if not isinstance(server, Service):
            raise ConfigurationError(
                f"chaos.exhaust_connections(proxy {target.name!r}) needs server= the service "
                "behind it (e.g. server=chaos_services.postgres()), for its protocol and "
                "credentials."
            )
        svc = server
    else:
        raise TypeError(
            "chaos.exhaust_connections() takes a service from chaos_services or a ChaosProxy "
            f"in front of one, not {type(target).__name__} {target!r}."
        )
    if svc.kind not in ("redis", "postgres"):
        raise InjectionError(
            f"chaos.exhaust_connections knows Redis and PostgreSQL logins; {svc.name!r} is "
            f"{svc.kind}. Use a Redis or PostgreSQL service."
        )
    if n is not None:
        n = _positive_int(n, "n", "exhaust_connections", "how many sessions to hold")
    if max_clients is not None:
        max_clients = _positive_int(
            max_clients, "max_clients", "exhaust_connections", "Redis's maxclients for the fault"
        )
        if svc.kind != "redis":
            raise ConfigurationError(
                f"chaos.exhaust_connections(max_clients={max_clients}) lowers Redis's "
                f"maxclients; PostgreSQL's max_connections cannot change without a restart. "
                "Leave max_clients out (the sessions fill max_connections)."
            )
    direct = (svc.host, svc.port)
    password = services.redis_password(svc.url) if svc.kind == "redis" else None
    if svc.kind == "redis" and n is None and max_clients is None:
        limit = int(
            services.redis_call(direct, "CONFIG", "GET", "maxclients", password=password)[1]
        )
        if limit > REDIS_FILL_CAP:
            raise ConfigurationError(
                f"chaos.exhaust_connections({svc.name!r}): Redis's maxclients is {limit}; "
                f"filling it would open {limit} sockets. Pass max_clients=N (e.g. 20) to lower "
                "it for the fault, or n= to hold a number of sessions."
            )
    address = (proxy.host, proxy.port) if proxy is not None else direct
    holder = services.ConnectionHolder(svc.kind, svc.url, address)
    saved: dict[str, str] = {}

    def apply() -> None:
        if max_clients is not None:
            saved["maxclients"] = services.redis_call(
                direct, "CONFIG", "GET", "maxclients", password=password
            )[1]
            services.redis_call(
                direct, "CONFIG", "SET", "maxclients", str(max_clients), password=password
            )
        holder.fill(n)

    def restore_maxclients() -> bool:
        try:
            services.redis_call(
                direct, "CONFIG", "SET", "maxclients", saved["maxclients"], password=password
            )
        except services.RedisReplyError as exc:
            # Redis closes the held sessions a moment after they are closed here.
            if "max number of clients" in str(exc):
                return False
            raise
        return True

    def undo() -> None:
        holder.close()
        restore = "maxclients" in saved and svc.state == "running"
        if restore and not services.wait_for(restore_maxclients, timeout=10):
            raise InjectionError(
                f"could not restore maxclients {saved['maxclients']} on {svc.name!r}: "
                "Redis still refused a client 10 s after the held sessions were closed."
            )

    extra: dict[str, Any] = {"n": n, "server": svc.name, "server_kind": svc.kind}
    if max_clients is not None:
        extra["max_clients"] = max_clients
    if proxy is not None:
        svc.mark_used()
        fault = chaos.inject(
            proxy.name,
            "exhaust_connections",
            apply=apply,
            undo=undo,
            attributes={"proxy": proxy.name, **extra},
        )
    else:
        fault = _service_fault(chaos, svc, "exhaust_connections", apply, undo, **extra)
    fault.attributes.update(held=holder.count, refusal=holder.refusal)
    chaos.timeline.record(
        "note",
        "connections_held",
        target=fault.target,
        fault_id=fault.id,
        held=holder.count,
        refusal=holder.refusal,
    )
    return fault
