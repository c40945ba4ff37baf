"""``chaos.schedule(steps)``: a game day, a timeline of faults run in the background.

A schedule is a list of :class:`Step`: at ``at`` seconds from the start, inject a
fault (any callable returning a :class:`Fault`: ``lambda: db.latency(300)``,
``lambda: chaos.kill(redis)``), heal it ``for_`` seconds later or at an explicit heal
step, and check the step's expectations over its window:

- ``expect=SteadyState(probe, p99=..., max_error_rate=...)``: ``steady_state`` over the
  window the fault is active;
- ``recovers=Recovers(probe, within=...)``: ``recovers`` from the step's heal;
- ``abort_when=AbortWhen(probe, max_error_rate=...)``: a guard over the window that,
  when breached, aborts the whole schedule (every fault healed, later steps not run).

The schedule runs in a thread owned by the :class:`ScheduleRun` handle; each expectation
in a thread the handle joins. ``.wait()`` joins them all and re-raises the first
violation; teardown joins a run nobody waited for (its undo entry), so nothing outlives
the test. ``time_scale`` (``--chaos-time-scale``) multiplies every step time: a game
day written in minutes runs in seconds.

Every step lands on the timeline as a ``note`` named ``schedule_step`` with its planned
and actual start (timeline seconds) and the lateness in milliseconds; the journal,
Allure and the chart read those.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from pytest_chaos.checks import CheckResult, GuardTripped, recovers, steady_state
from pytest_chaos.errors import ConfigurationError

if TYPE_CHECKING:
    from pytest_chaos.experiment._fault import Fault
    from pytest_chaos.experiment._rollback import UndoStack
    from pytest_chaos.timeline import Timeline

__all__ = [
    "AbortWhen",
    "Recovers",
    "ScheduleRun",
    "SteadyState",
    "Step",
    "schedule",
]

#: the label of the timeline notes a schedule records
STEP_NOTE = "schedule_step"


@dataclass(frozen=True)
class SteadyState:
    """A steady-state objective over a step's window (see ``chaos.steady_state``).

    ``objective`` takes ``steady_state``'s tolerances: ``p50``/``p95``/``p99`` (seconds),
    ``max_error_rate`` (fraction), ``interval``, ``concurrency``, ``failures``.
    """

    probe: Callable[[], object]
    objective: dict[str, Any] = field(default_factory=dict)

    def __init__(self, probe: Callable[[], object], **objective: Any) -> None:
        object.__setattr__(self, "probe", probe)
        object.__setattr__(self, "objective", dict(objective))


@dataclass(frozen=True)
class Recovers:
    """The system answers ``consecutive`` times in a row within ``within`` seconds of
    the step's heal (see ``chaos.recovers``)."""

    probe: Callable[[], object]
    within: float
    consecutive: int = 3
    interval: float = 0.05


@dataclass(frozen=True)
class AbortWhen:
    """A guard over a step's window: when the probe's error rate exceeds
    ``max_error_rate`` (after ``min_calls`` calls) or ``consecutive`` calls in a row
    fail, the whole schedule is aborted (``chaos.abort``: every fault healed) and
    ``.wait()`` raises :class:`~pytest_chaos.checks.GuardTripped`."""

    probe: Callable[[], object]
    max_error_rate: float | None = None
    consecutive: int | None = None
    min_calls: int = 10
    interval: float = 0.05


@dataclass(frozen=True)
class Step:
    """One step of a schedule.

    ``at``: seconds from the start (before the time scale). ``fault``: a callable that
    injects and returns the :class:`Fault` (``lambda: db.latency(300)``), or ``None``
    for a step that only heals (``heal="name of an earlier step"``) or only checks.
    ``for_``: seconds until the heal (scaled); without it the fault stays until a heal
    step, the end of the schedule or teardown. ``name`` labels the step in reports.
    """

    at: float
    fault: Callable[[], Fault] | None = None
    for_: float | None = None
    heal: str | None = None
    name: str = ""
    expect: SteadyState | None = None
    recovers: Recovers | None = None
    abort_when: AbortWhen | None = None
    #: where the step came from (a YAML file:line), shown in reports
    source: str = ""

    def label(self, index: int) -> str:
        """The step's name, or ``step N``."""
        return self.name or f"step {index + 1}"


