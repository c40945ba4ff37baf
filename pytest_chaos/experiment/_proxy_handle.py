"""``ChaosProxy``: a fault proxy in front of one dependency, and its fault methods.

Fault methods speak Toxiproxy's units (milliseconds, KB/s, bytes) so numbers match the
Toxiproxy documentation. Each returns a :class:`~pytest_chaos.experiment._fault.Fault`.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pytest_chaos.errors import ChaosError, ConfigurationError, InjectionError, ProxyAPIError
from pytest_chaos.experiment._fault import Fault, Injector

if TYPE_CHECKING:
    from pytest_chaos.client import ProxyJSON, ProxyStats, ToxiproxyClient

__all__ = ["ChaosProxy", "StreamArg", "parse_address"]

StreamArg = Literal["downstream", "upstream", "both"]
_STREAMS = ("downstream", "upstream", "both")


def parse_address(value: Any, *, what: str) -> str:
    """``"host:port"`` from a string, a ``(host, port)`` tuple or an object's ``.address``."""
    raw = value
    if not isinstance(value, str | tuple) and hasattr(value, "address"):
        value = value.address
    if isinstance(value, tuple) and len(value) == 2:
        value = f"{value[0]}:{value[1]}"
    if isinstance(value, str):
        host, sep, port = value.rpartition(":")
        if sep and host and port.isdigit() and 0 < int(port) < 65536:
            return value
    raise ConfigurationError(
        f"{what}: {raw!r} is not an address; give 'host:port' (e.g. '127.0.0.1:6379'), a "
        "(host, port) tuple or an object with an .address attribute."
    )


def _number(value: Any, arg: str, method: str, unit: str, *, integer: bool = True) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(
            f"{method}: {arg}={value!r} is not a number; give {unit} as a number >= 0."
        )
    if value < 0:
        raise ConfigurationError(f"{method}: {arg}={value!r} is negative; give {unit} >= 0.")
    if integer:
        if value != int(value):
            raise ConfigurationError(
                f"{method}: {arg}={value!r} must be a whole number of {unit} (Toxiproxy's "
                f"unit); e.g. latency(300) is 300 ms."
            )
        return int(value)
    return float(value)


class ProxyOwner(Injector, Protocol):
    """What a proxy handle needs from the experiment that created it (`Chaos`)."""

    client: ToxiproxyClient
    public_host: str | None


