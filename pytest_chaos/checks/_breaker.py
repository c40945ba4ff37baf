"""circuit_breaker: black-box verification of a breaker through the proxy's counters.

The two phases are described in :func:`circuit_breaker`'s docstring (what
``help(chaos.circuit_breaker)`` shows).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_chaos.checks._adapters import watch_breaker
from pytest_chaos.checks._common import Finish, fmt_s
from pytest_chaos.checks._context import CheckContext, bind_context
from pytest_chaos.checks._errors import CircuitBreakerViolated
from pytest_chaos.checks._probe import Call, Probe, check_count, check_positive
from pytest_chaos.checks._result import CheckResult
from pytest_chaos.checks._stats import Counters
from pytest_chaos.errors import CheckError

if TYPE_CHECKING:
    from pytest_chaos.timeline import Timeline

__all__ = ["DEFAULT_COUNTERS", "circuit_breaker"]

_CHECK = "circuit_breaker"
DEFAULT_COUNTERS = ("connections_accepted", "bytes_upstream", "http_requests")


class _Trial:
    """One call and whether it reached the dependency."""

    def __init__(self, call: Call, grew: dict[str, int]) -> None:
        self.call = call
        self.grew = {k: v for k, v in grew.items() if v}
        self.reached = bool(self.grew)

    def describe(self) -> str:
        growth = ", ".join(f"{k} +{v}" for k, v in self.grew.items()) or "no counter grew"
        verdict = "succeeded" if self.call.ok else f"failed ({self.call.error})"
        return f"{verdict} after {fmt_s(self.call.latency)}, {growth}"


def _trial(probe: Probe, stats: Counters) -> _Trial:
    before = stats.read()
    call = probe()
    return _Trial(call, Counters.delta(before, stats.read()))


def _burst(probe: Probe, stats: Counters, n: int) -> tuple[list[Call], dict[str, int]]:
    """``n`` calls released at the same moment from ``n`` threads; the counters' growth."""
    barrier = threading.Barrier(n)
    calls: list[Call | None] = [None] * n

    def one(i: int) -> None:
        # A thread that did not start in time (broken barrier) goes anyway.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=10)
        calls[i] = probe()

    before = stats.read()
    threads = [
        threading.Thread(target=one, args=(i,), name=f"{_CHECK}-burst-{i}") for i in range(n)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    grew = Counters.delta(before, stats.read())
    return [c for c in calls if c is not None], grew


def _reaching(grew: dict[str, int]) -> int:
    """How many calls reached the dependency, from the counters' growth: the largest
    count (connections, requests); bytes alone mean at least one."""
    reached = max((v for k, v in grew.items() if not k.startswith("bytes_")), default=0)
    if not reached and any(v for k, v in grew.items() if k.startswith("bytes_")):
        reached = 1
    return reached


def _refuse_disabled(proxy: object, target: str) -> None:
    """A disabled proxy (``down()``, ``partition``) cannot tell a breaker from none."""
    if getattr(proxy, "enabled", True) is not False:
        return
    name = f"{target!r}" if target else repr(proxy)
    raise CheckError(
        f"{_CHECK}: proxy {name} is down (disabled by down() or partition): down() "
        f"refuses connections before the proxy counts them, so every call would look "
        f"open from the first one, with or without a breaker; check a breaker under "
        f"timeout() (or latency(), reset_peer()) instead, and under down() use "
        f"steady_state/observe, recovers after the heal and watch_breaker(breaker)"
    )


def circuit_breaker(
    call: Callable[[], object],
    *,
    proxy: object,
    opens_within_calls: int,
    fail_fast: float = 0.1,
    reset_timeout: float | None = None,
    heal: Callable[[], object] | None = None,
    fault: object | None = None,
    open_calls: int = 5,
    close_calls: int = 3,
    closes_within: float | None = None,
    interval: float = 0.05,
    counters: Sequence[str] = DEFAULT_COUNTERS,
    half_open_burst: int | None = None,
    half_open_max_reaching: int = 1,
    breaker: object | None = None,
    failures: object = (Exception,),
    target: str = "",
    label: str | None = None,
    timeline: Timeline | None = None,
    finish: Finish | None = None,
    context: CheckContext | None = None,
) -> CheckResult:
    """Verify that a circuit breaker opens, fails fast, and closes again after heal.

    ``call`` is one call of the system under test that uses the dependency behind
    ``proxy``. The check reads the proxy's counters (``stats()``, embedded backend)
    before and after every call, in two phases:

    1. Opening: calls are made one by one. A call *looks open* when it did not reach
       the dependency (no watched counter grew) and returned or failed within
       ``fail_fast`` seconds. From call ``opens_within_calls + 1`` on, ``open_calls``
       calls in a row must look open (so they must fit in the breaker's open period:
       a breaker that half-opens in the middle of them lets a trial call through and
       fails the check).
    2. Closing (when ``heal=`` or ``fault=`` is given, with ``reset_timeout``; without
       them the check ends after phase 1 and says "closing not checked"): the fault is
       healed, then calls are made every ``interval`` seconds. The first call that
       reaches the dependency is the half-open trial; ``close_calls`` successful calls
       in a row that reach it mean closed. This must happen within ``closes_within``
       seconds of the heal (default ``2 * reset_timeout + 1``).

    With ``half_open_burst=N`` (and ``reset_timeout``), between the two phases and with
    the fault still active: once ``reset_timeout`` has passed since the breaker opened,
    ``N`` calls are released at the same moment from ``N`` threads. At most
    ``half_open_max_reaching`` of them (the half-open trial) may reach the dependency,
    counted at the proxy (the largest growth of the watched connection and request
    counters), and no more calls than reached it may take longer than ``fail_fast``. A
    half-open state that lets every concurrent caller through, instead of one trial,
    fails here.

    Run it under a fault the proxy can count, where every attempt reaches the proxy
    and fails slowly or visibly there: ``timeout()``, ``latency()`` or
    ``reset_peer()``. Under ``down()`` (the proxy disabled) connections are refused
    before the proxy counts them, so every call would look open with or without a
    breaker: the check raises :class:`CheckError` instead of judging.

    ``breaker`` (a pybreaker,
    circuitbreaker or purgatory object) is watched during the check: its transitions
    go on the timeline and into ``measured["transitions"]``. Raises
    :class:`CircuitBreakerViolated` naming the phase that failed and the numbers.

    As ``chaos.circuit_breaker(...)``, with ``reset_timeout`` and neither ``heal=`` nor
    ``fault=``, the check heals every active fault of the test (``chaos.heal_all()``) to
    watch the breaker close.
    """
    if context is not None and reset_timeout is not None and heal is None and fault is None:
        heal = lambda: context.heal_all("test")  # noqa: E731
    timeline, finish = bind_context(context, timeline, finish)
    check_count(_CHECK, "opens_within_calls", opens_within_calls)
    check_positive(_CHECK, "fail_fast", fail_fast)
    check_count(_CHECK, "open_calls", open_calls)
    check_count(_CHECK, "close_calls", close_calls)
    check_positive(_CHECK, "interval", interval, allow_zero=True)
    if half_open_burst is not None:
        check_count(_CHECK, "half_open_burst", half_open_burst, minimum=2)
        check_count(_CHECK, "half_open_max_reaching", half_open_max_reaching, minimum=0)
        if reset_timeout is None:
            raise CheckError(
                f"{_CHECK}: half_open_burst={half_open_burst} needs reset_timeout=SECONDS "
                f"(the breaker's open period), to fire the burst once it is half-open"
            )
    if heal is not None and fault is not None:
        raise CheckError(f"{_CHECK}: pass heal= or fault=, not both")
    if fault is not None:
        fault_heal = getattr(fault, "heal", None)
        if not callable(fault_heal):
            raise CheckError(f"{_CHECK}: fault={fault!r} has no heal(); pass a Fault")
        heal = fault_heal
    if heal is not None and not callable(heal):
        raise CheckError(f"{_CHECK}: heal={heal!r} is not callable; pass a function")
    if heal is not None and reset_timeout is None:
        raise CheckError(
            f"{_CHECK}: to check that the breaker closes after heal, pass "
            f"reset_timeout=SECONDS (the breaker's open period)"
        )
    if reset_timeout is not None:
        check_positive(_CHECK, "reset_timeout", reset_timeout)
        if heal is None and half_open_burst is None:
            raise CheckError(
                f"{_CHECK}: reset_timeout={reset_timeout!r} needs heal= or fault= so the "
                f"check can heal the dependency and watch the breaker close"
            )
        if closes_within is None and heal is not None:
            closes_within = 2 * reset_timeout + 1.0
        if closes_within is not None:
            check_positive(_CHECK, "closes_within", closes_within)
    stats = Counters(proxy, counters, check=_CHECK)
    target = target or stats.name
    _refuse_disabled(proxy, target)
    where = f"{target!r}" if target else "the dependency"
    runner = Probe(call, check=_CHECK, failures=failures, timeline=timeline, label=label)
    started = time.perf_counter()
    measured: dict[str, Any] = {}
    allowed: dict[str, Any] = {
        "opens_within_calls": opens_within_calls,
        "fail_fast": fail_fast,
        "open_calls": open_calls,
    }

    watch = watch_breaker(breaker, timeline=timeline) if breaker is not None else None

    def done(passed: bool, message: str) -> CheckResult:
        if watch is not None:
            watch.close()
            measured["transitions"] = watch.states()
        result = CheckResult(
            name=_CHECK,
            passed=passed,
            measured=measured,
            allowed=allowed,
            message=message if passed else f"{_CHECK} violated: {message}",
            duration=time.perf_counter() - started,
            target=target,
            violation=CircuitBreakerViolated,
        )
        finish(result)
        return result

    try:
        # Phase 1: opening.
        trials: list[_Trial] = []
        starts: list[float] = []
        streak = 0
        while True:
            starts.append(time.monotonic())
            trial = _trial(runner, stats)
            trials.append(trial)
            looks_open = not trial.reached and trial.call.latency <= fail_fast
            streak = streak + 1 if looks_open else 0
            if streak >= open_calls:
                break
            if streak == 0 and len(trials) > opens_within_calls:
                reached = sum(1 for t in trials if t.reached)
                measured.update(
                    calls=len(trials),
                    reached=reached,
                    slowest=round(max(t.call.latency for t in trials), 6),
                )
                return done(
                    False,
                    f"did not open within {opens_within_calls} calls: call {len(trials)} "
                    f"{trial.describe()}; {reached} of {len(trials)} calls reached {where} "
                    f"(allowed: after {opens_within_calls} calls, fail within "
                    f"{fmt_s(fail_fast)} without reaching it)",
                )
        opened_after = len(trials) - open_calls
        open_trials = trials[opened_after:]
        measured.update(
            opened_after_calls=opened_after,
            reached_while_closed=sum(1 for t in trials[:opened_after] if t.reached),
            fail_fast_max=round(max(t.call.latency for t in open_trials), 6),
        )
        opened = (
            f"opened after {opened_after} calls, then {open_calls} calls failed fast (max "
            f"{fmt_s(measured['fail_fast_max'])}) without reaching {where}"
        )
        if opened_after == 0:
            # never seen closed: already open, or a fault the proxy cannot count (down())
            opened += " (open from the first call: no call reached it)"
        if half_open_burst is not None:
            assert reset_timeout is not None
            # The breaker opened at the latest when the open streak began.
            half_open_at = starts[opened_after] + reset_timeout * 1.1 + 0.05
            time.sleep(max(0.0, half_open_at - time.monotonic()))
            calls, grew = _burst(runner, stats, half_open_burst)
            reached = _reaching(grew)
            slow = sorted((c.latency for c in calls if c.latency > fail_fast), reverse=True)
            allowed.update(
                half_open_burst=half_open_burst, half_open_max_reaching=half_open_max_reaching
            )
            measured.update(
                half_open_burst_reached=reached,
                half_open_burst_slow=len(slow),
                half_open_burst_fastest=round(min(c.latency for c in calls), 6),
            )
            growth = ", ".join(f"{k} +{v}" for k, v in grew.items() if v) or "no counter grew"
            if reached > half_open_max_reaching or len(slow) > reached:
                if reached > half_open_max_reaching:
                    why = (
                        f"{reached} of {half_open_burst} concurrent calls reached {where} "
                        f"({growth})"
                    )
                else:
                    why = (
                        f"{len(slow)} of {half_open_burst} concurrent calls took longer than "
                        f"fail_fast {fmt_s(fail_fast)} (slowest {fmt_s(slow[0])}) while "
                        f"{reached} reached {where}"
                    )
                return done(
                    False,
                    f"{opened}; half-open let too much through: {why}, "
                    f"{fmt_s(reset_timeout)} after it opened, with the fault still active "
                    f"(allowed: at most {half_open_max_reaching} reaching it, the others "
                    f"failing within {fmt_s(fail_fast)})",
                )
            opened += (
                f"; half-open under a burst of {half_open_burst} concurrent calls let "
                f"{reached} through, the others failed fast"
            )
        if heal is None or closes_within is None:
            return done(True, f"{opened}; closing not checked (pass fault= or heal=)")

        # Phase 2: heal, half-open trial, closed.
        allowed.update(
            reset_timeout=reset_timeout, closes_within=closes_within, close_calls=close_calls
        )
        heal()
        healed_at = time.monotonic()
        half_open: float | None = None
        ok_streak = 0
        after_heal: list[_Trial] = []
        while True:
            trial = _trial(runner, stats)
            after_heal.append(trial)
            since = time.monotonic() - healed_at
            if trial.reached and half_open is None:
                half_open = since - trial.call.latency
            if trial.reached and trial.call.ok:
                ok_streak += 1
                if ok_streak >= close_calls:
                    measured.update(
                        half_open_after=round(max(half_open or 0.0, 0.0), 6),
                        closed_after=round(since, 6),
                        calls_after_heal=len(after_heal),
                    )
                    return done(
                        True,
                        f"{opened}; after heal a trial call went through at "
                        f"{fmt_s(measured['half_open_after'])} and it closed at "
                        f"{fmt_s(since)} (allowed {fmt_s(closes_within)})",
                    )
            else:
                ok_streak = 0
            if since >= closes_within:
                break
            time.sleep(interval)

        reached = sum(1 for t in after_heal if t.reached)
        measured.update(calls_after_heal=len(after_heal), reached_after_heal=reached)
        if half_open is None:
            return done(
                False,
                f"{opened}, but never let a trial call through after heal: {len(after_heal)} "
                f"calls in {fmt_s(time.monotonic() - healed_at)}, none reached {where}, last "
                f"{after_heal[-1].describe()} (allowed: closed within {fmt_s(closes_within)}, "
                f"reset_timeout {fmt_s(reset_timeout)})",
            )
        return done(
            False,
            f"{opened}; a trial call went through {fmt_s(half_open)} after heal but it did "
            f"not close: never {close_calls} successful calls in a row within "
            f"{fmt_s(closes_within)} ({reached} of {len(after_heal)} calls reached {where}, "
            f"last {after_heal[-1].describe()})",
        )
    finally:
        if watch is not None:
            watch.close()