class Scheduler(Protocol):
    """What a schedule needs from the experiment (`Chaos` provides it)."""

    timeline: Timeline
    time_scale: float
    notes: list[str]

    @property
    def active_faults(self) -> Sequence[object]:
        """Faults not healed yet."""
        ...

    @property
    def undo_stack(self) -> UndoStack:
        """The test's undo stack."""
        ...

    def heal_all(self, by: str = "test") -> Sequence[object]:
        """Heal every active fault."""
        ...

    def abort(self, reason: str, *, source: str = "guard") -> Sequence[object]:
        """Heal everything and mark the experiment aborted."""
        ...

    def record_check(self, result: CheckResult, exc: BaseException | None = None) -> None:
        """Record a verdict and raise if it failed."""
        ...


@dataclass
class _Action:
    t: float  # scaled seconds from the schedule's start
    order: int
    kind: str  # "inject" or "heal"
    index: int  # the step
    planned: float  # unscaled, as written


def _validate(steps: Sequence[Step]) -> None:
    names: dict[str, int] = {}
    for i, step in enumerate(steps):
        if not isinstance(step, Step):
            raise ConfigurationError(
                f"chaos.schedule: item {i + 1} is {type(step).__name__} {step!r}, not a Step; "
                "build steps with pytest_chaos.experiment.Step(at=..., fault=...)."
            )
        where = f"chaos.schedule step {step.label(i)!r}"
        if step.at < 0:
            raise ConfigurationError(f"{where}: at={step.at!r} is negative; use seconds >= 0.")
        if step.fault is not None and not callable(step.fault):
            raise ConfigurationError(
                f"{where}: fault={step.fault!r} is not callable; pass a function that "
                "injects and returns the Fault, e.g. fault=lambda: db.latency(300)."
            )
        if step.for_ is not None and step.for_ <= 0:
            raise ConfigurationError(f"{where}: for_={step.for_!r} must be > 0 seconds.")
        if step.for_ is not None and step.fault is None:
            raise ConfigurationError(f"{where}: for_= needs a fault to heal; add fault=.")
        if step.heal is not None and step.heal not in names:
            raise ConfigurationError(
                f"{where}: heal={step.heal!r} names no earlier step; earlier steps are "
                f"{sorted(names)}. Name the step that injects (name=...) and heal it later."
            )
        if step.name:
            if step.name in names:
                raise ConfigurationError(f"{where}: the name is used twice; names are unique.")
            names[step.name] = i


