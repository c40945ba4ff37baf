"""Fault groups: a zone or a region of proxies and services that fails as one.

``chaos.group("zone-a", [db_a, cache_a, api_a])`` names a set of this test's proxies
and ``chaos_services`` services. Its fault methods (``down``, ``latency``,
``bandwidth``, ``timeout``, ``reset_peer``, ``toxic``) fault every member at once as
ONE fault: one pass through ``Chaos.inject`` (blast radius, veto hook, undo stack,
timeline, safety timer, ``max_concurrent_faults`` counts it once), one ``Fault`` whose
heal undoes every member, newest first. Chaos Gorilla (an availability zone) and Chaos
Kong (a region) are ``zone.down()``.

The blast radius names the group (``blast_radius=["zone-a"]``: a zone is the unit a
team agrees to lose) or every one of its members.

What each fault does to each kind of member:

- ``down()``: a proxy is disabled (connections closed, new ones refused); a service is
  killed (SIGKILL, or ``docker kill``), as a zone that loses power. Healing re-enables
  the proxies on the same ports and starts the services again, waiting until they answer.
- ``latency``, ``bandwidth``, ``timeout``, ``reset_peer``, ``toxic``: the toxic on every
  proxy member; services have no network of their own here and are left alone (a group
  without a proxy is an error).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pytest_chaos.errors import BlastRadiusError, ConfigurationError, ProxyAPIError
from pytest_chaos.experiment._fault import Fault
from pytest_chaos.experiment._proxy_handle import ChaosProxy

if TYPE_CHECKING:
    from pytest_chaos.client import ToxiproxyClient
    from pytest_chaos.experiment._spec import ChaosSpec
    from pytest_chaos.services import Service

__all__ = ["FaultGroup", "GroupOwner", "group"]

_NAME = re.compile(r"^[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*$")
_STREAMS = ("upstream", "downstream", "both")
#: seconds a killed service may take to answer again when its group heals
_READY_TIMEOUT = 60.0


class GroupOwner(Protocol):
    """What a group needs from the experiment (`Chaos` provides it)."""

    client: ToxiproxyClient
    spec: ChaosSpec | None
    _proxies: dict[str, ChaosProxy]

    def _inject(
        self,
        targets: Sequence[str],
        kind: str,
        apply: Callable[[], object],
        undo: Callable[[], object],
        attributes: dict[str, Any] | None,
        stream: str | None,
        toxicity: float | None,
    ) -> Fault: ...


def _is_service(item: object) -> bool:
    from pytest_chaos.services import Service

    return isinstance(item, Service)


class FaultGroup:
    """A named zone or region: proxies and services that fail together.

    Made by ``chaos.group(name, members)``. ``name`` is its blast-radius target,
    ``proxies`` and ``services`` its members. Every fault method returns one `Fault`
    (a context manager, or healed with ``.heal()``) covering all members.
    """

    def __init__(
        self, chaos: GroupOwner, name: str, proxies: Sequence[ChaosProxy], services: Sequence[Any]
    ) -> None:
        self._chaos = chaos
        self.name = name
        self.proxies: tuple[ChaosProxy, ...] = tuple(proxies)
        self.services: tuple[Service, ...] = tuple(services)

    @property
    def members(self) -> list[str]:
        """The members' names (proxies first), as the blast radius knows them."""
        return [p.name for p in self.proxies] + [s.name for s in self.services]

    def __repr__(self) -> str:
        return f"<FaultGroup {self.name!r} members={self.members}>"

    # -- faults ------------------------------------------------------------------------

    def down(self) -> Fault:
        """The whole group goes dark: proxies disabled, services killed, as one fault."""
        # Services die first and come back last (the heal undoes in reverse): a member
        # never answers while its own links are still cut, as a zone's power does.
        steps = [self._kill_steps(service) for service in self.services]
        steps += [self._disable_steps(proxy) for proxy in self.proxies]
        return self._inject("down", steps, {})

    def latency(self, ms: int, jitter: int = 0, *, stream: str = "downstream") -> Fault:
        """Add ``ms`` (± ``jitter``) milliseconds on every proxy of the group."""
        return self.toxic("latency", stream=stream, latency=ms, jitter=jitter)

    def bandwidth(self, kb_per_s: int, *, stream: str = "downstream") -> Fault:
        """Limit every proxy of the group to ``kb_per_s`` KB/s."""
        return self.toxic("bandwidth", stream=stream, rate=kb_per_s)

    def timeout(self, ms: int = 0, *, stream: str = "downstream") -> Fault:
        """Every proxy of the group swallows data (closing after ``ms``; 0: never)."""
        return self.toxic("timeout", stream=stream, timeout=ms)

    def reset_peer(self, ms: int = 0, *, stream: str = "downstream") -> Fault:
        """Every proxy of the group resets its connections (after ``ms``)."""
        return self.toxic("reset_peer", stream=stream, timeout=ms)

    def toxic(
        self, type: str, *, stream: str = "downstream", toxicity: float = 1.0, **attributes: Any
    ) -> Fault:
        """A toxic of any registered ``type`` on every proxy of the group, as one fault."""
        if not self.proxies:
            raise ConfigurationError(
                f"group {self.name!r}.{type}(): the group has no proxy (members "
                f"{self.members}); network faults need proxies. Add the members' proxies "
                "to chaos.group(...), or use down() to kill its services."
            )
        if stream not in _STREAMS:
            raise ConfigurationError(
                f"group {self.name!r}.{type}(): stream={stream!r} is not allowed; use "
                "'downstream' (the default), 'upstream' or 'both'."
            )
        if (
            isinstance(toxicity, bool)
            or not isinstance(toxicity, int | float)
            or not 0.0 <= toxicity <= 1.0
        ):
            raise ConfigurationError(
                f"group {self.name!r}.{type}(): toxicity={toxicity!r} is not allowed; give "
                "the share of connections affected, a number from 0.0 to 1.0."
            )
        streams: list[Literal["upstream", "downstream"]] = (
            ["upstream", "downstream"] if stream == "both" else [stream]  # type: ignore[list-item]
        )
        steps = [
            self._toxic_steps(proxy, type, one, float(toxicity), attributes)
            for proxy in self.proxies
            for one in streams
        ]
        return self._inject(type, steps, dict(attributes), stream=stream, toxicity=float(toxicity))

    # -- plumbing ----------------------------------------------------------------------

    def _toxic_steps(
        self,
        proxy: ChaosProxy,
        type: str,
        stream: Literal["upstream", "downstream"],
        toxicity: float,
        attributes: dict[str, Any],
    ) -> tuple[Callable[[], object], Callable[[], object]]:
        client = self._chaos.client
        with proxy._lock:
            proxy._counter += 1
            name = f"{type}_{stream}_{self.name}_{proxy._counter}"

        def apply() -> None:
            proxy._call(
                lambda: client.add_toxic(
                    proxy.server_name,
                    type,
                    name=name,
                    stream=stream,
                    toxicity=toxicity,
                    attributes=attributes,
                )
            )
            proxy._toxics[name] = type

        def undo() -> None:
            proxy._toxics.pop(name, None)
            try:
                client.remove_toxic(proxy.server_name, name)
            except ProxyAPIError as exc:
                if exc.status != 404:  # never added, or the proxy is gone
                    raise
            proxy.collect_notes()

        return apply, undo

    @staticmethod
    def _disable_steps(
        proxy: ChaosProxy,
    ) -> tuple[Callable[[], object], Callable[[], object]]:
        def apply() -> None:
            proxy._set_enabled(False)

        def undo() -> None:
            proxy._set_enabled(True, missing_ok=True)

        return apply, undo

    def _kill_steps(self, service: Any) -> tuple[Callable[[], object], Callable[[], object]]:
        token = object()

        def apply() -> None:
            service.mark_used()
            service.add_fault(token)
            service.runtime.kill()

        def undo() -> None:
            try:
                if service.state != "removed":  # its fixture ended first: leave it
                    if service.state == "stopped":
                        service.runtime.start()
                    service.runtime.wait_ready(_READY_TIMEOUT)
            finally:
                service.remove_fault(token)

        return apply, undo

    def _inject(
        self,
        kind: str,
        steps: list[tuple[Callable[[], object], Callable[[], object]]],
        attributes: dict[str, Any],
        *,
        stream: str | None = None,
        toxicity: float | None = None,
    ) -> Fault:
        applied: list[Callable[[], object]] = []

        def apply() -> None:
            for do, undo in steps:
                applied.append(undo)  # pushed first: a half-applied step is undone too
                do()

        def undo_all() -> None:
            errors: list[Exception] = []
            while applied:
                try:
                    applied.pop()()
                except Exception as exc:  # undo the rest, report the first
                    errors.append(exc)
            if errors:
                raise errors[0]

        spec = self._chaos.spec
        # the group is the unit of the radius; without it, every member must be in it
        by_name = spec is None or spec.blast_radius.allows(self.name)
        targets = (self.name,) if by_name else tuple(self.members)
        attributes = {"group": self.name, "members": self.members, **attributes}
        try:
            return self._chaos._inject(targets, kind, apply, undo_all, attributes, stream, toxicity)
        except BlastRadiusError as exc:
            outside = [
                m
                for m in self.members
                if spec is not None and not by_name and not spec.blast_radius.allows(m)
            ]
            if not outside:
                raise
            # the member-level refusal alone suggests adding one member; name the group too
            raise BlastRadiusError(
                f"group {self.name!r}: {exc} Or put the group itself in the radius: "
                f"@pytest.mark.chaos(blast_radius=[{self.name!r}]) (members outside it: "
                f"{', '.join(map(repr, outside))})."
            ) from exc


