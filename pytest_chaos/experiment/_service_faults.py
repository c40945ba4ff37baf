"""Service faults: pause, stop, kill, restart, crash and disconnect a service; kill a random one.

Functions of the experiment (an `Injector`) and a service; `Chaos` binds them as its
methods ``chaos.pause(service)`` and so on. Every fault goes through ``Chaos.inject``
(docs/internals.md), so the blast radius,
the veto hook, the undo stack, the timeline and the safety timer treat them like proxy
faults. The target name is the service's name: ``blast_radius=["redis"]`` allows
``chaos.kill(chaos_services.redis())``.

What each fault does, per provider:

=============  ======================================  =================================
fault          Docker provider                         local binaries and ``process()``
=============  ======================================  =================================
pause          ``docker pause`` (cgroup freezer)       SIGSTOP to the server and children
stop           ``docker stop`` (stop signal, KILL 10s)  SIGTERM (PostgreSQL: SIGINT), KILL
kill           ``docker kill`` (SIGKILL)               SIGKILL to the server and children
restart        ``docker stop`` then ``docker start``   stop, then the same command again
crash          ``docker kill``, then ``docker start``  SIGKILL, then the same command again
disconnect     ``docker network disconnect``           unsupported (no network): error
=============  ======================================  =================================

Healing undoes the fault and waits until the service answers again: unpause, start
(same container or command, same address and data), reconnect under the same alias.
A restart is over when its injection returns; healing it only makes sure the service
runs. A service removed before the heal (its fixture ended first) stays removed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pytest_chaos.errors import InjectionError
from pytest_chaos.experiment._fault import Fault, Injector
from pytest_chaos.services import Service

__all__ = ["crash", "disconnect", "kill", "kill_random", "pause", "restart", "stop"]

#: seconds a healed service may take to answer again before the heal is an error
HEAL_READY_TIMEOUT = 60.0


def _service(value: object, method: str) -> Service:
    if isinstance(value, Service):
        return value
    raise TypeError(
        f"chaos.{method}() takes a service from chaos_services (e.g. "
        f"chaos_services.redis()), not {type(value).__name__} {value!r}; to fault a "
        "proxied connection use the proxy's fault methods (down(), timeout(), ...)."
    )


def _service_fault(
    chaos: Injector,
    service: Service,
    kind: str,
    apply: Callable[[], object],
    undo: Callable[[], object],
    **extra: object,
) -> Fault:
    token = object()
    service.mark_used()

    def applied() -> None:
        apply()
        service.add_fault(token)

    def undone() -> None:
        try:
            undo()
        finally:
            service.remove_fault(token)

    attributes: dict[str, Any] = {
        "service": service.name,
        "provider": service.provider,
        "address": service.address,
        **extra,
    }
    return chaos.inject(service.name, kind, apply=applied, undo=undone, attributes=attributes)


def pause(chaos: Injector, service: Service) -> Fault:
    """Freeze every process of ``service``: connections stay open, nothing answers.

    Clients see timeouts (not refusals). Healed by unpausing.
    """
    svc = _service(service, "pause")
    runtime = svc.runtime
    return _service_fault(chaos, svc, "pause", runtime.pause, runtime.unpause)


def stop(chaos: Injector, service: Service) -> Fault:
    """Stop ``service`` gracefully (its stop signal, SIGKILL after 10 s).

    Clients see refused connections. Healed by starting it again on the same
    address and waiting until it answers.
    """
    svc = _service(service, "stop")
    return _service_fault(chaos, svc, "stop", svc.runtime.stop, _restarter(svc))


def kill(chaos: Injector, service: Service) -> Fault:
    """SIGKILL every process of ``service`` (a crash: no shutdown, no flush).

    Clients see reset or refused connections. Healed by restarting it on the same
    address and waiting until it answers.
    """
    svc = _service(service, "kill")
    return _service_fault(chaos, svc, "kill", svc.runtime.kill, _restarter(svc))


def restart(chaos: Injector, service: Service) -> Fault:
    """Stop ``service`` gracefully and start it again on the same address (a deploy,
    a crash-looping pod's one turn); returns once it answers again.

    Clients see their connections closed and refused for the gap. A ``process()``
    service gets its port back through the ``{port}`` placeholder; one that comes
    back elsewhere is stopped and the injection fails with the fix. Healing (at
    teardown at the latest) starts it if it is not running.
    """
    svc = _service(service, "restart")
    runtime = svc.runtime

    def apply() -> None:
        runtime.stop()  # continues a paused service first, on every provider
        runtime.start()
        runtime.wait_ready(HEAL_READY_TIMEOUT)

    return _service_fault(chaos, svc, "restart", apply, _restarter(svc))


def crash(
    chaos: Injector, service: Service, *, after: float = 0.0, target: str | None = None
) -> Fault:
    """Crash ``service`` ``after`` seconds from now and let it come back, as a supervisor
    restarts a crashed server: SIGKILL every process (no shutdown, no flush, as `kill`),
    then start it again at once on the same address and data.

    The fault is injected now (``target``: the name the blast radius checks, default the
    service's; a proxy's ``crash`` passes the proxy's name); the kill happens in the
    background while the test runs, and is on the timeline as a ``crash`` note. The fault
    heals itself (``by="restart"``) once the service answers again. Healing it earlier
    cancels a crash still to come, or waits for the restart under way, and makes sure the
    service runs. Writes acknowledged but not yet durable when it died are lost: that is
    what a crash tests.
    """
    svc = _service(service, "crash")
    if isinstance(after, bool) or not isinstance(after, int | float) or not after >= 0:
        raise ValueError(f"crash(after={after!r}): give the seconds until the crash, >= 0.")
    runtime = svc.runtime
    name = target or svc.name
    token = object()
    cancelled = threading.Event()
    injected = threading.Event()  # the Fault exists: the thread may heal it
    fault: list[Fault] = []

    crashing = threading.Lock()  # held from the kill until the service answers again

    def crash_then_restart() -> None:
        if cancelled.wait(after):
            return
        with crashing:
            if cancelled.is_set():
                return
            try:
                runtime.kill()
                chaos.timeline.record("note", "crash", target=name, service=svc.name)
                runtime.start()
                runtime.wait_ready(HEAL_READY_TIMEOUT)
            except Exception as exc:
                chaos.timeline.record(
                    "note",
                    "crash_restart_failed",
                    target=name,
                    error=f"{type(exc).__name__}: {exc}",
                )
                return  # the heal (at teardown at the latest) starts it, or says why not
        # outside the lock: a heal under way holds the fault's lock and waits for ours
        if injected.wait(HEAL_READY_TIMEOUT) and fault:
            # an undo error is on the timeline with the heal; teardown tries again
            with contextlib.suppress(Exception):
                fault[0].heal(by="restart")

    thread = threading.Thread(target=crash_then_restart, name=f"crash-{name}", daemon=True)

    def apply() -> None:
        svc.add_fault(token)
        thread.start()

    def undo() -> None:
        cancelled.set()
        waited = crashing.acquire(timeout=2 * HEAL_READY_TIMEOUT)  # a restart under way
        try:
            if runtime.state() not in ("running", "removed"):
                _restarter(svc)()
        finally:
            if waited:
                crashing.release()
            svc.remove_fault(token)

    attributes: dict[str, Any] = {
        "service": svc.name,
        "provider": svc.provider,
        "address": svc.address,
        "after": after,
    }
    svc.mark_used()
    fault.append(chaos.inject(name, "crash", apply=apply, undo=undo, attributes=attributes))
    injected.set()
    return fault[0]


def disconnect(chaos: Injector, service: Service, network: str | None = None) -> Fault:
    """Cut ``service`` off a Docker network: a real partition (Docker provider only).

    ``network`` defaults to the run's network the service joined, which also
    carries its published port, so the test process loses it too; a network of
    your own isolates it from the containers on that network only. Healed by
    reconnecting under the same alias.
    """
    svc = _service(service, "disconnect")
    if svc.provider != "docker":
        raise InjectionError(
            f"chaos.disconnect({svc.name!r}) needs the Docker provider; {svc.name!r} "
            f"runs as a local process ({svc.provider}), which has no network to leave. "
            "Run with Docker (--chaos-services=docker) or partition through a proxy: "
            "chaos.proxy(...).down()."
        )
    runtime = svc.runtime
    state: dict[str, str] = {}

    def apply() -> None:
        state["network"] = runtime.disconnect(network)

    def undo() -> None:
        if "network" in state:
            runtime.reconnect(state["network"])
            runtime.wait_ready(HEAL_READY_TIMEOUT)

    # Name the network on the timeline even when the default one is meant.
    shown = network or getattr(runtime, "network", None)
    return _service_fault(chaos, svc, "disconnect", apply, undo, network=shown)


def kill_random(chaos: Injector, services: Sequence[Service], k: int = 1) -> list[Fault]:
    """Kill ``k`` of ``services`` chosen by the test's seeded RNG (Chaos Monkey).

    The choice is reproducible: the same seed and test pick the same services.
    Each is healed (restarted) at teardown or with ``heal()``.
    """
    chosen_from = [_service(s, "kill_random") for s in services]
    names = [s.name for s in chosen_from]
    if len(set(names)) != len(names):
        raise ValueError(f"kill_random() got the same service twice: {names}.")
    if not isinstance(k, int) or not 1 <= k <= len(chosen_from):
        raise ValueError(
            f"kill_random(k={k!r}) must kill between 1 and {len(chosen_from)} services "
            f"(the number given: {names})."
        )
    # Sorted first so that the argument order does not change the seeded choice.
    ordered = sorted(chosen_from, key=lambda s: s.name)
    victims = chaos.rng.sample(ordered, k)
    return [kill(chaos, victim) for victim in victims]


def _restarter(service: Service) -> Callable[[], None]:
    runtime = service.runtime

    def restart() -> None:
        if runtime.state() == "removed":
            # Its owner removed it before the chaos teardown healed: nothing to bring
            # back, and starting it would leave a process nobody stops.
            return
        if runtime.state() == "paused":
            runtime.unpause()
        runtime.start()
        runtime.wait_ready(HEAL_READY_TIMEOUT)

    return restart