class ScheduleRun:
    """The handle of a running schedule (``chaos.schedule(steps)``).

    ``.wait()`` joins the schedule and re-raises the first violation; ``.cancel()``
    stops it early. As a context manager it waits at the exit. ``.steps`` holds each
    step's record: planned and actual start, lateness, fault id, heal time.
    """

    def __init__(self, chaos: Scheduler, steps: Sequence[Step], time_scale: float) -> None:
        self._chaos = chaos
        self._steps = list(steps)
        self.time_scale = time_scale
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._workers: list[threading.Thread] = []
        self._faults: dict[int, Fault] = {}
        self._ends: dict[int, float] = {}  # step -> timeline t its window ends
        self._waited = False
        self.aborted: str | None = None
        self.steps: list[dict[str, Any]] = [
            {"step": s.label(i), "planned": s.at * time_scale} for i, s in enumerate(steps)
        ]
        self._thread = threading.Thread(target=self._run, name="chaos-schedule", daemon=True)
        self._started = 0.0  # timeline t at the start

    # -- running ------------------------------------------------------------------------

    def _start(self) -> ScheduleRun:
        self._started = self._chaos.timeline.now()
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def _actions(self) -> list[_Action]:
        scale = self.time_scale
        actions: list[_Action] = []
        for i, step in enumerate(self._steps):
            kind = "heal" if step.heal is not None and step.fault is None else "inject"
            actions.append(_Action(step.at * scale, len(actions), kind, i, step.at))
            if step.for_ is not None:
                end = (step.at + step.for_) * scale
                actions.append(_Action(end, len(actions), "end", i, step.at + step.for_))
        # heals before injections at the same instant, then in the order written
        rank = {"end": 0, "heal": 0, "inject": 1}
        return sorted(actions, key=lambda a: (a.t, rank[a.kind], a.order))

    def _sleep_until(self, t: float) -> bool:
        """Wait until ``t`` scaled seconds after the start; False when stopped."""
        deadline = self._t0 + t
        while True:
            left = deadline - time.monotonic()
            if self._stop.is_set():
                return False
            if left <= 0:
                return True
            # Event.wait wakes a little late; the last 2 ms are a short sleep loop
            if left > 0.003:
                self._stop.wait(left - 0.002)
            else:
                time.sleep(left / 2)

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _run(self) -> None:
        try:
            for action in self._actions():
                if not self._sleep_until(action.t):
                    return
                if action.kind == "inject":
                    self._inject(action)
                else:
                    step = self._steps[action.index]
                    index = action.index
                    if action.kind == "heal":
                        assert step.heal is not None
                        index = next(i for i, s in enumerate(self._steps) if s.name == step.heal)
                        self._note(action, fault_id=None, heals=step.heal)
                    self._heal(index, action.index)
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._stop.set()

    def _note(self, action: _Action, *, began: float | None = None, **data: Any) -> float:
        # a step starts when the schedule begins it, not when its fault call returns (an
        # injection is an API call that a loaded machine may slow: that is recorded as
        # inject_ms, apart from the lateness of the start)
        step = self._steps[action.index]
        t = self._chaos.timeline.now() if began is None else began
        planned = self._started + action.t
        late_ms = round((t - planned) * 1000.0, 3)
        record = self.steps[action.index]
        record.update(planned=round(planned, 6), actual=round(t, 6), late_ms=late_ms)
        if "inject_ms" in data:
            record["inject_ms"] = data["inject_ms"]
        self._chaos.timeline.record(
            "note",
            STEP_NOTE,
            target=str(data.pop("target", "")),
            step=step.label(action.index),
            index=action.index,
            at=step.at,
            planned=round(planned, 6),
            actual=round(t, 6),
            late_ms=late_ms,
            time_scale=self.time_scale,
            source=step.source,
            **data,
        )
        return t

    def _inject(self, action: _Action) -> None:
        step = self._steps[action.index]
        fault: Fault | None = None
        began = self._chaos.timeline.now()
        if step.fault is not None:
            fault = step.fault()
            self._faults[action.index] = fault
        self._note(
            action,
            began=began,
            inject_ms=round((self._chaos.timeline.now() - began) * 1000.0, 3),
            target=getattr(fault, "target", ""),
            fault=getattr(fault, "kind", None),
            fault_id=getattr(fault, "id", None),
            for_=step.for_ * self.time_scale if step.for_ is not None else None,
        )
        window = self._window(action.index)
        if step.expect is not None:
            self._spawn(f"steady_state {step.label(action.index)}", self._steady, step, window)
        if step.abort_when is not None:
            self._spawn(f"abort_when {step.label(action.index)}", self._guard, step, window)

    def _window(self, index: int) -> float:
        """Scaled seconds the step's fault lasts (to the next step without an end)."""
        step = self._steps[index]
        if step.for_ is not None:
            return step.for_ * self.time_scale
        for other in self._steps:
            if other.heal is not None and other.heal == step.name:
                return max(0.0, (other.at - step.at) * self.time_scale)
        later = [s.at for s in self._steps if s.at > step.at]
        return max(0.0, ((min(later) if later else step.at) - step.at) * self.time_scale)

    def _heal(self, index: int, by_step: int) -> None:
        fault = self._faults.get(index)
        step = self._steps[index]
        if fault is not None:
            fault.heal(by="schedule")
        self._ends[index] = self._chaos.timeline.now()
        self.steps[index]["healed"] = round(self._ends[index], 6)
        if step.recovers is not None:
            self._spawn(f"recovers {step.label(index)}", self._recovers, step, self._ends[index])

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        def work() -> None:
            try:
                target(*args)
            except BaseException as exc:
                self._fail(exc)

        thread = threading.Thread(target=work, name=f"chaos-schedule {name}", daemon=True)
        with self._lock:
            self._workers.append(thread)
        thread.start()

    # -- expectations -------------------------------------------------------------------

    def _finish(self, result: CheckResult) -> None:
        self._chaos.record_check(result, None if result.passed else result.exception())

    def _steady(self, step: Step, window: float) -> None:
        assert step.expect is not None
        if window <= 0:
            raise ConfigurationError(
                f"chaos.schedule step {step.name!r}: expect= needs a window; give for_= or "
                "a later step."
            )
        steady_state(
            step.expect.probe,
            duration=window,
            before_faults=False,
            label=f"{step.name or 'step'}: steady_state",
            timeline=self._chaos.timeline,
            finish=self._finish,
            **step.expect.objective,
        )

    def _recovers(self, step: Step, since: float) -> None:
        assert step.recovers is not None
        bound = step.recovers
        # not as chaos.recovers: another step's fault may still be active by design
        recovers(
            bound.probe,
            within=bound.within,
            consecutive=bound.consecutive,
            interval=bound.interval,
            since=since,
            label=f"{step.name or 'step'}: recovers",
            timeline=self._chaos.timeline,
            finish=self._finish,
        )

    def _guard(self, step: Step, window: float) -> None:
        cond = step.abort_when
        assert cond is not None
        timeline = self._chaos.timeline
        end = time.monotonic() + window
        calls = bad = streak = 0
        started = time.perf_counter()
        reason = ""
        while time.monotonic() < end and not self._stop.is_set():
            t = timeline.now()
            began = time.perf_counter()
            try:
                ok = cond.probe() is not False
            except Exception:
                ok = False
            timeline.sample(
                f"{step.name or 'step'}: abort_when",
                t=t,
                latency=time.perf_counter() - began,
                ok=ok,
            )
            calls += 1
            bad += not ok
            streak = 0 if ok else streak + 1
            rate = bad / calls
            if cond.consecutive is not None and streak >= cond.consecutive:
                reason = f"{streak} failed probe calls in a row"
            elif (
                cond.max_error_rate is not None
                and calls >= cond.min_calls
                and rate > cond.max_error_rate
            ):
                reason = f"error rate {rate:.1%} > {cond.max_error_rate:.1%} over {calls} calls"
            if reason:
                break
            self._stop.wait(cond.interval)
        measured: dict[str, Any] = {"calls": calls, "bad_calls": bad}
        allowed: dict[str, Any] = {
            "max_error_rate": cond.max_error_rate,
            "consecutive": cond.consecutive,
        }
        if reason:
            message = (
                f"schedule aborted at step {step.name or 'step'!r}: {reason}; every fault "
                "was healed and the later steps did not run"
            )
            self.aborted = message
            self._stop.set()
            self._chaos.abort(message, source="schedule")
            measured["reason"] = reason
        else:
            message = f"abort_when held: {calls} probe calls, {bad} failed"
        self._finish(
            CheckResult(
                name="guard",
                passed=not reason,
                measured=measured,
                allowed=allowed,
                message=f"guard tripped, test aborted: {message}" if reason else message,
                duration=time.perf_counter() - started,
                target=step.name,
                violation=GuardTripped,
            )
        )

    # -- the handle -----------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether the schedule and every expectation have finished."""
        with self._lock:
            workers = list(self._workers)
        return not self._thread.is_alive() and not any(w.is_alive() for w in workers)

    def cancel(self) -> None:
        """Stop before the next step (faults stay until healed or teardown)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Join the schedule thread, then every expectation thread."""
        self._thread.join(timeout)
        while True:
            with self._lock:
                pending = [w for w in self._workers if w.is_alive()]
            if not pending:
                return
            for worker in pending:
                worker.join(timeout)
            if timeout is not None:
                return

    def errors(self) -> list[BaseException]:
        """The violations and errors so far, first first."""
        with self._lock:
            return list(self._errors)

    def wait(self) -> ScheduleRun:
        """Wait for every step and expectation; re-raise the first violation."""
        self.join()
        self._waited = True
        errors = self.errors()
        if errors:
            first = errors[0]
            for other in errors[1:]:
                first.add_note(f"also in this schedule: {type(other).__name__}: {other}")
            raise first
        return self

    def _teardown(self) -> None:
        self.cancel()
        self.join()
        errors = self.errors()
        if errors and not self._waited:
            self._chaos.notes.append(
                "a chaos.schedule nobody waited for had errors (call .wait() to fail the "
                "test on them): " + "; ".join(f"{type(e).__name__}: {e}" for e in errors)
            )

    def __enter__(self) -> ScheduleRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.cancel()
            self.join()
            return
        self.wait()

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        return (
            f"<ScheduleRun steps={len(self._steps)} scale={self.time_scale} {state} "
            f"errors={len(self.errors())}{' aborted' if self.aborted else ''}>"
        )


def schedule(
    chaos: Scheduler, steps: Sequence[Step], *, time_scale: float | None = None
) -> ScheduleRun:
    """Run ``steps`` (a game day) in the background; return the :class:`ScheduleRun`.

    Step times are multiplied by ``time_scale`` (default: the run's
    ``--chaos-time-scale``, 1.0 without it). Call ``.wait()`` (or use the handle as a
    context manager) to join it and re-raise the first violation; teardown joins a
    schedule nobody waited for.
    """
    scale = chaos.time_scale if time_scale is None else time_scale
    if not isinstance(scale, int | float) or not scale > 0:
        raise ConfigurationError(
            f"chaos.schedule: time_scale={scale!r} must be a number > 0 (0.01 runs a "
            "15-minute step at 9 s)."
        )
    _validate(steps)
    run = ScheduleRun(chaos, steps, float(scale))
    # the undo entry joins the threads at teardown: nothing outlives the test
    chaos.undo_stack.push("schedule", run._teardown)
    return run._start()
