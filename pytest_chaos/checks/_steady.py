"""steady_state: error rate and latency percentiles of a probe against tolerances.

Three ways to use it:

- ``steady_state(probe, calls=50, p99=0.8)`` calls the probe now, before or after a
  fault window (or inside one, from the test's own thread);
- ``with observe(probe, p99=0.8): ...`` probes in background threads for as long as the
  ``with`` block lasts (typically around a fault window) and judges at the exit;
- before any fault was injected (no ``inject`` on the timeline), a violation raises
  :class:`~pytest_chaos.errors.SteadyStateNotMet` instead: the system was broken
  before the experiment, which is not a resilience finding.

Latency percentiles count every call, failed ones included: a call that hung until the
client's timeout is exactly what a p99 is meant to catch.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_chaos.checks._common import Finish, fmt_s, has_injected
from pytest_chaos.checks._context import CheckContext, bind_context
from pytest_chaos.checks._errors import SteadyStateViolated
from pytest_chaos.checks._probe import (
    Call,
    Probe,
    check_count,
    check_positive,
    percentile,
)
from pytest_chaos.checks._result import CheckResult
from pytest_chaos.errors import CheckError, SteadyStateNotMet

if TYPE_CHECKING:
    from pytest_chaos.timeline import Timeline

__all__ = ["Observation", "Tolerances", "judge", "observe", "run_calls", "steady_state"]

_CHECK = "steady_state"


class Tolerances:
    """Validated tolerances: latency percentiles in seconds and a maximum error rate."""

    def __init__(
        self,
        *,
        p50: float | None = None,
        p95: float | None = None,
        p99: float | None = None,
        max_error_rate: float = 0.0,
    ) -> None:
        self.percentiles: dict[str, float] = {}
        for name, value in (("p50", p50), ("p95", p95), ("p99", p99)):
            if value is not None:
                self.percentiles[name] = check_positive(_CHECK, name, value)
        rate = check_positive(_CHECK, "max_error_rate", max_error_rate, allow_zero=True)
        if rate > 1:
            raise CheckError(
                f"{_CHECK}: max_error_rate={max_error_rate!r} is a fraction of calls and "
                f"must be between 0 and 1; pass e.g. max_error_rate=0.01 for 1%"
            )
        self.max_error_rate = rate

    def allowed(self) -> dict[str, Any]:
        """The tolerances as JSON-safe data."""
        return {"max_error_rate": self.max_error_rate, **self.percentiles}


def judge(calls: list[Call], tol: Tolerances, *, duration: float, target: str = "") -> CheckResult:
    """Judge a list of probe calls against tolerances."""
    n = len(calls)
    errors = [c for c in calls if not c.ok]
    rate = len(errors) / n if n else 1.0
    latencies = [c.latency for c in calls]
    measured: dict[str, Any] = {"calls": n, "errors": len(errors), "error_rate": round(rate, 4)}
    exact: dict[str, float] = {}  # judged unrounded: rounding must not flip a verdict
    if latencies:
        for q in (50, 95, 99):
            exact[f"p{q}"] = percentile(latencies, q)
            measured[f"p{q}"] = round(exact[f"p{q}"], 6)
        measured["max"] = round(max(latencies), 6)
    if errors:
        measured["first_error"] = errors[0].error

    bad: list[str] = []
    good: list[str] = []
    if rate > tol.max_error_rate:
        first = f", first: {errors[0].error}" if errors else ""
        bad.append(
            f"error rate {rate:.2f} > allowed {tol.max_error_rate:.2f} "
            f"({len(errors)} of {n} calls failed{first})"
        )
    else:
        good.append(f"error rate {rate:.2f} <= {tol.max_error_rate:.2f}")
    for name, limit in tol.percentiles.items():
        value = exact.get(name)
        if value is None:
            continue
        if value > limit:
            bad.append(f"{name} {fmt_s(value)} > allowed {fmt_s(limit)}")
        else:
            good.append(f"{name} {fmt_s(value)} <= {fmt_s(limit)}")
    if n == 0:
        bad.insert(0, "no probe call completed")
    if bad:
        message = f"{_CHECK} violated: {'; '.join(bad)} over {n} calls"
        if good:
            message += f" ({', '.join(good)})"
    else:
        message = f"{_CHECK} held over {n} calls: {', '.join(good)}"
    return CheckResult(
        name=_CHECK,
        passed=not bad,
        measured=measured,
        allowed=tol.allowed(),
        message=message,
        duration=duration,
        target=target,
        violation=SteadyStateViolated,
    )


def run_calls(
    probe: Probe,
    *,
    calls: int | None,
    duration: float | None,
    concurrency: int,
    interval: float,
    stop: threading.Event | None = None,
) -> list[Call]:
    """Call ``probe`` ``calls`` times in total, or for ``duration`` seconds, or until
    ``stop`` is set, from ``concurrency`` threads. Probe errors (CheckError) re-raise."""
    results: list[Call] = []
    lock = threading.Lock()
    stop = stop or threading.Event()
    issued = 0
    deadline = time.monotonic() + duration if duration is not None else None
    crash: list[BaseException] = []

    def take_ticket() -> bool:
        nonlocal issued
        if stop.is_set():
            return False
        if deadline is not None and time.monotonic() >= deadline:
            return False
        with lock:
            if calls is not None and issued >= calls:
                return False
            issued += 1
        return True

    def worker() -> None:
        try:
            while take_ticket():
                call = probe()
                with lock:
                    results.append(call)
                if interval and stop.wait(interval):
                    return
        except BaseException as exc:  # re-raised in the caller's thread below
            crash.append(exc)
            stop.set()

    if concurrency == 1:
        worker()
    else:
        threads = [
            threading.Thread(target=worker, name=f"chaos-probe-{i}", daemon=True)
            for i in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if crash:
        raise crash[0]
    results.sort(key=lambda c: c.t)
    return results


def _not_met(result: CheckResult, exc: BaseException | None = None) -> SteadyStateNotMet:
    message = result.message.replace(f"{_CHECK} violated:", "", 1).strip()
    err = SteadyStateNotMet(
        f"steady state not met before injection: {message}. The system was already "
        f"failing before any fault, which is not a resilience finding: fix the system "
        f"or the probe, or widen the tolerances"
    )
    if exc is not None:
        err.__cause__ = exc
    return err


def conclude(result: CheckResult, *, before_faults: bool, finish: Finish) -> CheckResult:
    """Hand the result to ``finish``; before any fault a violation becomes SteadyStateNotMet."""
    try:
        finish(result)
    except SteadyStateViolated as exc:
        if before_faults:
            raise _not_met(result, exc) from exc
        raise
    return result


def steady_state(
    probe: Callable[[], object],
    *,
    calls: int | None = None,
    duration: float | None = None,
    concurrency: int = 1,
    interval: float = 0.0,
    p50: float | None = None,
    p95: float | None = None,
    p99: float | None = None,
    max_error_rate: float = 0.0,
    failures: object = (Exception,),
    before_faults: bool | None = None,
    target: str = "",
    label: str | None = None,
    timeline: Timeline | None = None,
    finish: Finish | None = None,
    context: CheckContext | None = None,
) -> CheckResult:
    """Call ``probe`` repeatedly and judge its error rate and latency percentiles.

    Give ``calls`` (a number of calls) or ``duration`` (seconds), or both (whichever
    ends first). ``concurrency`` threads call the probe, each waiting ``interval``
    seconds between calls. ``p50``/``p95``/``p99`` are latency bounds in seconds,
    ``max_error_rate`` a fraction of calls (0.01 = 1%). A call fails when it raises one
    of ``failures`` or returns ``False``.

    Raises :class:`SteadyStateViolated` when a tolerance is exceeded, or
    :class:`~pytest_chaos.errors.SteadyStateNotMet` when that happens before any fault
    (``before_faults``, by default: no ``inject`` on ``timeline`` yet; without a
    timeline, ``False``). Returns the :class:`CheckResult` when the steady state held.
    """
    timeline, finish = bind_context(context, timeline, finish)
    if calls is None and duration is None:
        raise CheckError(f"{_CHECK}: give calls=N or duration=SECONDS (or both); neither was given")
    if calls is not None:
        check_count(_CHECK, "calls", calls)
    if duration is not None:
        check_positive(_CHECK, "duration", duration)
    check_count(_CHECK, "concurrency", concurrency)
    check_positive(_CHECK, "interval", interval, allow_zero=True)
    tol = Tolerances(p50=p50, p95=p95, p99=p99, max_error_rate=max_error_rate)
    runner = Probe(probe, check=_CHECK, failures=failures, timeline=timeline, label=label)
    if before_faults is None:
        before_faults = timeline is not None and not has_injected(timeline)
    start = time.perf_counter()
    results = run_calls(
        runner,
        calls=calls,
        duration=duration,
        concurrency=concurrency,
        interval=interval,
        stop=threading.Event(),
    )
    result = judge(results, tol, duration=time.perf_counter() - start, target=target)
    return conclude(result, before_faults=before_faults, finish=finish)


class Observation:
    """Probing in the background for as long as a ``with`` block lasts.

    Returned by :func:`observe` and ``chaos.observe``. At the exit of the block the
    threads stop (a call in flight is waited for), the calls are judged like
    :func:`steady_state`, and a violation is raised unless the block itself raised.
    ``calls`` and ``result`` hold what was measured.
    """

    def __init__(
        self,
        probe: Probe,
        tol: Tolerances,
        *,
        concurrency: int,
        interval: float,
        target: str,
        finish: Finish,
    ) -> None:
        self._probe = probe
        self._tol = tol
        self._concurrency = concurrency
        self._interval = interval
        self._target = target
        self._finish = finish
        self._stop = threading.Event()
        self._runner: threading.Thread | None = None
        self._crash: BaseException | None = None
        self._start = 0.0
        self.calls: list[Call] = []
        self.result: CheckResult | None = None

    def _run(self) -> None:
        try:
            self.calls = run_calls(
                self._probe,
                calls=None,
                duration=None,
                concurrency=self._concurrency,
                interval=self._interval,
                stop=self._stop,
            )
        except BaseException as exc:  # re-raised at the exit of the with block
            self._crash = exc

    def __enter__(self) -> Observation:
        if self._runner is not None:
            raise CheckError(f"{_CHECK}: an Observation can be entered only once")
        self._start = time.perf_counter()
        self._runner = threading.Thread(target=self._run, name="chaos-observe", daemon=True)
        self._runner.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        assert self._runner is not None
        self._runner.join()
        if self._crash is not None:
            if exc is None:
                raise self._crash
            return
        timeline = self._probe.timeline
        result = judge(
            self.calls, self._tol, duration=time.perf_counter() - self._start, target=self._target
        )
        self.result = result
        before = timeline is not None and not has_injected(timeline)
        if exc is not None:
            # the block failed on its own: record what was seen, let its error through
            with contextlib.suppress(SteadyStateViolated, AssertionError):
                self._finish(result)
            return
        conclude(result, before_faults=before, finish=self._finish)

    def __repr__(self) -> str:
        state = "running" if self._runner and self._runner.is_alive() else "stopped"
        return f"<Observation {self._probe.label!r} {state} calls={len(self.calls)}>"


def observe(
    probe: Callable[[], object],
    *,
    concurrency: int = 1,
    interval: float = 0.05,
    p50: float | None = None,
    p95: float | None = None,
    p99: float | None = None,
    max_error_rate: float = 0.0,
    failures: object = (Exception,),
    target: str = "",
    label: str | None = None,
    timeline: Timeline | None = None,
    finish: Finish | None = None,
    context: CheckContext | None = None,
) -> Observation:
    """A context manager that checks the steady state *during* its ``with`` block.

    ``with observe(probe, p99=0.8, max_error_rate=0.01): <inject, wait, heal>``: the
    probe runs in ``concurrency`` background threads, ``interval`` seconds apart, until
    the block exits; the calls are then judged like :func:`steady_state`. A probe should
    carry its own timeout: a call in flight is waited for at the exit.
    """
    timeline, finish = bind_context(context, timeline, finish)
    check_count(_CHECK, "concurrency", concurrency)
    check_positive(_CHECK, "interval", interval, allow_zero=True)
    tol = Tolerances(p50=p50, p95=p95, p99=p99, max_error_rate=max_error_rate)
    runner = Probe(probe, check=_CHECK, failures=failures, timeline=timeline, label=label)
    return Observation(
        runner,
        tol,
        concurrency=concurrency,
        interval=interval,
        target=target,
        finish=finish,
    )
