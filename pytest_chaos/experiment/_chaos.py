"""``Chaos``: the per-test experiment behind the ``chaos`` fixture.

It owns the test's proxies, faults, timeline and undo stack. Every fault, whoever
implements it (proxies here, containers in :mod:`pytest_chaos.services`, message faults
in :mod:`pytest_chaos.experiment._messages`), goes through :meth:`Chaos.inject`, which checks the
blast radius, asks the veto hook, pushes the undo action before applying, records the
timeline event and arms the safety timer.
"""

from __future__ import annotations

import contextlib
import functools
import random
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, overload

from pytest_chaos.checks import (
    History,
    circuit_breaker,
    compare,
    guard,
    idempotent,
    observe,
    recovers,
    retries,
    steady_state,
    watch_breaker,
)
from pytest_chaos.errors import (
    ConfigurationError,
    HypothesisViolated,
    InjectionError,
    InjectionVetoed,
    ProxyAPIError,
    RollbackError,
)
from pytest_chaos.experiment._fault import Fault
from pytest_chaos.experiment._groups import group
from pytest_chaos.experiment._messages import corrupt, duplicate, reorder
from pytest_chaos.experiment._names import server_name
from pytest_chaos.experiment._proxy_handle import ChaosProxy, parse_address
from pytest_chaos.experiment._radius import check_injection
from pytest_chaos.experiment._resource_faults import (
    cpu_stress,
    cpu_throttle,
    exhaust_connections,
    fill_disk,
    memory_limit,
    memory_pressure,
)
from pytest_chaos.experiment._rollback import UndoStack
from pytest_chaos.experiment._run_schedule import run_schedule
from pytest_chaos.experiment._schedule import schedule
from pytest_chaos.experiment._service_faults import (
    disconnect,
    kill,
    kill_random,
    pause,
    restart,
    stop,
)
from pytest_chaos.timeline import Timeline

if TYPE_CHECKING:
    from pytest_chaos.checks import CheckResult
    from pytest_chaos.client import ToxiproxyClient
    from pytest_chaos.experiment._spec import ChaosSpec

__all__ = ["Chaos", "ChaosObserver", "ChaosProxy", "Fault"]


class ChaosObserver(Protocol):
    """Told of every change on the server, before it is made (the reaper's link).

    Never raises: a failing observer must not fail the test.
    """

    def proxy_created(self, server_name: str) -> None: ...
    def proxy_deleted(self, server_name: str) -> None: ...
    def fault_injected(self, test: str, fault: Fault, proxies: Sequence[str]) -> None: ...
    def fault_healed(self, test: str, fault: Fault) -> None: ...


#: seconds a reconnected container gets to answer again when a partition heals
_SERVICE_READY_TIMEOUT = 60.0


def _is_service(item: object) -> bool:
    from pytest_chaos.services import Service

    return isinstance(item, Service)


def _dockerised(service: Any) -> Any:
    if service.provider != "docker":
        raise InjectionError(
            f"chaos.partition: service {service.name!r} runs as a local process "
            f"({service.provider}), which has no network to be cut from. Run services on "
            "Docker (--chaos-services=docker), or put a proxy in front of it and partition "
            "the proxy."
        )
    return service


def _discard(_: object) -> None:
    return None


_PROXY_NAME = re.compile(r"^[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*$")

P = ParamSpec("P")
R = TypeVar("R")


class _Check(Generic[P, R]):
    """A check of `pytest_chaos.checks` as a method of `Chaos`: the same function, with
    its signature and docstring, called with the experiment as ``context=``."""

    def __init__(self, check: Callable[P, R]) -> None:
        self._check = check
        self.__doc__ = check.__doc__

    @overload
    def __get__(self, chaos: None, owner: type[Chaos]) -> Callable[P, R]: ...

    @overload
    def __get__(self, chaos: Chaos, owner: type[Chaos]) -> Callable[P, R]: ...

    def __get__(self, chaos: Chaos | None, owner: type[Chaos]) -> Callable[P, R]:
        check = self._check
        if chaos is None:
            return check

        @functools.wraps(check)
        def bound(*args: P.args, **kwargs: P.kwargs) -> R:
            kwargs.setdefault("context", chaos)
            return check(*args, **kwargs)

        return bound


