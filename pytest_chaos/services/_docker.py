"""The Docker provider: dependencies as containers, started through testcontainers.

Every container and network it creates carries three labels: ``pytest-chaos.run-id``
(this provider's run), ``pytest-chaos.owner`` (host, pid and process start time of the
pytest process that made it) and ``pytest-chaos.service``. Ryuk (testcontainers' own
reaper) is usually disabled here because its image cannot be pulled offline, so cleanup
is ours: everything is removed when the provider closes, and the first provider of a
later run removes what dead processes on this host left behind.

Containers join one Docker network per run, under an alias equal to the service name,
so that other containers reach them by name. Their port is published on 127.0.0.1 on a
port chosen up front, not by Docker: a published port chosen by Docker changes when the
container restarts, and a restart is exactly what kill/stop faults undo.

docker and testcontainers are imported by this module: only import it when Docker is
about to be used.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import uuid
from collections.abc import Callable
from typing import Any, cast

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import EndpointConfig
from testcontainers.core.container import DockerContainer

from pytest_chaos.errors import ServiceError
from pytest_chaos.services._bundled import parse_version
from pytest_chaos.services._local import free_port
from pytest_chaos.services._owner import owner_is_dead, owner_token
from pytest_chaos.services._probe import tcp_ready, wait_until
from pytest_chaos.services._service import ServiceState

__all__ = [
    "LABEL_OWNER",
    "LABEL_RUN",
    "ContainerRuntime",
    "DockerProvider",
    "docker_unusable_reason",
    "owner_token",
    "remove_dead_leftovers",
    "settle_ryuk",
]

LABEL_RUN = "pytest-chaos.run-id"
LABEL_OWNER = "pytest-chaos.owner"
LABEL_SERVICE = "pytest-chaos.service"


def docker_unusable_reason() -> str | None:
    """``None`` when a Docker engine answers, else why it does not (for messages)."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if host.startswith("unix://"):
        # Probe the socket first: the docker SDK leaks its socket when the engine is
        # missing, which becomes a ResourceWarning (an error under filterwarnings=error).
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(5)
                probe.connect(host[len("unix://") :])
        except OSError as exc:
            return f"no Docker engine answers on {host} ({exc.strerror or exc})"
    try:
        client = docker.from_env(timeout=5)
    except docker.errors.DockerException as exc:
        return f"no Docker engine answers ({exc})"
    try:
        client.ping()
    except Exception as exc:
        return f"the Docker engine does not answer a ping ({type(exc).__name__}: {exc})"
    finally:
        client.close()
    return None


def settle_ryuk(client: docker.DockerClient) -> bool:
    """Disable testcontainers' Ryuk when its image is not here and cannot be pulled.

    Offline, Ryuk's image is out of reach and every container start would fail on it;
    our own cleanup (labels, close, dead-run sweep) does its job. Returns whether Ryuk
    is disabled.
    """
    from testcontainers.core.config import testcontainers_config as tc_config

    if tc_config.ryuk_disabled:
        return True
    try:
        client.images.get(tc_config.ryuk_image)
        return False
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.pull(tc_config.ryuk_image)
        return False
    except docker.errors.DockerException:
        tc_config.ryuk_disabled = True
        return True


def remove_dead_leftovers(client: docker.DockerClient) -> list[str]:
    """Remove containers and networks of dead pytest-chaos processes on this host."""
    removed: list[str] = []
    # Two workers of a new run may sweep at once: what the other removed (or is
    # removing: 409) is not an error.
    leftovers = client.containers.list(all=True, filters={"label": LABEL_RUN}, ignore_removed=True)
    for container in leftovers:
        if owner_is_dead(container.labels.get(LABEL_OWNER, "")):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True, v=True)
                removed.append(f"container {container.name}")
    for network in client.networks.list(filters={"label": LABEL_RUN}):
        if owner_is_dead((network.attrs.get("Labels") or {}).get(LABEL_OWNER, "")):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                network.remove()
                removed.append(f"network {network.name}")
    return removed


class ImageUnavailable(ServiceError):
    """An image is neither present locally nor pullable (an offline machine)."""


