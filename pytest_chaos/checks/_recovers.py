"""recovers: after the last heal, time until the probe succeeds k times in a row.

``recovery_seconds`` runs from the last heal (or abort) on the timeline, or from
``since``, or from the call, to the start of the first of ``consecutive`` successful
calls in a row. It is recorded in ``measured`` whatever the verdict; when the system
did not recover it is the time waited (a lower bound) and ``recovered`` is false.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_chaos.checks._common import Finish, fmt_s, last_heal_t
from pytest_chaos.checks._context import CheckContext, bind_context, require_healed
from pytest_chaos.checks._errors import RecoveryViolated
from pytest_chaos.checks._probe import Probe, check_count, check_positive
from pytest_chaos.checks._result import CheckResult
from pytest_chaos.errors import CheckError

if TYPE_CHECKING:
    from pytest_chaos.timeline import Timeline

__all__ = ["recovers"]

_CHECK = "recovers"


def recovers(
    probe: Callable[[], object],
    *,
    within: float,
    consecutive: int = 3,
    interval: float = 0.05,
    since: float | None = None,
    failures: object = (Exception,),
    target: str = "",
    label: str | None = None,
    timeline: Timeline | None = None,
    finish: Finish | None = None,
    context: CheckContext | None = None,
) -> CheckResult:
    """Check that the system recovers within ``within`` seconds of the last heal.

    The probe is called every ``interval`` seconds until it has succeeded
    ``consecutive`` times in a row, or ``within`` seconds have passed since the heal
    (a run of successes that started in time may finish). ``since`` overrides the
    start (timeline seconds, or ``time.monotonic()`` without a timeline). Raises
    :class:`RecoveryViolated` with the measured time; returns the result otherwise.
    As ``chaos.recovers(...)`` every fault must be healed first (a CheckError otherwise).
    """
    require_healed(context, "recovers")
    timeline, finish = bind_context(context, timeline, finish)
    check_positive(_CHECK, "within", within)
    check_count(_CHECK, "consecutive", consecutive)
    check_positive(_CHECK, "interval", interval, allow_zero=True)
    runner = Probe(probe, check=_CHECK, failures=failures, timeline=timeline, label=label)
    started = time.perf_counter()
    now = runner.now()
    start = since if since is not None else last_heal_t(timeline)
    if start is None or start > now:
        start = now
    if now - start > within:
        raise CheckError(
            f"{_CHECK}: called {now - start:.2f} s after the last heal, later than "
            f"within={within!r}: the recovery time can no longer be measured; call "
            f"recovers() right after the heal (or pass since=)"
        )
    deadline = start + within

    calls = failed = streak = 0
    streak_start: float | None = None
    recovered_at: float | None = None
    last_error = ""
    while True:
        if runner.now() >= deadline and streak == 0:
            break
        call = runner()
        calls += 1
        if call.ok:
            if streak == 0:
                streak_start = call.t
            streak += 1
            if streak >= consecutive:
                recovered_at = streak_start
                break
        else:
            failed += 1
            last_error = call.error
            streak = 0
            if runner.now() >= deadline:
                break
        time.sleep(interval)

    elapsed = (recovered_at if recovered_at is not None else runner.now()) - start
    recovered = recovered_at is not None and elapsed <= within
    measured: dict[str, Any] = {
        "recovery_seconds": round(elapsed, 6),
        "recovered": recovered_at is not None,
        "calls": calls,
        "failed_calls": failed,
    }
    if last_error:
        measured["last_error"] = last_error
    allowed = {"within": within, "consecutive": consecutive}
    if recovered:
        message = (
            f"recovered {fmt_s(elapsed)} after the last heal ({consecutive} successes in a "
            f"row; allowed {fmt_s(within)})"
        )
    elif recovered_at is not None:
        message = (
            f"{_CHECK} violated: recovered only {fmt_s(elapsed)} after the last heal > "
            f"allowed {fmt_s(within)} ({calls} calls, {failed} failed)"
        )
    else:
        message = (
            f"{_CHECK} violated: not recovered {fmt_s(elapsed)} after the last heal, "
            f"allowed {fmt_s(within)}: {calls - failed} of {calls} calls succeeded, never "
            f"{consecutive} in a row"
        )
        if last_error:
            message += f"; last error: {last_error}"
    result = CheckResult(
        name=_CHECK,
        passed=recovered,
        measured=measured,
        allowed=allowed,
        message=message,
        duration=time.perf_counter() - started,
        target=target,
        violation=RecoveryViolated,
    )
    finish(result)
    return result