class ChaosProxy:
    """A fault proxy created by ``chaos.proxy(name, upstream=...)``.

    Point the system under test at :attr:`address` instead of the dependency. The
    proxy is removed at teardown.

    Attributes: ``name`` (as the blast radius knows it), ``server_name`` (the name on
    the server, carrying the run and worker ids), ``host``, ``port``, ``address``
    (``"host:port"``), ``upstream``, ``service`` (the ``chaos_services`` service passed
    as ``upstream=``, or ``None``: what :meth:`crash` crashes).
    """

    def __init__(self, chaos: ProxyOwner, name: str, server_name: str, created: ProxyJSON) -> None:
        self._chaos = chaos
        self.name = name
        self.server_name = server_name
        self.upstream = created["upstream"]
        #: the chaos_services Service behind the proxy when upstream= was one (crash())
        self.service: Any = None
        self._listen = created["listen"]
        host, _, port = self._listen.rpartition(":")
        self.host = host.strip("[]")
        if self.host in ("0.0.0.0", "::", "") and chaos.public_host:
            # listening on every interface of a remote server: reach it by its name
            self.host = chaos.public_host
        self.port = int(port)
        self.enabled = bool(created.get("enabled", True))
        self._toxics: dict[str, str] = {}  # toxic name -> type, of active faults
        self._notes_seen = 0  # seq of the last proxy note put on the timeline
        self._counter = 0
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """``"host:port"`` to connect to instead of the dependency."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def stats(self) -> ProxyStats:
        """Connection and byte counters of this proxy (embedded backend only)."""
        stats: ProxyStats = self._call(lambda: self._chaos.client.stats(self.server_name))
        return stats

    def collect_notes(self) -> None:
        """Put the notes the proxy's toxics made since the last call on the timeline.

        The embedded proxy notes what its toxics could not do as asked (traffic that is
        not HTTP through an HTTP toxic, a request too large to duplicate). Called after
        every heal; other backends make no notes.
        """
        if not self._chaos.client.embedded:
            return
        try:
            notes = self._chaos.client.stats(self.server_name).get("notes", [])
        except (ChaosError, OSError):
            return  # the proxy is gone or unreachable: notes never fail a heal
        for note in notes:
            if note["seq"] > self._notes_seen:
                self._notes_seen = note["seq"]
                self._chaos.timeline.record(
                    "note", note["label"], target=self.name, detail=note["data"]
                )

    # -- fault methods ----------------------------------------------------------------

    def latency(
        self,
        ms: float,
        jitter: float = 0,
        *,
        stream: StreamArg = "downstream",
        toxicity: float = 1.0,
    ) -> Fault:
        """Delay every chunk by ``ms`` ± ``jitter`` milliseconds."""
        attrs = {
            "latency": _number(ms, "ms", "latency", "milliseconds"),
            "jitter": _number(jitter, "jitter", "latency", "milliseconds"),
        }
        return self.toxic("latency", stream=stream, toxicity=toxicity, **attrs)

    def bandwidth(
        self, kb_per_s: float, *, stream: StreamArg = "downstream", toxicity: float = 1.0
    ) -> Fault:
        """Limit the link to ``kb_per_s`` KB/s (1 KB = 1000 bytes)."""
        rate = _number(kb_per_s, "kb_per_s", "bandwidth", "KB/s")
        if rate == 0:
            raise ConfigurationError(
                "bandwidth: kb_per_s=0 would stall the link forever; use timeout() for a link "
                "that passes nothing, or a rate >= 1 KB/s."
            )
        return self.toxic("bandwidth", stream=stream, toxicity=toxicity, rate=rate)

    def slow_close(
        self, ms: float, *, stream: StreamArg = "downstream", toxicity: float = 1.0
    ) -> Fault:
        """Delay the close of each connection by ``ms`` milliseconds."""
        delay = _number(ms, "ms", "slow_close", "milliseconds")
        return self.toxic("slow_close", stream=stream, toxicity=toxicity, delay=delay)

    def timeout(
        self, ms: float = 0, *, stream: StreamArg = "downstream", toxicity: float = 1.0
    ) -> Fault:
        """Drop data; close the connection after ``ms`` ms (0: hold it open forever)."""
        timeout = _number(ms, "ms", "timeout", "milliseconds")
        return self.toxic("timeout", stream=stream, toxicity=toxicity, timeout=timeout)

    def reset_peer(
        self, ms: float = 0, *, stream: StreamArg = "downstream", toxicity: float = 1.0
    ) -> Fault:
        """Reset connections (TCP RST) ``ms`` milliseconds after data arrives.

        Where the reset happens decides whether the request reached the server: with
        ``stream="downstream"`` (the default) the client's write still reaches the
        server and the client gets a reset instead of the answer (the server may have
        acted on a request the client believes failed); with ``"upstream"`` or
        ``"both"`` the write does not reach the server.
        """
        timeout = _number(ms, "ms", "reset_peer", "milliseconds")
        return self.toxic("reset_peer", stream=stream, toxicity=toxicity, timeout=timeout)

    def slicer(
        self,
        average_size: int = 1,
        size_variation: int = 0,
        delay_us: int = 0,
        *,
        stream: StreamArg = "downstream",
        toxicity: float = 1.0,
    ) -> Fault:
        """Cut data into pieces of ``average_size`` ± ``size_variation`` bytes.

        Pieces are sent ``delay_us`` microseconds apart.
        """
        size = _number(average_size, "average_size", "slicer", "bytes")
        if size == 0:
            raise ConfigurationError("slicer: average_size=0 is not allowed; use >= 1 byte.")
        attrs = {
            "average_size": size,
            "size_variation": _number(size_variation, "size_variation", "slicer", "bytes"),
            "delay": _number(delay_us, "delay_us", "slicer", "microseconds"),
        }
        return self.toxic("slicer", stream=stream, toxicity=toxicity, **attrs)

    def limit_data(
        self, nbytes: int, *, stream: StreamArg = "downstream", toxicity: float = 1.0
    ) -> Fault:
        """Close the connection after ``nbytes`` bytes."""
        size = _number(nbytes, "nbytes", "limit_data", "bytes")
        return self.toxic("limit_data", stream=stream, toxicity=toxicity, bytes=size)

    def http_error(
        self,
        status: int = 500,
        *,
        rate: float = 1.0,
        method: str | None = None,
        path_prefix: str | None = None,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        stream: StreamArg = "upstream",
        toxicity: float = 1.0,
    ) -> Fault:
        """Answer a share ``rate`` of matching HTTP requests with ``status`` (embedded only)."""
        attrs = _drop_none(
            status=status,
            rate=rate,
            method=method,
            path_prefix=path_prefix,
            body=body,
            headers=headers,
        )
        return self.toxic("http_error", stream=_one_http_stream(stream), toxicity=toxicity, **attrs)

    def http_delay(
        self,
        ms: float,
        *,
        rate: float = 1.0,
        method: str | None = None,
        path_prefix: str | None = None,
        stream: StreamArg = "upstream",
        toxicity: float = 1.0,
    ) -> Fault:
        """Delay matching HTTP requests by ``ms`` milliseconds (embedded only)."""
        delay = _number(ms, "ms", "http_delay", "milliseconds")
        attrs = _drop_none(delay=delay, rate=rate, method=method, path_prefix=path_prefix)
        return self.toxic("http_delay", stream=_one_http_stream(stream), toxicity=toxicity, **attrs)

    def http_duplicate(
        self,
        copies: int = 2,
        *,
        concurrent: bool = False,
        rate: float = 1.0,
        method: str | None = None,
        path_prefix: str | None = None,
        stream: StreamArg = "upstream",
        toxicity: float = 1.0,
    ) -> Fault:
        """Deliver each matching HTTP request ``copies`` times upstream (embedded only).

        Every copy goes on a fresh upstream connection, one after another once the
        original is answered, or with ``concurrent=True`` all at the same moment as the
        original (to provoke a race between two deliveries of one key). The client gets
        the original's answer once every copy is answered; ``stats()`` counts copies
        delivered (``http_duplicates_sent``) and lost (``http_duplicates_failed``).
        """
        count = _number(copies, "copies", "http_duplicate", "copies")
        if not isinstance(concurrent, bool):
            raise ConfigurationError(
                f"http_duplicate: concurrent={concurrent!r} is not allowed; give True (the "
                "copies race the original) or False (one after another)."
            )
        attrs = _drop_none(copies=count, rate=rate, method=method, path_prefix=path_prefix)
        if concurrent:
            attrs["concurrent"] = True
        fault = self.toxic(
            "http_duplicate", stream=_one_http_stream(stream), toxicity=toxicity, **attrs
        )
        fault.stats = self.stats
        return fault

    def toxic(
        self,
        type: str,
        *,
        stream: StreamArg = "downstream",
        toxicity: float = 1.0,
        **attributes: Any,
    ) -> Fault:
        """Add a toxic of any registered ``type`` with ``attributes`` (generic form).

        ``stream="both"`` adds one toxic per direction, healed together.
        """
        if stream not in _STREAMS:
            raise ConfigurationError(
                f"{type}: stream={stream!r} is not allowed; use 'downstream' (server to "
                "client, the default), 'upstream' (client to server) or 'both'."
            )
        if (
            isinstance(toxicity, bool)
            or not isinstance(toxicity, int | float)
            or not 0.0 <= toxicity <= 1.0
        ):
            raise ConfigurationError(
                f"{type}: toxicity={toxicity!r} is not allowed; give the share of connections "
                "affected, a number from 0.0 to 1.0."
            )
        streams = ["upstream", "downstream"] if stream == "both" else [stream]
        with self._lock:
            self._counter += 1
            names = [f"{type}_{s}_{self._counter}" for s in streams]
        client = self._chaos.client

        def apply() -> None:
            for toxic_name, s in zip(names, streams, strict=True):
                self._call(
                    lambda n=toxic_name, s=s: client.add_toxic(
                        self.server_name,
                        type,
                        name=n,
                        stream=s,
                        toxicity=float(toxicity),
                        attributes=attributes,
                    )
                )
                self._toxics[toxic_name] = type

        def undo() -> None:
            for toxic_name in names:
                self._toxics.pop(toxic_name, None)
                try:
                    client.remove_toxic(self.server_name, toxic_name)
                except ProxyAPIError as exc:
                    if exc.status != 404:  # never added, or the proxy is gone
                        raise
            self.collect_notes()

        return self._chaos.inject(
            self.name,
            type,
            apply=apply,
            undo=undo,
            attributes=dict(attributes),
            stream=stream,
            toxicity=float(toxicity),
        )

    def down(self) -> Fault:
        """Disable the proxy: connections are closed and new ones refused until healed.

        Healing re-enables it on the same port.
        """
        return self._chaos.inject(
            self.name,
            "down",
            apply=lambda: self._set_enabled(False),
            undo=lambda: self._set_enabled(True, missing_ok=True),
        )

    def crash(self, after: float = 0.0) -> Fault:
        """Crash the server behind this proxy ``after`` seconds from now, and let it
        restart at once: SIGKILL (as ``chaos.kill``), then the same service again on
        the same address and data; the fault heals itself when it answers.

        Needs the proxy to be made with ``upstream=`` a ``chaos_services`` service (the
        ``Service``, not its address), so that the proxy knows which server to crash.
        The blast radius counts the fault on the proxy's name.
        """
        from pytest_chaos.experiment._service_faults import crash

        return crash(self._chaos, self._server("crash"), after=after, target=self.name)

    # -- resource faults on the server behind this proxy (docs/resources.md) ----------
    # Each is the chaos.<fault> of the same name on ``self.service`` (the proxy must be
    # made with upstream= the Service), counted by the blast radius on the proxy's name,
    # as crash() is: YAML experiments and exploration name the proxy as the target.

    def cpu_stress(self, cores: int = 1, percent: float = 100) -> Fault:
        """``chaos.cpu_stress`` beside the server behind this proxy."""
        from pytest_chaos.experiment._resource_faults import cpu_stress

        server = self._server("cpu_stress")
        return cpu_stress(self._for_me(), server, cores=cores, percent=percent)

    def cpu_throttle(self, cpus: float, period_ms: int = 100) -> Fault:
        """``chaos.cpu_throttle`` on the server behind this proxy."""
        from pytest_chaos.experiment._resource_faults import cpu_throttle

        server = self._server("cpu_throttle")
        return cpu_throttle(self._for_me(), server, cpus=cpus, period_ms=period_ms)

    def memory_limit(self, mib: int, fill: bool = False) -> Fault:
        """``chaos.memory_limit`` on the server behind this proxy."""
        from pytest_chaos.experiment._resource_faults import memory_limit

        server = self._server("memory_limit")
        return memory_limit(self._for_me(), server, mib=mib, fill=fill)

    def memory_pressure(self, mib: int) -> Fault:
        """``chaos.memory_pressure`` beside the server behind this proxy."""
        from pytest_chaos.experiment._resource_faults import memory_pressure

        server = self._server("memory_pressure")
        return memory_pressure(self._for_me(), server, mib=mib)

    def fill_disk(self, mib: int = 16, lock_timeout: float = 5.0) -> Fault:
        """``chaos.fill_disk`` under the server behind this proxy."""
        from pytest_chaos.experiment._resource_faults import fill_disk

        server = self._server("fill_disk")
        return fill_disk(self._for_me(), server, mib=mib, lock_timeout=lock_timeout)

    def exhaust_connections(
        self, n: int | None = None, *, server: Any = None, max_clients: int | None = None
    ) -> Fault:
        """Hold real sessions to ``server`` (the service behind this proxy: by default
        the one it was made with, ``upstream=``) through the proxy, until it refuses one
        for its limit or ``n`` are open: see ``chaos.exhaust_connections``
        (docs/resources.md)."""
        from pytest_chaos.experiment._resource_faults import exhaust_connections

        if server is None:
            server = self._server("exhaust_connections")
        return exhaust_connections(self._chaos, self, n, server=server, max_clients=max_clients)

    def _server(self, fault: str) -> Any:
        """The service behind this proxy, or why there is none and the fix."""
        if self.service is None:
            raise ConfigurationError(
                f"{fault} on proxy {self.name!r}: the proxy forwards to {self.upstream!r}, "
                "an address, not a chaos_services service, so pytest-chaos does not know "
                "which server to act on. Create the proxy with "
                f"chaos.proxy({self.name!r}, upstream=<the Service>) (e.g. "
                "upstream=chaos_services.postgres(), not its .address), or fault this "
                "proxy with down() instead."
            )
        return self.service

    def _for_me(self) -> Injector:
        """The experiment, injecting on this proxy's name (for the blast radius)."""
        return _OnBehalfOf(self._chaos, self.name)

    # -- plumbing ---------------------------------------------------------------------

    def _set_enabled(self, enabled: bool, *, missing_ok: bool = False) -> None:
        try:
            # pinning listen to the bound port makes re-enabling bind the same port
            self._chaos.client.update_proxy(self.server_name, enabled=enabled, listen=self._listen)
        except ProxyAPIError as exc:
            if missing_ok and exc.status == 404:
                return
            if exc.status == 404:
                raise self._gone(exc) from exc
            raise
        self.enabled = enabled

    def _gone(self, exc: ProxyAPIError) -> InjectionError:
        return InjectionError(
            f"proxy {self.name!r} ({self.server_name}) no longer exists on "
            f"{self._chaos.client.url}: something outside pytest-chaos deleted it. Create it "
            "again with chaos.proxy(...) or stop whatever deletes it."
        )

    def _call(self, fn: Any) -> Any:
        try:
            return fn()
        except ProxyAPIError as exc:
            if exc.status == 404 and "proxy" in exc.error.lower():
                raise self._gone(exc) from exc
            raise

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        toxics = sorted(set(self._toxics.values()))
        return (
            f"<ChaosProxy {self.name!r} {self.address} -> {self.upstream} {state} "
            f"toxics=[{', '.join(toxics)}]>"
        )


