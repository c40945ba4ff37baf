"""retries: attempts that reach a dependency per logical call, during a fault window.

The attempts are counted at the proxy (a difference of its stats counters), so the
check sees what the dependency sees, whatever retry library the system uses. A ratio
above ``max_attempts_per_call`` is a retry storm: no cap, no backoff, or retries
multiplied across layers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_chaos.checks._common import Finish, fmt_s
from pytest_chaos.checks._context import CheckContext, bind_context
from pytest_chaos.checks._errors import RetriesViolated
from pytest_chaos.checks._probe import Probe, check_count, check_positive
from pytest_chaos.checks._result import CheckResult
from pytest_chaos.checks._stats import Counters
from pytest_chaos.checks._steady import run_calls

if TYPE_CHECKING:
    from pytest_chaos.timeline import Timeline

__all__ = ["retries"]

_CHECK = "retries"


def retries(
    call: Callable[[], object],
    *,
    proxy: object,
    max_attempts_per_call: float,
    min_retry_gap: float | None = None,
    calls: int = 5,
    concurrency: int = 1,
    counter: str | Sequence[str] = "connections_accepted",
    interval: float = 0.0,
    settle: float = 0.1,
    failures: object = (Exception,),
    target: str = "",
    label: str | None = None,
    timeline: Timeline | None = None,
    finish: Finish | None = None,
    context: CheckContext | None = None,
) -> CheckResult:
    """Make ``calls`` logical calls and bound the attempts the dependency saw per call.

    Attempts are the growth of ``counter`` on ``proxy`` (``connections_accepted`` for a
    client that reconnects per attempt, ``http_requests`` for HTTP keep-alive clients,
    which needs an HTTP toxic on the proxy). Calls may fail: that is expected during a
    fault. ``settle`` seconds are waited after the last call so that attempts still in
    flight are counted. Raises :class:`RetriesViolated` when attempts per call exceed
    ``max_attempts_per_call``, or, with ``min_retry_gap`` (seconds), when the retries
    (attempts beyond one per call) came on average closer together than that: a bounded
    retry loop without backoff hammers a failing dependency in a burst.

    ``concurrency`` threads share the ``calls`` (each waiting ``interval`` after its
    call), so load-dependent retry bugs (retries multiplied by a shared pool or lock)
    show; the retry gap is then per caller: the elapsed time times the callers, over
    the retries.
    """
    timeline, finish = bind_context(context, timeline, finish)
    check_positive(_CHECK, "max_attempts_per_call", max_attempts_per_call)
    if min_retry_gap is not None:
        check_positive(_CHECK, "min_retry_gap", min_retry_gap)
    check_count(_CHECK, "calls", calls)
    check_count(_CHECK, "concurrency", concurrency)
    check_positive(_CHECK, "interval", interval, allow_zero=True)
    check_positive(_CHECK, "settle", settle, allow_zero=True)
    stats = Counters(proxy, (counter,) if isinstance(counter, str) else counter, check=_CHECK)
    target = target or stats.name
    runner = Probe(call, check=_CHECK, failures=failures, timeline=timeline, label=label)

    started = time.perf_counter()
    before = stats.read()
    failed = 0
    if concurrency == 1:
        for i in range(calls):
            if not runner().ok:
                failed += 1
            if interval and i < calls - 1:
                time.sleep(interval)
    else:
        results = run_calls(
            runner, calls=calls, duration=None, concurrency=concurrency, interval=interval
        )
        failed = sum(1 for c in results if not c.ok)
    elapsed = time.perf_counter() - started
    time.sleep(settle)
    delta = Counters.delta(before, stats.read())
    attempts = sum(delta.values())
    ratio = attempts / calls
    rate = attempts / elapsed if elapsed > 0 else 0.0
    measured: dict[str, Any] = {
        "attempts": attempts,
        "calls": calls,
        "failed_calls": failed,
        "attempts_per_call": round(ratio, 4),
        "attempts_per_second": round(rate, 2),
        "seconds": round(elapsed, 6),
        "counters": delta,
        "concurrency": concurrency,
    }
    allowed: dict[str, Any] = {"max_attempts_per_call": max_attempts_per_call}
    extra = attempts - calls  # the retries, if every call made at least one attempt
    # Concurrent callers retry side by side: the gap that matters is each caller's.
    gap = elapsed * min(concurrency, calls) / extra if extra > 0 else None
    if min_retry_gap is not None:
        allowed["min_retry_gap"] = min_retry_gap
        measured["retry_gap"] = None if gap is None else round(gap, 6)
    too_eager = min_retry_gap is not None and gap is not None and gap < min_retry_gap
    where = f"{target!r}" if target else "the dependency"
    counted = "+".join(stats.counters)
    if ratio <= max_attempts_per_call and too_eager:
        assert gap is not None and min_retry_gap is not None
        message = (
            f"{_CHECK} violated: {extra} retries reached {where} within {fmt_s(elapsed)} "
            f"= one every {fmt_s(gap)} on average < allowed gap {fmt_s(min_retry_gap)} "
            f"(no backoff?; {attempts} attempts for {calls} calls, {counted})"
        )
    elif ratio > max_attempts_per_call:
        message = (
            f"{_CHECK} violated: {attempts} attempts reached {where} for {calls} calls = "
            f"{ratio:.1f} per call > allowed {max_attempts_per_call:g} ({counted}; "
            f"{rate:.0f} attempts/s over {fmt_s(elapsed)}, {failed} calls failed)"
        )
    else:
        message = (
            f"{attempts} attempts reached {where} for {calls} calls = {ratio:.1f} per call "
            f"<= allowed {max_attempts_per_call:g} ({counted}, {failed} calls failed)"
        )
    result = CheckResult(
        name=_CHECK,
        passed=ratio <= max_attempts_per_call and not too_eager,
        measured=measured,
        allowed=allowed,
        message=message,
        duration=elapsed,
        target=target,
        violation=RetriesViolated,
    )
    finish(result)
    return result