class ContainerRuntime:
    """One container of a service: what container faults and cleanup act on."""

    provider = "docker"

    def __init__(
        self,
        *,
        label: str,
        tc: DockerContainer,
        network: str,
        alias: str,
        internal_port: int,
        ready: Callable[[], bool] | None,
        client: docker.DockerClient,
    ) -> None:
        self._label = label
        self._tc = tc
        self._network = network
        self._alias = alias
        self._internal_port = internal_port
        self._ready = ready
        self._client = client
        self._removed = False

    @property
    def container(self) -> Container:
        """The docker SDK container object."""
        return cast(Container, self._tc.get_wrapped_container())

    @property
    def network(self) -> str:
        """The run's network the container joined under its alias."""
        return self._network

    def state(self) -> ServiceState:
        """running, paused, stopped or removed, as the engine reports it now."""
        if self._removed:
            return "removed"
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return "removed"
        status = self.container.status
        if status == "paused":
            return "paused"
        return "running" if status == "running" else "stopped"

    def _running(self) -> bool:
        return self.state() in ("running", "paused")

    @property
    def pid(self) -> int | None:
        """The host pid of the container's main process, ``None`` when it is not running."""
        try:
            if not self._running():  # reloads the container's attributes
                return None
            pid = self.container.attrs.get("State", {}).get("Pid")
        except Exception:  # the engine went away: no pid to report
            return None
        return int(pid) if pid else None

    def server_version(self, argv: list[str]) -> str | None:
        """The version the container's server binary reports (``argv`` is e.g.
        ``["redis-server", "--version"]``), or ``None`` when it cannot tell."""
        try:
            code, output = self.container.exec_run(argv)
        except Exception:
            return None
        if code != 0:
            return None
        return parse_version(bytes(output).decode(errors="replace"))

    def _container_ip(self) -> str | None:
        self.container.reload()
        networks = self.container.attrs.get("NetworkSettings", {}).get("Networks", {})
        ip = (networks.get(self._network) or {}).get("IPAddress")
        return ip or None

    def _default_ready(self) -> bool:
        # The container's own address, not the published port: Docker's port publisher
        # accepts connections even when nothing listens inside.
        ip = self._container_ip()
        return ip is not None and tcp_ready(ip, self._internal_port)

    def wait_ready(self, timeout: float) -> None:
        """Block until the service in the container answers its probe."""
        ready = self._ready or self._default_ready
        # Every poll asks the Docker API: 20 Hz to start with, not 100.
        if wait_until(ready, timeout=timeout, interval=0.05, alive=self._running):
            return
        logs = b""
        with contextlib.suppress(Exception):
            logs = self.container.logs(tail=15)
        raise ServiceError(
            f"{self._label} did not answer within {timeout:.0f} s (container state: "
            f"{self.state()}); last log lines:\n{logs.decode(errors='replace')}"
        )

    def pause(self) -> None:
        """``docker pause``: freeze every process (cgroup freezer)."""
        self.container.pause()

    def unpause(self) -> None:
        """``docker unpause``."""
        if self.state() == "paused":
            self.container.unpause()

    def stop(self) -> None:
        """``docker stop``: the image's stop signal, SIGKILL after 10 s."""
        if self.state() == "paused":
            self.container.unpause()
        self.container.stop(timeout=10)

    def kill(self) -> None:
        """``docker kill``: SIGKILL every process of the container."""
        # Docker refuses to kill a paused container; a frozen process dies all the same.
        if self.state() == "paused":
            self.container.unpause()
        self.container.kill()

    def start(self) -> None:
        """``docker start``: same container, same published port, same network alias."""
        if self.state() == "stopped":
            self.container.start()

    def disconnect(self, network: str | None) -> str:
        """``docker network disconnect``: a real partition from ``network``."""
        name = network or self._network
        try:
            self._client.networks.get(name).disconnect(self.container)
        except docker.errors.NotFound as exc:
            raise ServiceError(f"cannot disconnect {self._label} from {name!r}: {exc}") from exc
        return name

    def reconnect(self, network: str) -> None:
        """``docker network connect`` with the service's alias again."""
        self._client.networks.get(network).connect(self.container, aliases=[self._alias])

    def remove(self) -> None:
        """Remove the container (forced) and its anonymous volumes. Idempotent."""
        if self._removed:
            return
        self._removed = True
        try:
            self._tc.stop(force=True, delete_volume=True)
        except docker.errors.NotFound:
            pass  # removed by someone else: nothing left to do but close the client
        finally:
            self._tc.get_docker_client().client.close()

    def describe(self) -> str:
        """The container's short id."""
        try:
            return f"container {self.container.short_id}"
        except Exception:
            return "container (gone)"

    def __repr__(self) -> str:
        return f"<ContainerRuntime {self._label} {self.describe()} network={self._network}>"


