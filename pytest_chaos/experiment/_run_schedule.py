"""``chaos.run_schedule(schedule, scenario)``: a scenario under a timed fault schedule.

Built on ``chaos.schedule``: each fault of the schedule is a :class:`Step` (injected
through ``Chaos.inject`` at its start, healed after its duration, both scaled by
``--chaos-time-scale``), while the scenario is called over and over until the last
fault heals. It is made for Hypothesis (``pytest_chaos.strategies.fault_schedules``):
one test runs many schedules with the same fixtures, so every call starts and ends
clean: every active fault healed, the schedule's proxies reset (enabled, no toxic left),
and a failure carries the schedule as a ``chaos.schedule`` snippet and YAML steps.

The schedule is any object with ``faults`` (items with ``start``, ``duration``,
``target``, ``label`` and ``inject(proxy)``), ``targets``, ``end`` and ``explain()``:
the :class:`~pytest_chaos.strategies.FaultSchedule` of the strategies package.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pytest_chaos.errors import ConfigurationError, ProxyAPIError
from pytest_chaos.experiment._schedule import ScheduleRun, Step

if TYPE_CHECKING:
    from pytest_chaos.client import ToxiproxyClient
    from pytest_chaos.experiment._fault import Fault
    from pytest_chaos.experiment._proxy_handle import ChaosProxy
    from pytest_chaos.timeline import Timeline

__all__ = ["Runner", "TimedFault", "TimedSchedule", "run_schedule"]

#: the label of the timeline notes ``run_schedule`` records
RUN_NOTE = "run_schedule"


class Runner(Protocol):
    """What ``run_schedule`` needs from the experiment (`Chaos` provides it)."""

    client: ToxiproxyClient
    timeline: Timeline
    time_scale: float
    notes: list[str]

    @property
    def proxies(self) -> dict[str, ChaosProxy]:
        """The test's proxies by name."""
        ...

    def heal_all(self, by: str = "test") -> Sequence[Fault]:
        """Heal every active fault."""
        ...

    def schedule(self, steps: Sequence[Step], *, time_scale: float | None = None) -> ScheduleRun:
        """Run steps in the background."""
        ...


class TimedFault(Protocol):
    """One fault of a schedule, as ``run_schedule`` reads it."""

    @property
    def start(self) -> float: ...
    @property
    def duration(self) -> float: ...
    @property
    def target(self) -> str: ...
    @property
    def label(self) -> str: ...
    def inject(self, proxy: Any) -> Fault: ...


class TimedSchedule(Protocol):
    """A schedule, as ``run_schedule`` reads it (``FaultSchedule`` is one)."""

    @property
    def faults(self) -> Sequence[TimedFault]: ...
    @property
    def targets(self) -> Sequence[str]: ...
    @property
    def end(self) -> float: ...
    def describe(self) -> str: ...
    def explain(self) -> str: ...


def _reset(chaos: Runner, proxies: Sequence[ChaosProxy], when: str) -> list[str]:
    """Heal every active fault; leave each proxy enabled with no toxic. What was cleaned."""
    cleaned = [f"{f.kind} {f.id} on {f.target!r}" for f in chaos.heal_all(by="schedule")]
    for proxy in proxies:
        try:
            state = chaos.client.get_proxy(proxy.server_name)
            toxics = chaos.client.toxics(proxy.server_name)
        except ProxyAPIError as exc:
            chaos.notes.append(f"run_schedule could not check proxy {proxy.name!r}: {exc}")
            continue
        if not state.get("enabled", True):
            proxy._set_enabled(True, missing_ok=True)
            cleaned.append(f"proxy {proxy.name!r} was disabled")
        for toxic in toxics:
            chaos.client.remove_toxic(proxy.server_name, toxic["name"])
            cleaned.append(f"toxic {toxic['name']!r} on {proxy.name!r}")
    if cleaned and when == "after":
        # healed by the schedule's own end normally: anything here outlived its step
        chaos.timeline.record("note", "run_schedule_reset", cleaned=cleaned)
    return cleaned