def _one_http_stream(stream: StreamArg) -> StreamArg:
    # An HTTP toxic acts on whole exchanges (request and response) whichever stream it is
    # added on: "both" would add two that each roll their toxicity, so it means one.
    return "upstream" if stream == "both" else stream


def _drop_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class _OnBehalfOf:
    """An `Injector` that injects every fault on ``target`` instead of the name it is
    given, noting that name as the ``service`` attribute: a fault on the server behind
    a proxy is in the blast radius as the proxy is."""

    def __init__(self, chaos: Injector, target: str) -> None:
        self._chaos = chaos
        self._target = target

    def __getattr__(self, name: str) -> Any:
        # rng, timeline: the experiment's own
        return getattr(self._chaos, name)

    def inject(
        self,
        target: str,
        kind: str,
        *,
        apply: Any,
        undo: Any,
        attributes: dict[str, Any] | None = None,
        stream: str | None = None,
        toxicity: float | None = None,
    ) -> Fault:
        """``chaos.inject`` on the proxy's name; ``target`` stays in the attributes."""
        return self._chaos.inject(
            self._target,
            kind,
            apply=apply,
            undo=undo,
            attributes={"proxy": self._target, "service": target, **(attributes or {})},
            stream=stream,
            toxicity=toxicity,
        )