class DockerProvider:
    """Starts service containers for one pytest process and removes them all at close."""

    def __init__(self, *, run_id: str | None = None) -> None:
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._owner = owner_token()
        self._client = docker.from_env(timeout=60)
        self._network: str | None = None
        self._runtimes: list[ContainerRuntime] = []
        self.removed_leftovers = remove_dead_leftovers(self._client)
        settle_ryuk(self._client)

    def __repr__(self) -> str:
        return (
            f"<DockerProvider run={self.run_id} network={self._network or '-'} "
            f"containers={len(self._runtimes)}>"
        )

    @property
    def labels(self) -> dict[str, str]:
        """The labels every container and network of this run carries."""
        return {LABEL_RUN: self.run_id, LABEL_OWNER: self._owner}

    @property
    def client(self) -> docker.DockerClient:
        """The provider's docker SDK client."""
        return self._client

    def network(self) -> str:
        """The run's network (created on first use)."""
        if self._network is None:
            name = f"pytest-chaos-{self.run_id}"
            self._client.networks.create(name, driver="bridge", labels=self.labels)
            self._network = name
        return self._network

    def _ensure_image(self, image: str, setting: str) -> None:
        try:
            self._client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        try:
            self._client.images.pull(image)
        except docker.errors.DockerException as exc:
            raise ImageUnavailable(
                f"image {image!r} is not present locally and could not be pulled ({exc}). "
                f"Pull or build it, or point {setting} at a local image "
                "(offline CI: see .ci/docker.sh)."
            ) from exc

    def start(
        self,
        *,
        name: str,
        image: str,
        port: int,
        setting: str,
        env: dict[str, str] | None = None,
        command: str | list[str] | None = None,
        ready: Callable[[str, int], bool] | None = None,
        timeout: float = 60.0,
    ) -> tuple[ContainerRuntime, int]:
        """Start ``image`` with ``port`` published on 127.0.0.1; return it and the host port.

        ``ready(host, port)`` probes the published address; without it the container's
        own address on the run's network is probed for a listening socket.
        """
        self._ensure_image(image, setting)
        network = self.network()
        for attempt in range(5):
            host_port = free_port()
            # testcontainers types command as str, the docker SDK takes a list as well.
            tc = DockerContainer(image, command=cast(Any, command), env=dict(env or {}))
            # 127.0.0.1 only: never expose test dependencies beyond this machine.
            cast(Any, tc).ports[f"{port}/tcp"] = ("127.0.0.1", host_port)
            tc.with_name(f"pytest-chaos-{self.run_id}-{name}-{uuid.uuid4().hex[:6]}")
            tc.with_kwargs(
                labels={**self.labels, LABEL_SERVICE: name},
                network=network,
                networking_config={
                    network: EndpointConfig(self._client.api._version, aliases=[name])
                },
            )
            try:
                tc.start()
            except docker.errors.APIError as exc:
                with contextlib.suppress(Exception):
                    tc.stop(force=True)
                text = str(exc)
                # Another process took the port between our check and Docker's bind.
                if attempt < 4 and ("already allocated" in text or "address already" in text):
                    continue
                raise ServiceError(f"could not start {image!r} for {name!r}: {exc}") from exc
            break
        probe: Callable[[], bool] | None = None
        if ready is not None:
            probe_fn = ready
            probe = lambda: probe_fn("127.0.0.1", host_port)  # noqa: E731
        elif sys.platform != "linux":
            # Docker Desktop runs containers in a VM whose addresses the host cannot
            # reach: the published port is the only way in (and a weaker witness).
            probe = lambda: tcp_ready("127.0.0.1", host_port)  # noqa: E731
        runtime = ContainerRuntime(
            label=f"{name} ({image} on 127.0.0.1:{host_port})",
            tc=tc,
            network=network,
            alias=name,
            internal_port=port,
            ready=probe,
            client=self._client,
        )
        self._runtimes.append(runtime)
        runtime.wait_ready(timeout)
        return runtime, host_port

    def close(self) -> list[str]:
        """Remove every container and the network of this run; return what failed."""
        problems: list[str] = []
        for runtime in reversed(self._runtimes):
            try:
                runtime.remove()
            except Exception as exc:
                problems.append(f"{runtime.describe()}: {exc}")
        self._runtimes.clear()
        # Whatever escaped the bookkeeping (a crash between create and start) by label.
        for container in self._client.containers.list(
            all=True, filters={"label": f"{LABEL_RUN}={self.run_id}"}, ignore_removed=True
        ):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        if self._network is not None:
            try:
                self._client.networks.get(self._network).remove()
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                problems.append(f"network {self._network}: {exc}")
            self._network = None
        self._client.close()
        return problems
