"""The container backend: a Toxiproxy server in a Docker container (``--chaos-backend=container``).

The image is a setting (ini ``chaos_toxiproxy_image``, env
``PYTEST_CHAOS_TOXIPROXY_IMAGE``, default the public ``ghcr.io/shopify/toxiproxy``);
offline CI points it at pytest-chaos's own proxy image (docker/proxy), which takes the
same flags.

The container shares the host's network namespace (``network_mode=host``) and listens
on 127.0.0.1 only. Why not a bridge network with published ports: the controller
creates proxies while tests run, each listening on a port chosen then, and Docker can
publish ports only when a container is created. In the host namespace every proxy
port is reachable from the test process as soon as it exists, and upstreams are the
same ``service.address`` (127.0.0.1:published port) that the embedded backend uses, so
one test runs unchanged on every backend. Services still live on their own Docker
network under their alias, which is what ``chaos.disconnect`` cuts.

The container carries the run labels of the services layer and is removed at stop;
leftovers of dead runs are removed at the next start.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from pytest_chaos.backends import BackendOptions, register_backend
from pytest_chaos.errors import ConfigurationError, ServiceError

if TYPE_CHECKING:
    import pytest

    from pytest_chaos.services import ServiceSettings

__all__ = ["ContainerBackend", "start_container_backend"]

#: seconds the server in the container may take to answer its API
START_TIMEOUT = 60.0


def _settings(config: pytest.Config | None) -> ServiceSettings:
    from pytest_chaos.services import ServiceSettings

    if config is None:
        return ServiceSettings.from_environment()
    from pytest_chaos.services import service_settings

    return service_settings(config)


def _version(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/version", timeout=2) as response:
            body = response.read()
    except (OSError, urllib.error.URLError):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        # Toxiproxy before 2.6 answered /version with the bare version string.
        return {"version": body.decode(errors="replace").strip()}
    return value if isinstance(value, dict) else {"version": str(value)}


class ContainerBackend:
    """Runs the Toxiproxy image on ``127.0.0.1:<free port>`` in the host's network."""

    kind = "container"

    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        self.url = ""
        self.embedded = False
        self.version: dict[str, Any] = {}
        self.image = _settings(options.config).toxiproxy_image
        self.removed_leftovers: list[str] = []
        self._tc: Any = None

    def start(self) -> None:
        """Start the container and wait until its API answers."""
        if self._tc is not None:
            return
        try:
            import docker
            import docker.errors
            from testcontainers.core.container import DockerContainer

            from pytest_chaos.services import (
                LABEL_OWNER,
                LABEL_RUN,
                docker_unusable_reason,
                free_port,
                owner_token,
                remove_dead_leftovers,
                settle_ryuk,
            )
        except ImportError as exc:
            raise ConfigurationError(
                f"--chaos-backend=container needs docker and testcontainers ({exc}); "
                "install them: pip install 'pytest-chaos[containers]'."
            ) from exc
        reason = docker_unusable_reason()
        if reason is not None:
            raise ConfigurationError(
                f"--chaos-backend=container needs a Docker engine, but {reason}. Start "
                "dockerd or choose --chaos-backend=embedded."
            )
        client = docker.from_env(timeout=60)
        try:
            self.removed_leftovers = remove_dead_leftovers(client)
            settle_ryuk(client)
            try:
                client.images.get(self.image)
            except docker.errors.ImageNotFound:
                try:
                    client.images.pull(self.image)
                except docker.errors.DockerException as exc:
                    raise ConfigurationError(
                        f"Toxiproxy image {self.image!r} is not present locally and could not "
                        f"be pulled ({exc}). Pull or build it, or set chaos_toxiproxy_image / "
                        "PYTEST_CHAOS_TOXIPROXY_IMAGE to a local image (see docker/proxy)."
                    ) from exc
        finally:
            client.close()
        run_id = self.options.run_id or uuid.uuid4().hex[:12]
        labels = {
            LABEL_RUN: run_id,
            LABEL_OWNER: owner_token(),
            "pytest-chaos.service": "toxiproxy",
        }
        # Docker names allow [a-zA-Z0-9_.-] only; run ids and worker ids are not ours.
        name = re.sub(r"[^a-zA-Z0-9_.-]", "-", f"{run_id}-toxiproxy-{self.options.worker}")
        for attempt in range(3):
            port = free_port()
            tc = DockerContainer(
                self.image, command=cast(Any, ["-host=127.0.0.1", f"-port={port}"])
            )
            tc.with_name(f"pytest-chaos-{name}-{port}")
            tc.with_kwargs(network_mode="host", labels=labels)
            self._tc = tc
            try:
                version = self._wait_for_api(tc, f"http://127.0.0.1:{port}", last=attempt == 2)
            except BaseException:
                self.stop()
                raise
            if version is not None:
                break
            # Another process took the port between our check and the server's bind.
            self.stop()
        self.url = f"http://127.0.0.1:{port}"
        self.version = version or {}
        self.embedded = str(self.version.get("implementation", "")).startswith("pytest-chaos")

    def _wait_for_api(self, tc: Any, url: str, *, last: bool) -> dict[str, Any] | None:
        """Start ``tc``; its ``/version``, or ``None`` when it lost its port to a race."""
        tc.start()
        container = tc.get_wrapped_container()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            version = _version(url)
            container.reload()
            if container.status != "running":
                logs = container.logs(tail=20).decode(errors="replace")
                if not last and "in use" in logs:
                    return None
                raise ServiceError(
                    f"the Toxiproxy container ({self.image}) exited before its API "
                    f"answered on {url}; its last log lines:\n{logs}"
                )
            # Checked after the container: an answer from a process that took our
            # port would otherwise pass for our server.
            if version is not None:
                return version
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"the Toxiproxy container ({self.image}) did not answer on {url} "
                    f"within {START_TIMEOUT:.0f} s."
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """Remove the container; idempotent."""
        tc, self._tc = self._tc, None
        if tc is not None:
            with contextlib.suppress(Exception):
                tc.stop(force=True, delete_volume=True)

    def __repr__(self) -> str:
        state = "running" if self._tc is not None else "stopped"
        return f"<ContainerBackend {self.image} {self.url or '-'} {state}>"


def start_container_backend(
    config: pytest.Config | None = None, *, run_id: str = "", worker: str = "master"
) -> tuple[str, Callable[[], None]]:
    """Start a Toxiproxy container; return its API URL and the function that removes it."""
    backend = ContainerBackend(BackendOptions(run_id=run_id, worker=worker, config=config))
    backend.start()
    return backend.url, backend.stop


register_backend("container", ContainerBackend)