def run_schedule(
    chaos: Runner,
    schedule: TimedSchedule,
    scenario: Callable[[], object],
    *,
    time_scale: float | None = None,
    repeat: bool = True,
    interval: float = 0.0,
) -> int:
    """Run ``scenario()`` while ``schedule``'s faults are injected and healed on time.

    Each fault is injected at its ``start`` and healed ``duration`` seconds later, both
    multiplied by ``time_scale`` (default ``--chaos-time-scale``), through
    ``chaos.schedule``. The scenario is called again and again (``interval`` seconds
    apart) until the last fault heals, at least once; ``repeat=False`` calls it once
    and stops the schedule when it returns. The schedule's targets are proxy names of
    this test (``chaos.proxy(name, ...)``).

    Before and after, every active fault of the test is healed and the schedule's
    proxies are reset (enabled, no toxic), so each Hypothesis example starts clean.
    The first exception of the scenario (or of an injection) is re-raised with the
    schedule added as a note: a ``chaos.schedule`` snippet and YAML ``method`` steps.
    Returns how many times the scenario ran.
    """
    scale = chaos.time_scale if time_scale is None else time_scale
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
        raise ConfigurationError(
            f"chaos.run_schedule: time_scale={scale!r} must be a number > 0 (0.1 runs a "
            "5 s schedule in 0.5 s)."
        )
    if not callable(scenario):
        raise ConfigurationError(
            f"chaos.run_schedule: scenario={scenario!r} is not callable; pass a function "
            "that drives the system and asserts, e.g. lambda: shop.app.get('/products/mug')."
        )
    faults = getattr(schedule, "faults", None)
    if faults is None or not callable(getattr(schedule, "explain", None)):
        raise ConfigurationError(
            f"chaos.run_schedule: {schedule!r} is not a fault schedule; draw one from "
            "pytest_chaos.strategies.fault_schedules(...) or build a FaultSchedule."
        )
    proxies = chaos.proxies
    wanted = list(dict.fromkeys([*schedule.targets, *(f.target for f in faults)]))
    missing = [name for name in wanted if name not in proxies]
    if missing:
        raise ConfigurationError(
            f"chaos.run_schedule: the schedule faults {missing}, which are not proxies of "
            f"this test (its proxies: {sorted(proxies)}). Create them with "
            "chaos.proxy(name, upstream=...) first; a schedule's targets are proxy names."
        )
    targets = [proxies[name] for name in wanted]
    _reset(chaos, targets, "before")

    def injector(fault: TimedFault, proxy: ChaosProxy) -> Callable[[], Fault]:
        return lambda: fault.inject(proxy)

    steps = [
        Step(
            at=float(f.start),
            for_=float(f.duration),
            name=f.label,
            fault=injector(f, proxies[f.target]),
        )
        for f in faults
    ]
    chaos.timeline.record(
        "note", RUN_NOTE, schedule=schedule.describe(), faults=len(steps), time_scale=scale
    )
    run: ScheduleRun | None = chaos.schedule(steps, time_scale=scale) if steps else None
    deadline = time.monotonic() + float(schedule.end) * float(scale)
    calls = 0
    failure: BaseException | None = None
    try:
        while True:
            scenario()
            calls += 1
            if not repeat or time.monotonic() >= deadline:
                break
            if run is not None and run.errors():
                break
            if interval > 0:
                time.sleep(interval)
    except BaseException as exc:
        failure = exc
    finally:
        if run is not None:
            run.cancel()
            run.join()
            run._waited = True  # its errors are raised here, not noted at teardown
        _reset(chaos, targets, "after")
    errors = run.errors() if run is not None else []
    if failure is None and errors:
        failure = errors[0]
    if failure is None:
        return calls
    if isinstance(failure, Exception):
        chaos.timeline.record(
            "note",
            "run_schedule_failed",
            schedule=schedule.describe(),
            error=f"{type(failure).__name__}: {failure}"[:500],
            calls=calls,
        )
        failure.add_note(schedule.explain())
    raise failure