class Chaos:
    """The chaos experiment of one test (the ``chaos`` fixture).

    Create proxies with :meth:`proxy`, inject faults through their methods or
    :meth:`partition`, assert hypotheses with the checks. ``timeline`` records
    everything; ``seed`` and ``rng`` make every random choice replayable.

    Its parts are functions it binds, not base classes: the checks of
    `pytest_chaos.checks` (each called with this experiment as ``context``), the service
    faults (``pause``, ``stop``, ``kill``, ``restart``, ``disconnect``, ``kill_random``)
    and the message faults (``duplicate``, ``reorder``, ``corrupt``). Every fault goes
    through :meth:`inject`.
    """

    # -- checks: one signature each, the function's ------------------------------------
    steady_state = _Check(steady_state)
    observe = _Check(observe)
    guard = _Check(guard)
    circuit_breaker = _Check(circuit_breaker)
    retries = _Check(retries)
    idempotent = _Check(idempotent)
    recovers = _Check(recovers)
    compare = _Check(compare)
    history = _Check(History)
    watch_breaker = _Check(watch_breaker)

    # -- service faults (chaos.kill(chaos_services.redis()), ...) ----------------------
    pause = pause
    stop = stop
    kill = kill
    restart = restart
    disconnect = disconnect
    kill_random = kill_random

    # -- resource faults (chaos.cpu_stress(service, cores=2, percent=80), ...) ---------
    cpu_stress = cpu_stress
    cpu_throttle = cpu_throttle
    memory_limit = memory_limit
    memory_pressure = memory_pressure
    fill_disk = fill_disk
    exhaust_connections = exhaust_connections

    # -- zones and regions: chaos.group("zone-a", [db_a, api_a]).down() is one fault ---
    group = group

    # -- message faults ----------------------------------------------------------------
    duplicate = duplicate
    reorder = reorder
    corrupt = corrupt

    # -- game days: chaos.schedule([Step(at=0, fault=lambda: db.latency(300), for_=5)]) --
    schedule = schedule
    # -- a scenario under a fault schedule (Hypothesis: pytest_chaos.strategies) -------
    run_schedule = run_schedule
    #: multiplies every schedule's step times (--chaos-time-scale; the fixture sets it)
    time_scale: float = 1.0
    #: the cell of a ``chaos_explore`` test (an ``Explored``; ``None`` in other tests)
    explored: Any = None

    def __init__(
        self,
        *,
        client: ToxiproxyClient,
        spec: ChaosSpec | None,
        nodeid: str,
        seed: int,
        run_id: str = "local",
        worker: str = "master",
        hook: Any = None,
        backend: str = "embedded",
        timeline: Timeline | None = None,
        listen_host: str = "127.0.0.1",
        public_host: str | None = None,
        observer: ChaosObserver | None = None,
    ) -> None:
        self.client = client
        self.spec = spec
        self.nodeid = nodeid
        self.seed = seed
        self.rng = random.Random(f"{seed}:{nodeid}")
        self.run_id = run_id
        self.worker = worker
        self.backend = backend
        #: where new proxies listen on the server host, and the host name clients use to
        #: reach them when that is not the listen address (a remote staging server)
        self.listen_host = listen_host
        self.public_host = public_host
        self.timeline = timeline if timeline is not None else Timeline()
        self.aborted: dict[str, str] | None = None
        #: what teardown had to say beyond a clean rollback (shown in the report)
        self.notes: list[str] = []
        self.leftovers: list[str] = []
        self._hook = hook
        #: told of every proxy and fault on the server (the reaper of external servers)
        self.observer = observer
        self._undo = UndoStack(nodeid)
        self._faults: list[Fault] = []
        self._proxies: dict[str, ChaosProxy] = {}
        self._lock = threading.RLock()
        self._closed = False

    # -- the one injection mechanism --------------------------------------------------

    def inject(
        self,
        target: str,
        kind: str,
        *,
        apply: Callable[[], object],
        undo: Callable[[], object],
        attributes: dict[str, Any] | None = None,
        stream: str | None = None,
        toxicity: float | None = None,
    ) -> Fault:
        """Inject a fault into ``target``: the mechanism behind every fault method.

        Checks the marker, blast radius and ``max_concurrent_faults``, asks the
        ``pytest_chaos_before_inject`` hook, pushes ``undo`` on the undo stack, calls
        ``apply``, records ``inject`` and arms the safety timer. ``undo`` must tolerate
        a partly applied fault. Returns the :class:`Fault`.
        """
        return self._inject((target,), kind, apply, undo, attributes, stream, toxicity)

    def _inject(
        self,
        targets: Sequence[str],
        kind: str,
        apply: Callable[[], object],
        undo: Callable[[], object],
        attributes: dict[str, Any] | None,
        stream: str | None,
        toxicity: float | None,
    ) -> Fault:
        attributes = dict(attributes or {})
        target = ",".join(targets)
        with self._lock:
            if self._closed:
                raise InjectionError(
                    f"cannot inject {kind!r} into {target!r}: the experiment of "
                    f"{self.nodeid} has ended. Inject faults inside the test."
                )
            check_injection(
                self.spec,
                nodeid=self.nodeid,
                targets=targets,
                kind=kind,
                active=[f"{f.kind} on {f.target!r}" for f in self.active_faults],
            )
            if self._hook is not None:
                reason = self._hook.pytest_chaos_before_inject(
                    chaos=self, target=target, kind=kind, attributes=dict(attributes)
                )
                if reason:
                    raise InjectionVetoed(
                        f"injection of {kind!r} into {target!r} was vetoed by a "
                        f"pytest_chaos_before_inject hook: {reason}. Change the hook or the "
                        "test."
                    )
            fault_id = f"f{len(self._faults) + 1}"
            entry = self._undo.push(f"{kind} {fault_id} on {target}", lambda: _discard(undo()))
            fault = Fault(
                id=fault_id,
                kind=kind,
                target=target,
                attributes=attributes,
                stream=stream,
                toxicity=toxicity,
                entry=entry,
                timeline=self.timeline,
                after_heal=self._after_heal,
            )
            if self.observer is not None:
                on_server = [self._proxies[t].server_name for t in targets if t in self._proxies]
                self.observer.fault_injected(self.nodeid, fault, on_server)
            try:
                apply()
            except BaseException as exc:
                # the inverse was pushed first, so a half-applied fault is undone now
                try:
                    entry.run()
                except Exception as undo_exc:
                    exc.add_note(f"undoing the failed injection also failed: {undo_exc}")
                if self.observer is not None:
                    self.observer.fault_healed(self.nodeid, fault)
                if isinstance(exc, InjectionError | ConfigurationError) or not isinstance(
                    exc, Exception
                ):
                    raise
                raise InjectionError(f"could not inject {kind!r} into {target!r}: {exc}") from exc
            fault.started = self.timeline.record(
                "inject",
                kind,
                target=target,
                fault_id=fault_id,
                attributes=attributes,
                stream=stream,
                toxicity=toxicity,
            ).t
            self._faults.append(fault)
            limit = self.spec.blast_radius.max_fault_seconds if self.spec else None
            if limit is not None:
                fault.arm(float(limit))
        if self._hook is not None:
            self._hook.pytest_chaos_after_inject(chaos=self, fault=fault)
        return fault

    def _after_heal(self, fault: Fault, by: str) -> None:
        if self.observer is not None:
            self.observer.fault_healed(self.nodeid, fault)
        if self._hook is not None:
            self._hook.pytest_chaos_after_heal(chaos=self, fault=fault, by=by)

    @property
    def active_faults(self) -> list[Fault]:
        """Faults not healed yet, oldest first."""
        with self._lock:
            return [f for f in self._faults if f.active]

    @property
    def faults(self) -> list[Fault]:
        """Every fault of this test, healed or not, oldest first."""
        with self._lock:
            return list(self._faults)

    def heal_all(self, by: str = "test") -> list[Fault]:
        """Heal every active fault, newest first; return the faults this call healed."""
        healed = []
        errors: list[BaseException] = []
        for fault in reversed(self.active_faults):
            try:
                if fault.heal(by=by):
                    healed.append(fault)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        return healed

    def abort(self, reason: str, *, source: str = "guard") -> list[Fault]:
        """Abort the experiment: heal every fault, record ``abort``, mark the test aborted."""
        healed = self.heal_all(by="guard")
        self.aborted = {"reason": reason}
        self.timeline.record("abort", source, reason=reason, healed=[f.id for f in healed])
        if self._hook is not None:
            self._hook.pytest_chaos_abort(chaos=self, reason=reason, healed=healed)
        return healed

    def record_check(self, result: CheckResult, exc: BaseException | None = None) -> None:
        """Record a check's verdict, tell the hooks, raise ``exc`` if it failed.

        Every ``chaos.<check>`` ends here (its ``context``). ``exc`` is the check's own
        ``HypothesisViolated`` subclass; without it a plain ``HypothesisViolated`` is raised.
        """
        self.timeline.record("check", result.name, target=result.target, **result.event_data())
        if self._hook is not None:
            self._hook.pytest_chaos_after_check(chaos=self, result=result)
        if result.passed:
            return
        if exc is not None:
            raise exc
        # the check's own subclass when the result knows it (CheckResult.exception)
        make = getattr(result, "exception", None)
        if callable(make):
            raise make()
        raise HypothesisViolated(result.message, measured=result.measured, allowed=result.allowed)

    # -- proxies ----------------------------------------------------------------------

    def proxy(
        self, name: str, *, upstream: str | tuple[str, int] | Any, listen: str | None = None
    ) -> ChaosProxy:
        """Create a fault proxy ``name`` in front of ``upstream`` (``"host:port"``).

        ``upstream`` may also be a ``(host, port)`` tuple or any object with an
        ``address`` attribute. The proxy listens on a free port (``.address``; pass
        ``listen="127.0.0.1:26379"`` to choose) and is removed at teardown. ``name``
        is what the blast radius and the reports call it.
        """
        if not isinstance(name, str) or not _PROXY_NAME.match(name):
            raise ConfigurationError(
                f"chaos.proxy name {name!r} is not allowed; use letters, digits, '_', '.' "
                "and inner '-' (e.g. 'redis', 'payments-api')."
            )
        address = parse_address(upstream, what=f"chaos.proxy({name!r}, upstream=...)")
        with self._lock:
            if name in self._proxies:
                raise ConfigurationError(
                    f"chaos.proxy({name!r}) was already created in this test; reuse the "
                    "ChaosProxy the first call returned, or pick another name."
                )
            on_server = server_name(self.run_id, self.worker, name)
            # the inverse first: a proxy whose creation half-failed is removed as well
            self._undo.push(f"proxy {name}", lambda: self._delete_proxy(name, on_server))
            if self.observer is not None:
                self.observer.proxy_created(on_server)
            created = self.client.create_proxy(
                on_server, upstream=address, listen=listen or f"{self.listen_host}:0"
            )
            proxy = ChaosProxy(self, name, on_server, created)
            if _is_service(upstream):
                proxy.service = upstream  # the server behind it, for proxy.crash()
            self._proxies[name] = proxy
        if self._hook is not None:
            self._hook.pytest_chaos_after_proxy(chaos=self, proxy=proxy)
        return proxy

    def _delete_proxy(self, name: str, on_server: str) -> None:
        try:
            self.client.delete_proxy(on_server)
        except ProxyAPIError as exc:
            if exc.status != 404:
                raise
            if self.observer is not None:
                self.observer.proxy_deleted(on_server)
            message = (
                f"proxy {name!r} ({on_server}) was already gone from {self.client.url} at "
                "teardown: something outside pytest-chaos deleted it; nothing left to undo."
            )
            self.notes.append(message)
            self.timeline.record("note", "proxy_gone", target=name, message=message)
        else:
            if self.observer is not None:
                self.observer.proxy_deleted(on_server)

    @property
    def proxies(self) -> dict[str, ChaosProxy]:
        """The proxies this test created, by name."""
        with self._lock:
            return dict(self._proxies)

    def partition(self, group_a: Iterable[Any], group_b: Iterable[Any] | None = None) -> Fault:
        """Cut the given proxies and containers off, as one fault.

        ``group_a`` and ``group_b`` hold :class:`ChaosProxy` objects, proxy names, or
        Docker services from ``chaos_services``; every member must be in the blast
        radius. Proxies are disabled; a container is disconnected from its Docker
        network (a real partition: nothing reaches it, it reaches nothing on it).
        Healing reconnects the containers, waits until they answer, and re-enables the
        proxies on the same ports.
        """
        proxies: list[ChaosProxy] = []
        services: list[Any] = []
        for item in [*group_a, *(group_b or [])]:
            if _is_service(item):
                services.append(_dockerised(item))
            else:
                proxies.append(self._resolve_proxy(item))
        if not proxies and not services:
            raise ConfigurationError(
                "chaos.partition() got nothing to cut; pass ChaosProxy objects (or their "
                "names) and/or Docker services, e.g. chaos.partition([db], [cache])."
            )
        names = [p.name for p in proxies] + [svc.name for svc in services]
        networks: dict[str, str] = {}

        def apply() -> None:
            for p in proxies:
                p._set_enabled(False)
            for svc in services:
                networks[svc.name] = svc.runtime.disconnect(None)

        def undo() -> None:
            for svc in services:
                if svc.name in networks:
                    svc.runtime.reconnect(networks.pop(svc.name))
                    svc.runtime.wait_ready(_SERVICE_READY_TIMEOUT)
            for p in proxies:
                p._set_enabled(True, missing_ok=True)

        attributes: dict[str, Any] = {"proxies": [p.name for p in proxies]}
        if services:
            attributes["services"] = [svc.name for svc in services]
        return self._inject(names, "partition", apply, undo, attributes, None, None)

    def _resolve_proxy(self, item: Any) -> ChaosProxy:
        if isinstance(item, ChaosProxy):
            return item
        if isinstance(item, str) and item in self._proxies:
            return self._proxies[item]
        raise ConfigurationError(
            f"chaos.partition: {item!r} is not a proxy of this test nor a service; pass "
            f"ChaosProxy objects, names from {sorted(self._proxies)}, or services from "
            "chaos_services."
        )

    # -- teardown ---------------------------------------------------------------------

    @property
    def undo_stack(self) -> UndoStack:
        """The test's undo stack (drained at teardown, or by the end-of-session rollback)."""
        return self._undo

    def teardown(self) -> None:
        """Heal everything, remove the proxies, then verify the server is clean.

        Raises :class:`RollbackError` naming what was left on the server.
        """
        with self._lock:
            self._closed = True
        errors: list[str] = []
        for fault in reversed(self.active_faults):
            try:
                fault.heal(by="teardown")
            except Exception as heal_exc:
                errors.append(f"healing {fault!r} failed: {heal_exc}")
        for label, undo_exc in self._undo.drain():
            errors.append(f"undoing {label} failed: {undo_exc}")
        for fault in self._faults:
            fault.disarm()
        self.leftovers = self._find_leftovers()
        if self.leftovers or errors:
            for name in self.leftovers:  # clean up so later tests start clean
                with contextlib.suppress(ProxyAPIError):
                    self.client.delete_proxy(name)
            lines = [*errors, *(f"still on the server: {n}" for n in self.leftovers)]
            raise RollbackError(
                f"rollback of {self.nodeid} was incomplete on {self.client.url}:\n  "
                + "\n  ".join(lines)
                + "\nThis is a pytest-chaos bug or a server problem: the next tests may see "
                "these faults. Report it with the lines above."
            )

    def _find_leftovers(self) -> list[str]:
        mine = {p.server_name for p in self._proxies.values()}
        try:
            on_server = self.client.proxies()
        except ProxyAPIError as exc:
            self.notes.append(f"could not verify the rollback on {self.client.url}: {exc}")
            return []
        return sorted(name for name in on_server if name in mine)

    def __repr__(self) -> str:
        radius = self.spec.blast_radius.describe() if self.spec else "no marker"
        return (
            f"<Chaos {self.nodeid!r} seed={self.seed} radius={radius} "
            f"proxies={sorted(self._proxies)} active_faults={len(self.active_faults)}"
            f"{' aborted' if self.aborted else ''}>"
        )