def group(chaos: GroupOwner, name: str, members: Iterable[Any]) -> FaultGroup:
    """Name a zone or region: ``members`` are this test's proxies (``ChaosProxy``
    objects or their names) and services from ``chaos_services``. Its fault methods
    (``down``, ``latency``, ``bandwidth``, ``timeout``, ``reset_peer``, ``toxic``)
    fault all members as one fault; the blast radius names the group or every member.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"chaos.group({name!r}, ...): the name must be letters, digits, '_', '.' and "
            "inner '-' (it is a blast-radius target), e.g. chaos.group('zone-a', [...])."
        )
    if isinstance(members, str | ChaosProxy) or _is_service(members):
        raise ConfigurationError(
            f"chaos.group({name!r}, {members!r}): members must be a list, e.g. "
            f"chaos.group({name!r}, [db_a, cache_a])."
        )
    proxies: list[ChaosProxy] = []
    services: list[Any] = []
    for item in members:
        if _is_service(item):
            services.append(item)
        elif isinstance(item, ChaosProxy | str):
            proxy = chaos._proxies.get(item) if isinstance(item, str) else item
            if proxy is None:
                raise ConfigurationError(
                    f"chaos.group({name!r}): {item!r} is not a proxy of this test; pass "
                    f"ChaosProxy objects, names from {sorted(chaos._proxies)}, or services "
                    "from chaos_services."
                )
            proxies.append(proxy)
        else:
            raise ConfigurationError(
                f"chaos.group({name!r}): {item!r} is a {type(item).__name__}, not a proxy or "
                "a service; pass ChaosProxy objects (or their names) and services from "
                "chaos_services."
            )
    names = [p.name for p in proxies] + [s.name for s in services]
    if not names:
        raise ConfigurationError(
            f"chaos.group({name!r}, []) has no member; give the zone's proxies and services."
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigurationError(f"chaos.group({name!r}): {twice} given more than once.")
    return FaultGroup(chaos, name, proxies, services)
